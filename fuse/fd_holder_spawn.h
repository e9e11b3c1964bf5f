// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "fuse/fd_holder_client.h"

namespace slipstream::fuse {

struct HolderStartOptions {
  // Where the holder listens (slipstreamd: <root>/fuse-holder.sock).
  std::string socket_path;
  // The slipstream-fuse-holder executable; empty: DefaultHolderBinary().
  std::string binary;
  // The started holder's stdout and stderr, appended (slipstreamd: <root>/fuse-holder.log).
  std::string log_path;
  // How long a started holder may take to answer.
  absl::Duration timeout = absl::Seconds(5);
};

// Connects to the fd holder on `options.socket_path`, starting one first when nobody
// listens there. A started holder is fully detached from the caller so that nothing that
// ends the caller ends it: double fork (it is reparented to init or the nearest subreaper),
// setsid (its own session and process group: no terminal hangup, no group-wide kill),
// every signal unblocked, stdin /dev/null, stdout and stderr to `log_path`, cwd /, no
// inherited descriptors. Under systemd it stays in the caller's cgroup, which is why
// slipstreamd.service uses KillMode=process (deploy/). Errors: NotFound when nobody listens
// and the binary does not exist, DeadlineExceeded when a started holder never answered,
// errno errors of fork/open.
absl::StatusOr<FdHolderClient> ConnectOrStartHolder(const HolderStartOptions& options);

// slipstream-fuse-holder next to the running executable (/proc/self/exe), where the build
// and the packages put it beside slipstreamd.
std::string DefaultHolderBinary();

}  // namespace slipstream::fuse
