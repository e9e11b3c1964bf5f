// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slipstream::plugin {

// Starts a gRPC server listening on the unix socket `socket_path` (parent directories are
// created, a stale socket file is replaced) serving `services`, and sets the socket's mode to
// `mode` (0660: root and the socket's group, as containerd's own socket) before the path
// exists, whatever the process umask (bound in a private directory, then renamed into place;
// a socket path must leave room for ".bind-XXXXXX/s" within 107 bytes). The caller owns the
// server (Shutdown() then destroy) and keeps the services alive until then.
// Errors: InvalidArgument for an empty path, Unavailable when gRPC cannot bind, errno-mapped
// codes for the directory/chmod steps.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartUnixServer(
    const std::string& socket_path, const std::vector<grpc::Service*>& services, int mode = 0660);

}  // namespace slipstream::plugin
