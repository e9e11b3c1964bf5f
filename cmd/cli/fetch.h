// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "remote/registry_client.h"

namespace slipstream::cli {

struct FetchOptions {
  int layer = 0;              // index into the manifest's layers
  std::string output;         // file to write (created or truncated)
  int64_t chunk_size = 0;     // 0 = automatic
  int concurrency = 0;        // 0 = automatic
  bool progress = false;      // live progress on `err`
  std::string cache_dir;      // chunk cache directory; empty = no cache
  int64_t cache_max_bytes = int64_t{10} << 30;
};

// `slipstream fetch IMAGE --layer N -o FILE`: downloads one layer blob with parallel Range
// requests (through the chunk cache when options.cache_dir is set), verifies its digest, and
// prints a summary line (bytes, seconds, MiB/s, cache hits) to `out`.
// On any error the partial output file is removed.
absl::Status Fetch(remote::RegistryClient& client, const std::string& image,
                   const remote::Platform& platform, const FetchOptions& options,
                   std::ostream& out, std::ostream& err);

}  // namespace slipstream::cli
