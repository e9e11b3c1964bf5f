// SPDX-License-Identifier: Apache-2.0
#include "index/parallel_inflate.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <atomic>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "index/span_decoder.h"
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

// One buffer for every span, largest and smallest in turn: each decode leaves exactly its
// span's bytes, whatever the buffer held before.
TEST_P(ParallelInflateTest, DecodeSpanIntoReusesOneBuffer) {
  const auto& corpus = testing::Corpus();
  const std::string& layer = corpus.layers.at(GetParam());
  auto z = testing::BuildTestZtoc(layer, 256 << 10);
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_GE(z->SpanCount(), 4);
  std::string buffer(8 << 20, 'x');
  for (int64_t i = z->SpanCount() - 1; i >= 0; --i) {
    std::string_view bytes = std::string_view(layer).substr(
        z->SpanCompressedStart(i), z->SpanCompressedEnd(i) - z->SpanCompressedStart(i));
    ASSERT_TRUE(DecodeSpanInto(*z, i, bytes, &buffer).ok()) << i;
    const int64_t start = z->SpanUncompressedStart(i);
    ASSERT_EQ(static_cast<int64_t>(buffer.size()), z->SpanUncompressedEnd(i) - start) << i;
    EXPECT_TRUE(buffer == std::string_view(corpus.tar).substr(start, buffer.size())) << i;
  }
  // A failed decode (wrong span for these bytes) is an error, not a stale success.
  std::string_view first = std::string_view(layer).substr(
      z->SpanCompressedStart(0), z->SpanCompressedEnd(0) - z->SpanCompressedStart(0));
  EXPECT_EQ(DecodeSpanInto(*z, 1, first, &buffer).code(), absl::StatusCode::kDataLoss);
}

INSTANTIATE_TEST_SUITE_P(Compressors, ParallelInflateTest, ::testing::Values("gzip", "members"));

// SpanCheck::kSize trusts the bytes (the caller checks the blob's digest): a zTOC whose span
// digest is wrong still inflates, where the default check refuses it.
TEST(ParallelInflateChecksTest, SizeCheckSkipsSpanDigests) {
  const auto& corpus = testing::Corpus();
  auto z = testing::BuildTestZtoc(corpus.layers.at("gzip"), 256 << 10);
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_GE(z->SpanCount(), 3);
  Ztoc wrong_digest = *z;
  wrong_digest.span_digests[1] = Sha256Of("not span 1");
  testing::MemoryBlobReader blob(corpus.layers.at("gzip"));
  std::string out(corpus.tar.size(), '\0');
  auto sink = [&](int64_t offset, std::string_view data) {
    out.replace(static_cast<size_t>(offset), data.size(), data);  // disjoint ranges
    return absl::OkStatus();
  };
  EXPECT_EQ(InflateAllSpans(wrong_digest, blob, sink).code(), absl::StatusCode::kDataLoss);
  ParallelInflateOptions opts;
  opts.threads = 2;
  opts.check = SpanCheck::kSize;
  absl::Status s = InflateAllSpans(wrong_digest, blob, sink, opts);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(out == corpus.tar);
  // The size is still checked.
  std::string span0 = *blob.ReadAt(z->SpanCompressedStart(0),
                                   z->SpanCompressedEnd(0) - z->SpanCompressedStart(0));
  std::string buffer;
  EXPECT_TRUE(DecodeSpanInto(*z, 0, span0, &buffer, SpanCheck::kSize).ok());
  EXPECT_EQ(DecodeSpanInto(*z, 0, span0.substr(1), &buffer, SpanCheck::kSize).code(),
            absl::StatusCode::kDataLoss);
}

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
