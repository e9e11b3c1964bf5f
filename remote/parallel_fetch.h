// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>

#include "remote/registry_client.h"

namespace slipstream::remote {

// How RegistryClient::DownloadBlob splits a blob of `size` bytes.
struct ParallelPlan {
  int64_t chunk_size = 0;
  int concurrency = 1;
  int64_t chunks = 0;
};

inline constexpr int64_t kDefaultFetchChunk = 8 << 20;
inline constexpr int kMaxFetchConcurrency = 16;

// Auto values: 8 MiB chunks; one request in flight per chunk up to 16 (so a blob under one
// chunk gets a single request); explicit options win (concurrency capped at 64). Pure.
ParallelPlan PlanParallelFetch(int64_t size, const ParallelFetchOptions& opts);

}  // namespace slipstream::remote
