// SPDX-License-Identifier: Apache-2.0
#include "index/parallel_inflate.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "tests/index/test_layers.h"

namespace slipstream::index {
namespace {

class ParallelInflateTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ParallelInflateTest, PwriteOfAllSpansRebuildsTheTar) {
  const auto& corpus = testing::Corpus();
  auto z = testing::BuildTestZtoc(corpus.layers.at(GetParam()), 256 << 10);
  ASSERT_TRUE(z.ok()) << z.status();
  testing::MemoryBlobReader blob(corpus.layers.at(GetParam()));
  auto dir = TempDir::Create("inflate-");
  ASSERT_TRUE(dir.ok());
  auto fd = OpenFile(dir->Join("out.tar"), O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok());
  std::atomic<int64_t> calls{0}, bytes{0};
  ParallelInflateOptions opts;
  opts.threads = 4;
  opts.spans_per_fetch = 3;
  absl::Status s = InflateAllSpans(
      *z, blob,
      [&](int64_t offset, std::string_view data) {
        ++calls;
        bytes += static_cast<int64_t>(data.size());
        return PwriteAll(fd->get(), data, offset);
      },
      opts);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls.load(), z->SpanCount());
  EXPECT_EQ(bytes.load(), static_cast<int64_t>(corpus.tar.size()));
  auto out = ReadFileToString(dir->Join("out.tar"), size_t{1} << 30);
  ASSERT_TRUE(out.ok());
  EXPECT_TRUE(*out == corpus.tar);
  // Batches of 3 spans: one fetch per batch.
  EXPECT_EQ(blob.reads(), (z->SpanCount() + 2) / 3);
}

INSTANTIATE_TEST_SUITE_P(Compressors, ParallelInflateTest, ::testing::Values("gzip", "members"));

TEST(ParallelInflateErrorsTest, CorruptSpanAndSinkErrorsStopTheInflate) {
  const auto& corpus = testing::Corpus();
  auto z = testing::BuildTestZtoc(corpus.layers.at("pigz"), 256 << 10);
  ASSERT_TRUE(z.ok());
  {
    testing::MemoryBlobReader blob(corpus.layers.at("pigz"));
    blob.Corrupt(z->SpanCompressedStart(5) + 7);
    absl::Status s = InflateAllSpans(*z, blob, [](int64_t, std::string_view) {
      return absl::OkStatus();
    });
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  }
  {
    testing::MemoryBlobReader blob(corpus.layers.at("pigz"));
    std::atomic<int> calls{0};
    absl::Status s = InflateAllSpans(*z, blob, [&](int64_t, std::string_view) {
      ++calls;
      return absl::ResourceExhaustedError("disk full");
    });
    EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
    // Threads stop claiming spans after the first failure.
    EXPECT_LT(calls.load(), z->SpanCount());
  }
}

}  // namespace
}  // namespace slipstream::index
