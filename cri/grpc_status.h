// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/support/status.h>

#include <string_view>

#include "absl/status/status.h"

namespace slipstream::cri {

// The translation from a CRI server's grpc::Status to absl::Status: the same canonical code
// (NOT_FOUND → kNotFound, UNAVAILABLE → kUnavailable, ...; codes outside the canonical range
// become kUnknown) and the message prefixed with `context`, which names the RPC and the
// endpoint ("/runtime.v1.ImageService/PullImage on unix:///run/containerd/containerd.sock").
// OK stays OK. Pure function.
absl::Status FromGrpcStatus(const grpc::Status& status, std::string_view context);

}  // namespace slipstream::cri
