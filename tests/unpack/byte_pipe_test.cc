// SPDX-License-Identifier: Apache-2.0
#include "unpack/byte_pipe.h"

#include <atomic>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace slipstream::unpack {
namespace {

std::string Pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 13) % 26);
  return s;
}

TEST(BytePipeTest, DeliversEveryByteInOrderOnAnotherThread) {
  const std::string input = Pattern(1'000'003);
  std::string got;
  std::thread::id sink_thread;
  BytePipe pipe(
      [&](std::string_view b) {
        sink_thread = std::this_thread::get_id();
        got.append(b);
        return absl::OkStatus();
      },
      /*block_size=*/4096, /*max_blocks=*/3);
  // Odd piece sizes: pieces straddle block boundaries and fill several blocks at once.
  for (size_t off = 0; off < input.size();) {
    const size_t n = std::min<size_t>(input.size() - off, 1 + (off % 9973));
    ASSERT_TRUE(pipe.Write(std::string_view(input).substr(off, n)).ok());
    off += n;
  }
  ASSERT_TRUE(pipe.Finish().ok());
  EXPECT_EQ(got, input);
  EXPECT_NE(sink_thread, std::this_thread::get_id());
}

TEST(BytePipeTest, EmptyStreamFinishesWithoutCallingTheSink) {
  int calls = 0;
  BytePipe pipe([&](std::string_view) {
    ++calls;
    return absl::OkStatus();
  });
  EXPECT_TRUE(pipe.Write("").ok());
  EXPECT_TRUE(pipe.Finish().ok());
  EXPECT_EQ(calls, 0);
}

TEST(BytePipeTest, SinkErrorIsStickyAndReachesTheProducer) {
  int calls = 0;
  BytePipe pipe(
      [&](std::string_view) {
        ++calls;
        return calls == 2 ? absl::InvalidArgumentError("bad tar member x") : absl::OkStatus();
      },
      /*block_size=*/16, /*max_blocks=*/2);
  absl::Status s;
  // The producer learns about the failure at a later Write: keep writing until it does.
  for (int i = 0; i < 100000 && s.ok(); ++i) s = pipe.Write(std::string(16, 'x'));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pipe.Write("more").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pipe.Finish().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls, 2);
}

TEST(BytePipeTest, BoundedMemoryBlocksAFastProducer) {
  // The sink blocks until released: the producer must stall after max_blocks blocks instead
  // of buffering the whole stream.
  absl::Notification release;
  std::atomic<int64_t> written{0};
  BytePipe pipe(
      [&](std::string_view) {
        release.WaitForNotification();
        return absl::OkStatus();
      },
      /*block_size=*/1024, /*max_blocks=*/4);
  std::thread producer([&] {
    for (int i = 0; i < 64; ++i) {
      ASSERT_TRUE(pipe.Write(std::string(1024, 'y')).ok());
      written += 1024;
    }
    ASSERT_TRUE(pipe.Finish().ok());
  });
  // Wait until the producer stops making progress, then check how far it got.
  int64_t last = -1;
  while (last != written.load()) {
    last = written.load();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LE(written.load(), 5 * 1024);  // 4 blocks alive plus the one Write() in progress
  release.Notify();
  producer.join();
  EXPECT_EQ(written.load(), 64 * 1024);
}

TEST(BytePipeTest, AbortDropsQueuedBytes) {
  absl::Notification release;
  int64_t consumed = 0;
  auto pipe = std::make_unique<BytePipe>(
      [&](std::string_view b) {
        release.WaitForNotification();
        consumed += static_cast<int64_t>(b.size());
        return absl::OkStatus();
      },
      /*block_size=*/8, /*max_blocks=*/4);
  ASSERT_TRUE(pipe->Write(std::string(16, 'z')).ok());  // two blocks queued
  release.Notify();
  pipe->Abort();
  EXPECT_LE(consumed, 16);
  EXPECT_EQ(pipe->Write("x").code(), absl::StatusCode::kFailedPrecondition);
  pipe.reset();  // destructor after Abort is a no-op
}

}  // namespace
}  // namespace slipstream::unpack
