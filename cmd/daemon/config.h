// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/log.h"

namespace slipstream::daemon {

// Tuning of the parallel pull engine (consumed by plugin/pull_*).
struct EngineConfig {
  // Concurrent HTTP Range requests per registry host.
  int max_connections = 16;
  // Bytes per Range request.
  int64_t chunk_size = 8 << 20;
  // Layers unpacked at once; 0 = one per CPU.
  int unpack_workers = 0;
  // When the engine fails for a layer: "fail" the pull, or "fallback" to an ordinary active
  // snapshot so containerd fetches that layer itself.
  std::string on_failure = "fail";
  // Use an image's SOCI index, when it has one, to inflate its indexed layers span by span
  // on every core (costs one or two registry requests per image to look for it).
  bool use_soci_index = false;
};

// slipstreamd's configuration. Every field has a default, so an empty file (or none at all)
// is a working configuration. Plain value type.
//
// TOML layout (every key optional; unknown keys are errors so typos do not pass silently):
//   root = "/var/lib/slipstream"
//   address = "/run/slipstream/slipstream.sock"
//   log_level = "info"                 # debug | info | warn | error
//   default_mode = "parallel"          # parallel | lazy | containerd
//   [engine]
//   max_connections = 16
//   chunk_size = "8MiB"                # integer bytes or "<n>[KiB|MiB|GiB|K|M|G]"
//   unpack_workers = 0
//   on_failure = "fail"                # fail | fallback
//   use_soci_index = false
//   [lazy]
//   mount_dir = ""                     # "" = <root>/fuse (lazy mode's FUSE mountpoint)
//   [cache]
//   size = "10GiB"
//   [registry]
//   hosts_dir = "/etc/containerd/certs.d"
//   docker_config = ""                 # "" = $DOCKER_CONFIG/config.json or ~/.docker/config.json
struct DaemonConfig {
  std::string root = "/var/lib/slipstream";
  std::string address = "/run/slipstream/slipstream.sock";
  log::Level log_level = log::Level::kInfo;
  std::string default_mode = "parallel";
  EngineConfig engine;
  // Where lazy mode mounts its FUSE filesystem; "" = <root>/fuse.
  std::string lazy_mount_dir;
  int64_t cache_size = int64_t{10} << 30;
  std::string hosts_dir = "/etc/containerd/certs.d";
  std::string docker_config;
};

// Parses TOML `text`; `source` names it in errors. InvalidArgument naming the file, the key
// (dotted, e.g. "engine.chunk_size") and what was wrong; TOML syntax errors carry line:column.
absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text, std::string_view source);

// Reads and parses the file at `path`. NotFound when it does not exist.
absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path);

// Parses "123", "8MiB", "10G" ... into bytes. InvalidArgument otherwise.
absl::StatusOr<int64_t> ParseByteSize(std::string_view text);

}  // namespace slipstream::daemon
