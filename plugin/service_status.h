// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace slipstream::plugin {

// The one translation from absl::Status to grpc::Status: same canonical code, same message.
// containerd turns the code back into its errdefs (NotFound, AlreadyExists,
// FailedPrecondition, InvalidArgument, Unavailable, ...), so the codes must survive exactly.
// Codes outside the canonical range become UNKNOWN. Pure function.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace slipstream::plugin
