// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
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

// The CRI ImageService proxy (plugin/cri_image_proxy.h).
struct CriConfig {
  // Serve runtime.v1.ImageService on the daemon's socket (kubelet's imageServiceEndpoint).
  // Also starts lazy mode, which a pod may ask for.
  bool enable_image_service = false;
  // containerd's CRI socket, where every image call is forwarded.
  std::string containerd_address = "/run/containerd/containerd.sock";
  // Lifetime of registry credentials taken from PullImage requests (kept in memory only).
  absl::Duration credential_ttl = absl::Hours(12);
};

// One `[[mode_rules]]` entry: images whose registry and repository match the globs get `mode`.
struct ModeRuleConfig {
  std::string registry;    // glob, "" = any
  std::string repository;  // glob, "" = any
  std::string mode;        // parallel | lazy | containerd
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
//   keep_mounts_on_exit = true         # on SIGTERM leave the FUSE mount to the fd holder
//   holder_socket = ""                 # "" = <root>/fuse-holder.sock (slipstream-fuse-holder)
//   background_threads = 2             # threads completing lazy layers; 0 = reads only
//   [cache]
//   size = "10GiB"
//   [registry]
//   hosts_dir = "/etc/containerd/certs.d"
//   docker_config = ""                 # "" = $DOCKER_CONFIG/config.json or ~/.docker/config.json
//   max_attempts = 6                   # tries of one registry request (remote/retry.h)
//   retry_max_total = "2m"             # one request's retries end within this
//   stall_timeout = "30s"              # a transfer receiving no byte this long is aborted
//   [cri]                              # the CRI ImageService proxy (docs/cri-proxy.md)
//   enable_image_service = false       # serve runtime.v1.ImageService on `address`
//   containerd_address = "/run/containerd/containerd.sock"  # the CRI socket it forwards to
//   credential_ttl = "12h"             # how long kubelet's pull credentials are kept (memory)
//   [metrics]
//   address = ""                       # "IPv4:PORT" for GET /metrics (docs/metrics.md); "" = off
//   [[mode_rules]]                     # first match wins; below pod annotations
//   registry = "*.dkr.ecr.*.amazonaws.com"   # glob; "" or absent = any
//   repository = "ml/*"                # glob; `*` also matches '/'
//   mode = "lazy"                      # parallel | lazy | containerd
struct DaemonConfig {
  std::string root = "/var/lib/slipstream";
  std::string address = "/run/slipstream/slipstream.sock";
  log::Level log_level = log::Level::kInfo;
  std::string default_mode = "parallel";
  EngineConfig engine;
  // Where lazy mode mounts its FUSE filesystem; "" = <root>/fuse.
  std::string lazy_mount_dir;
  // Leave the FUSE mount (kept alive by slipstream-fuse-holder) on a clean exit, so containers
  // read on while slipstreamd restarts; false unmounts it (docs/lazy-fuse.md, "Restart").
  bool lazy_keep_mounts_on_exit = true;
  // The fd holder's socket; "" = <root>/fuse-holder.sock.
  std::string lazy_holder_socket;
  // Threads fetching the spans of lazy layers nobody read yet; 0 = only what is read.
  int lazy_background_threads = 2;
  // Sequential reads of a lazy file: spans fetched ahead of the reader and the threads that
  // fetch them (fuse::LayerFsOptions), and the kernel's read-ahead window on the FUSE mount
  // (its bdi's read_ahead_kb; 0 = leave the kernel's 128 KiB).
  // 16 spans (64 MiB at SOCI's 4 MiB) on 4 threads: 450 MiB/s against 300 with 4 on 2, in
  // bench/lazy (docs/benchmarks.md); threads mostly wait on the registry, not the CPU.
  int lazy_read_ahead_spans = 16;
  int lazy_read_ahead_threads = 4;
  int64_t lazy_kernel_read_ahead = int64_t{4} << 20;
  int64_t cache_size = int64_t{10} << 30;
  std::string hosts_dir = "/etc/containerd/certs.d";
  std::string docker_config;
  // The registry client's retries and stall detection (remote::RetryPolicy,
  // RegistryClientOptions::stall_timeout), for every registry request of both modes.
  int registry_max_attempts = 6;
  absl::Duration registry_retry_max_total = absl::Minutes(2);
  absl::Duration registry_stall_timeout = absl::Seconds(30);
  CriConfig cri;
  // Where GET /metrics is served, "IPv4:PORT" (port 0 = any free port); "" = no endpoint.
  std::string metrics_address;
  // `[[mode_rules]]`, in file order.
  std::vector<ModeRuleConfig> mode_rules;
};

// Parses TOML `text`; `source` names it in errors. InvalidArgument naming the file, the key
// (dotted, e.g. "engine.chunk_size") and what was wrong; TOML syntax errors carry line:column.
absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text, std::string_view source);

// Reads and parses the file at `path`. NotFound when it does not exist.
absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path);

// Parses "123", "8MiB", "10G" ... into bytes. InvalidArgument otherwise.
absl::StatusOr<int64_t> ParseByteSize(std::string_view text);

}  // namespace slipstream::daemon
