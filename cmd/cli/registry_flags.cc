// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/registry_flags.h"

#include "absl/strings/str_format.h"
#include "remote/credentials.h"

namespace slipstream::cli {

void RegistryFlags::AddTo(CLI::App* cmd) {
  cmd->add_option("--hosts-dir", hosts_dir,
                  "containerd hosts.toml directory (certs.d layout)")
      ->capture_default_str();
  cmd->add_option("--docker-config", docker_config,
                  "docker config.json with registry credentials (default: $DOCKER_CONFIG or "
                  "~/.docker/config.json)");
  cmd->add_option("--platform", platform, "os/arch[/variant] to pick from an index (default: host)");
}

absl::StatusOr<std::unique_ptr<remote::RegistryClient>> RegistryFlags::MakeClient() const {
  remote::RegistryClientOptions options;
  options.hosts_dir = hosts_dir;
  options.credentials = std::make_shared<remote::DockerConfigCredentials>(
      docker_config.empty() ? remote::DockerConfigCredentials::DefaultPath() : docker_config);
  return remote::RegistryClient::Create(std::move(options));
}

absl::StatusOr<remote::Platform> RegistryFlags::WantedPlatform() const {
  if (platform.empty()) return remote::Platform::Host();
  return remote::Platform::Parse(platform);
}

std::string HumanBytes(int64_t bytes) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  double v = static_cast<double>(bytes);
  int unit = -1;
  while (v >= 1024 && unit < 3) {
    v /= 1024;
    ++unit;
  }
  return absl::StrFormat("%.1f %s", v, kUnits[unit]);
}

}  // namespace slipstream::cli
