// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include <thread>

#include "plugin/pull_frontier.h"
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

TEST(DownloadFrontierTest, PrefixFollowsOutOfOrderChunks) {
  DownloadFrontier f(10, 4);  // chunks [0,4) [4,8) [8,10)
  EXPECT_EQ(f.chunks(), 3);
  EXPECT_EQ(f.ChunkLength(2), 2);
  f.Fill(2, 2);
  f.Fill(1, 4);
  EXPECT_EQ(f.prefix(), 0);
  f.Fill(0, 3);
  EXPECT_EQ(f.prefix(), 3);  // part of the first chunk counts
  f.Fill(0, 1);              // never goes backwards
  EXPECT_EQ(f.prefix(), 3);
  EXPECT_FALSE(f.complete());
  f.Fill(0, 4);
  EXPECT_EQ(f.prefix(), 10);  // runs over the chunks that were already complete
  EXPECT_TRUE(f.complete());
  EXPECT_EQ(*f.WaitBeyond(3), 10);
  EXPECT_EQ(*f.WaitBeyond(10), 10);  // complete: returns at once
}

TEST(DownloadFrontierTest, WaitRangeAndAbortWakeWaiters) {
  DownloadFrontier f(12, 4);
  f.Fill(1, 2);
  EXPECT_TRUE(f.WaitRange(4, 2).ok());  // bytes 4..5 are there
  EXPECT_EQ(f.WaitRange(10, 5).code(), absl::StatusCode::kOutOfRange);
  std::thread waiter([&] {
    absl::StatusOr<int64_t> r = f.WaitBeyond(0);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(f.WaitRange(8, 4).code(), absl::StatusCode::kUnavailable);
  });
  f.Abort(absl::UnavailableError("registry went away"));
  waiter.join();
  f.Abort(absl::InternalError("second"));  // the first status wins
  EXPECT_EQ(f.WaitBeyond(0).status().code(), absl::StatusCode::kUnavailable);
}

TEST(DownloadFrontierTest, WaiterWakesWhenPrefixGrows) {
  DownloadFrontier f(8, 4);
  std::thread filler([&] {
    f.Fill(1, 4);
    f.Fill(0, 4);
  });
  absl::StatusOr<int64_t> r = f.WaitBeyond(0);
  ASSERT_TRUE(r.ok());
  EXPECT_GT(*r, 0);
  EXPECT_TRUE(f.WaitRange(0, 8).ok());
  filler.join();
}

}  // namespace
}  // namespace slipstream::plugin
