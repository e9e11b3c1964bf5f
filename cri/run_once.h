// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/client.h"

namespace slipstream::cri {

// The config of a pod in the node's network namespace (namespace_options.network = NODE, no
// hostname, as CRI requires for host-network pods), named `name` in `pod_namespace` with a
// random uid, with the given pod annotations and container log directory (may be empty).
v1::PodSandboxConfig HostNetworkPodConfig(const std::string& name, const std::string& pod_namespace,
                                          const std::map<std::string, std::string>& annotations,
                                          const std::string& log_directory);

struct RunOptions {
  // Pod metadata; the pod gets a random uid, so runs never collide.
  std::string pod_name = "slipstream-run";
  std::string pod_namespace = "slipstream";
  // Pod annotations; they also travel with the PullImage (sandbox_config).
  std::map<std::string, std::string> annotations;
  // Extra environment of the command.
  std::vector<std::pair<std::string, std::string>> env;
  // Pull the image first when ImageStatus says it is absent (with `auth`, if set).
  bool pull_if_missing = true;
  v1::AuthConfig auth;
  // Bound on waiting for the command to exit after StartContainer.
  absl::Duration exit_timeout = absl::Minutes(5);
  // Pause between two ContainerStatus polls.
  absl::Duration poll_interval = absl::Milliseconds(100);
  // Parent of the temporary log directory (it must be reachable by the runtime, which
  // writes the log file there); empty = $TMPDIR or /tmp.
  std::string log_parent;
  // RuntimeClass handler; empty = the runtime's default.
  std::string runtime_handler;
};

// What one container run produced.
struct RunResult {
  int exit_code = -1;
  std::string stdout_data;
  std::string stderr_data;
  std::string reason;  // ContainerStatus.reason, e.g. "Completed", "Error", "OOMKilled"
  // When the runtime logged the command's first output (ContainerOutput::first_output).
  absl::Time first_output = absl::InfinitePast();
  std::string sandbox_id;
  std::string container_id;
};

// Runs `argv` (replacing the image's entrypoint and cmd) once in `image`, the way kubelet
// would for a one-container host-network pod: (PullImage when absent,) RunPodSandbox,
// CreateContainer with a log file in a temporary log directory, StartContainer, then polls
// ContainerStatus every poll_interval until the container has EXITED, and returns its exit
// code and its stdout/stderr read back from the CRI log file (ParseContainerLog). Whatever
// happened, the container and the sandbox are then stopped and removed and the log directory
// deleted; a cleanup failure is returned when the run itself succeeded (and logged when it
// did not). Errors: InvalidArgument for an empty argv; DeadlineExceeded when the command
// does not exit within exit_timeout; otherwise the failing RPC's status (FromGrpcStatus) or
// the log parser's. Blocks the calling thread; thread-safe as the client is.
absl::StatusOr<RunResult> RunOnce(CriClient& client, const std::string& image,
                                  const std::vector<std::string>& argv,
                                  const RunOptions& options = {});

}  // namespace slipstream::cri
