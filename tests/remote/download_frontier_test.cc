// SPDX-License-Identifier: Apache-2.0
#include "remote/download_frontier.h"

#include <gtest/gtest.h>

#include <thread>

namespace slipstream::remote {
namespace {

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
}  // namespace slipstream::remote
