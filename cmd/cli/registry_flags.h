// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "remote/platform.h"
#include "remote/registry_client.h"

namespace slipstream::cli {

// Flags every registry-facing subcommand shares: where hosts.toml and docker credentials
// live, and which platform to pick. Plain value type, filled by CLI11.
struct RegistryFlags {
  std::string hosts_dir = "/etc/containerd/certs.d";
  std::string docker_config;  // empty = $DOCKER_CONFIG/config.json or ~/.docker/config.json
  std::string platform;       // empty = this host's

  // Registers --hosts-dir, --docker-config and --platform on `cmd`.
  void AddTo(CLI::App* cmd);
  // A registry client configured from these flags.
  absl::StatusOr<std::unique_ptr<remote::RegistryClient>> MakeClient() const;
  // The platform from --platform, or the host's. InvalidArgument for a malformed value.
  absl::StatusOr<remote::Platform> WantedPlatform() const;
};

// "1.5 GiB", "12.0 MiB", "512 B".
std::string HumanBytes(int64_t bytes);

}  // namespace slipstream::cli
