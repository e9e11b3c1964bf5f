// SPDX-License-Identifier: Apache-2.0
#include "cri/grpc_status.h"

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace slipstream::cri {

absl::Status FromGrpcStatus(const grpc::Status& status, std::string_view context) {
  if (status.ok()) return absl::OkStatus();
  // Written out rather than cast, like plugin::ToGrpcStatus: the table is what the test pins.
  absl::StatusCode code = absl::StatusCode::kUnknown;
  switch (status.error_code()) {
    case grpc::StatusCode::CANCELLED: code = absl::StatusCode::kCancelled; break;
    case grpc::StatusCode::INVALID_ARGUMENT: code = absl::StatusCode::kInvalidArgument; break;
    case grpc::StatusCode::DEADLINE_EXCEEDED: code = absl::StatusCode::kDeadlineExceeded; break;
    case grpc::StatusCode::NOT_FOUND: code = absl::StatusCode::kNotFound; break;
    case grpc::StatusCode::ALREADY_EXISTS: code = absl::StatusCode::kAlreadyExists; break;
    case grpc::StatusCode::PERMISSION_DENIED: code = absl::StatusCode::kPermissionDenied; break;
    case grpc::StatusCode::RESOURCE_EXHAUSTED: code = absl::StatusCode::kResourceExhausted; break;
    case grpc::StatusCode::FAILED_PRECONDITION: code = absl::StatusCode::kFailedPrecondition; break;
    case grpc::StatusCode::ABORTED: code = absl::StatusCode::kAborted; break;
    case grpc::StatusCode::OUT_OF_RANGE: code = absl::StatusCode::kOutOfRange; break;
    case grpc::StatusCode::UNIMPLEMENTED: code = absl::StatusCode::kUnimplemented; break;
    case grpc::StatusCode::INTERNAL: code = absl::StatusCode::kInternal; break;
    case grpc::StatusCode::UNAVAILABLE: code = absl::StatusCode::kUnavailable; break;
    case grpc::StatusCode::DATA_LOSS: code = absl::StatusCode::kDataLoss; break;
    case grpc::StatusCode::UNAUTHENTICATED: code = absl::StatusCode::kUnauthenticated; break;
    default: code = absl::StatusCode::kUnknown; break;
  }
  return absl::Status(code, absl::StrCat(AV(context), ": ", status.error_message()));
}

}  // namespace slipstream::cri
