// SPDX-License-Identifier: Apache-2.0
// slipstreamd: containerd's snapshotter daemon. Only wires flags to cmd/daemon.
#include <CLI/CLI.hpp>

#include "cmd/daemon/config.h"
#include "cmd/daemon/daemon.h"
#include "common/log.h"

int main(int argc, char** argv) {
  using namespace slipstream;
  CLI::App app{"slipstreamd: containerd snapshotter with parallel and lazy pulls"};
  std::string config_path, root, address, log_level;
  app.add_option("--config", config_path, "TOML configuration file (optional)");
  app.add_option("--root", root, "state directory (overrides the config file)");
  app.add_option("--address", address, "unix socket to serve on (overrides the config file)");
  app.add_option("--log-level", log_level, "debug|info|warn|error (overrides the config file)");
  CLI11_PARSE(app, argc, argv);

  daemon::DaemonConfig config;
  if (!config_path.empty()) {
    auto loaded = daemon::LoadConfigFile(config_path);
    if (!loaded.ok()) {
      log::Error("bad configuration", {{"error", loaded.status().ToString()}});
      return 2;
    }
    config = *loaded;
  }
  if (!root.empty()) config.root = root;
  if (!address.empty()) config.address = address;
  if (!log_level.empty() && !log::ParseLevel(log_level, &config.log_level)) {
    log::Error("bad flag", {{"flag", "--log-level"}, {"value", log_level}});
    return 2;
  }
  log::SetLevel(config.log_level);
  auto status = daemon::RunUntilSignal(config);
  if (!status.ok()) {
    log::Error("slipstreamd failed", {{"error", status.ToString()}});
    return 1;
  }
  return 0;
}
