// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "plugin/pull_plan.h"

namespace slipstream::plugin {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(PlanPullTest, SmallImageUsesMinimumChunkAndOneRequestPerSmallLayer) {
  PullPlan p = PlanPull({100, 5000, 3 * kMiB}, 4, {});
  EXPECT_EQ(p.chunk_size, kMinAutoChunk);
  EXPECT_EQ(p.chunks_per_layer, (std::vector<int64_t>{1, 1, 3}));
  EXPECT_EQ(p.total_chunks, 5);
  EXPECT_EQ(p.requests, 5);   // capped by the work there is
  EXPECT_EQ(p.unpackers, 3);  // capped by the layers
}

TEST(PlanPullTest, LargeImageUsesLargeChunksCappedAtMaximum) {
  PullPlan p = PlanPull({2048 * kMiB, 10 * kMiB}, 2, {});
  EXPECT_EQ(p.chunk_size, kMaxAutoChunk);
  EXPECT_EQ(p.requests, kDefaultRequestBudget);
  EXPECT_EQ(p.unpackers, 2);
  PullPlan mid = PlanPull({200 * kMiB}, 8, {});
  EXPECT_EQ(mid.chunk_size, 4 * kMiB);  // 200 MiB / (16 slots * 4) rounded up to whole MiB
  EXPECT_EQ(mid.unpackers, 1);
}

TEST(PlanPullTest, ExplicitValuesWinWithinLimits) {
  PullPlan p = PlanPull({10 * kMiB}, 2, {.chunk_size = 256 << 10, .requests = 8, .unpackers = 1});
  EXPECT_EQ(p.chunk_size, 256 << 10);
  EXPECT_EQ(p.chunks_per_layer[0], 40);
  EXPECT_EQ(p.requests, 8);
  PullPlan capped = PlanPull({1000 * kMiB}, 2, {.chunk_size = 1, .requests = 1000});
  EXPECT_EQ(capped.chunk_size, 4096);
  EXPECT_EQ(capped.requests, kMaxRequestBudget);
}

TEST(PlanPullTest, EmptyBlobNeedsNoRequest) {
  PullPlan p = PlanPull({0}, 2, {});
  EXPECT_EQ(p.chunks_per_layer[0], 0);
  EXPECT_EQ(p.requests, 1);
}

}  // namespace
}  // namespace slipstream::plugin
