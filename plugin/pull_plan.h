// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <vector>

namespace slipstream::plugin {

// Limits of the automatic choices (see PlanPull).
inline constexpr int64_t kMinAutoChunk = int64_t{1} << 20;
inline constexpr int64_t kMaxAutoChunk = int64_t{16} << 20;
inline constexpr int kDefaultRequestBudget = 16;
inline constexpr int kMaxRequestBudget = 64;

// What the caller asked for; zero means "choose".
struct PullTuning {
  int64_t chunk_size = 0;  // bytes per Range request
  int requests = 0;        // Range requests in flight across the whole image
  int unpackers = 0;       // layers decompressed and untarred at the same time
};

// The concrete numbers one pull runs with.
struct PullPlan {
  int64_t chunk_size = 0;
  int requests = 1;
  int unpackers = 1;
  std::vector<int64_t> chunks_per_layer;  // < 1 chunk: 1 request; an empty blob: none
  int64_t total_chunks = 0;
};

// Chooses chunk size and concurrency for an image whose compressed layers have `layer_sizes`
// bytes, on a machine with `cores` cores. Explicit values in `tuning` win (chunk size at
// least 4 KiB, requests capped at kMaxRequestBudget). Automatic choices: chunk size such that
// the image splits into about four chunks per request slot (keeping every slot busy until
// the end while the per-request overhead stays small), rounded to whole MiB and clamped to
// [kMinAutoChunk, kMaxAutoChunk]; kDefaultRequestBudget requests; one unpacker per core.
// Both concurrencies are capped by the work there is (chunks, layers) and are at least 1.
// Pure function.
PullPlan PlanPull(const std::vector<int64_t>& layer_sizes, int cores, const PullTuning& tuning);

}  // namespace slipstream::plugin
