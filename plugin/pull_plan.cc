// SPDX-License-Identifier: Apache-2.0
#include "plugin/pull_plan.h"

#include <algorithm>

namespace slipstream::plugin {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;
constexpr int64_t kMinExplicitChunk = 4096;

}  // namespace

PullPlan PlanPull(const std::vector<int64_t>& layer_sizes, int cores, const PullTuning& tuning) {
  PullPlan plan;
  int64_t total = 0;
  for (int64_t s : layer_sizes) total += std::max<int64_t>(s, 0);

  const int budget = tuning.requests > 0 ? std::min(tuning.requests, kMaxRequestBudget)
                                         : kDefaultRequestBudget;
  if (tuning.chunk_size > 0) {
    plan.chunk_size = std::max(tuning.chunk_size, kMinExplicitChunk);
  } else {
    // Four chunks per slot: the last wave of requests is short, so slots do not idle long
    // at the end, yet a 2 GB image still uses 16 MiB requests (few round trips).
    int64_t want = total / (int64_t{budget} * 4);
    want = (want + kMiB - 1) / kMiB * kMiB;
    plan.chunk_size = std::clamp(want, kMinAutoChunk, kMaxAutoChunk);
  }

  for (int64_t s : layer_sizes) {
    const int64_t n = s <= 0 ? 0 : (s + plan.chunk_size - 1) / plan.chunk_size;
    plan.chunks_per_layer.push_back(n);
    plan.total_chunks += n;
  }
  plan.requests = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(budget, plan.total_chunks)));
  const int want_unpackers = tuning.unpackers > 0 ? tuning.unpackers : std::max(cores, 1);
  plan.unpackers = static_cast<int>(std::max<int64_t>(
      1, std::min<int64_t>(want_unpackers, static_cast<int64_t>(layer_sizes.size()))));
  return plan;
}

}  // namespace slipstream::plugin
