// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "cmd/cli/registry_flags.h"
#include "remote/platform.h"
#include "remote/registry_client.h"

namespace slipstream::cli {

struct PullCliOptions {
  std::string dest;          // output directory (--dest)
  int64_t chunk_size = 0;    // bytes per Range request; 0 = automatic
  int concurrency = 0;       // Range requests in flight across the image; 0 = automatic
  int unpackers = 0;         // layers unpacked at once; 0 = one per core
  bool rootfs = false;       // also merge the layers into <dest>/rootfs
  std::string cache_dir;     // chunk cache directory; empty = no cache
  bool soci = false;         // inflate indexed layers' spans in parallel (SOCI index)
  int inflate_threads = 0;   // span inflate threads per indexed layer; 0 = cores
  bool one_thread_per_layer = false;  // no separate untar thread (for comparisons)
  bool progress = false;     // live per-layer progress bars on `err` (a TTY)
};

// `slipstream pull IMAGE --dest DIR`: pulls every layer of the image in parallel (chunked
// Range requests, unpacked while downloading) into DIR/<index>-<diff_id hex12>, optionally
// merges them into DIR/rootfs, writes DIR/pull.json, and prints one summary line to `out`
// (layers, bytes, seconds, MiB/s). With `progress`, redraws one bar per layer on `err`
// (fetched / unpacked bytes, decompressed bytes and files once done) about 5 times a second.
// Errors as plugin::PullImage.
absl::Status Pull(remote::RegistryClient& client, const std::string& image,
                  const remote::Platform& platform, const PullCliOptions& options,
                  std::ostream& out, std::ostream& err);

// Wires `slipstream pull` into the CLI. Owns its flag values; not thread-safe.
class PullCommand {
 public:
  // Adds the `pull` subcommand to `app`.
  void Register(CLI::App* app, RegistryFlags* registry_flags);
  // True when `pull` was the parsed subcommand.
  bool parsed() const { return cmd_ != nullptr && cmd_->parsed(); }
  // Runs it; `progress` turns the live display on (main passes isatty(stderr)).
  absl::Status Run(remote::RegistryClient& client, const remote::Platform& platform,
                   bool progress, std::ostream& out, std::ostream& err);

 private:
  CLI::App* cmd_ = nullptr;
  std::string image_;
  PullCliOptions options_;
};

}  // namespace slipstream::cli
