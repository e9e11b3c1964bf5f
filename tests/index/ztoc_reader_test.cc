// SPDX-License-Identifier: Apache-2.0
#include "index/ztoc_reader.h"

#include <gtest/gtest.h>

#include <random>

#include "index/checkpoints.h"
#include "index/span_decoder.h"
#include "index/ztoc_format.h"
#include "tests/index/test_layers.h"

namespace slipstream::index {
namespace {

constexpr int64_t kSpan = 64 << 10;

// One built zTOC per compressor, shared by the tests.
std::shared_ptr<const Ztoc> ZtocFor(const std::string& tool) {
  static auto* cache = new std::map<std::string, std::shared_ptr<const Ztoc>>;
  auto it = cache->find(tool);
  if (it != cache->end()) return it->second;
  auto z = testing::BuildTestZtoc(testing::Corpus().layers.at(tool), kSpan);
  if (!z.ok()) std::abort();
  auto shared = std::make_shared<const Ztoc>(*std::move(z));
  (*cache)[tool] = shared;
  return shared;
}

class ZtocReaderTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ZtocReaderTest, EveryFileEqualsTarExtraction) {
  const auto& corpus = testing::Corpus();
  testing::MemoryBlobReader blob(corpus.layers.at(GetParam()));
  ZtocReader reader(ZtocFor(GetParam()), blob);
  for (const auto& [name, data] : corpus.files) {
    auto want = name == corpus.big_name ? absl::StatusOr<std::string>(data)
                                        : testing::RunFilter({"tar", "-xOf", corpus.tar_path,
                                                              name},
                                                             "");
    ASSERT_TRUE(want.ok()) << want.status();
    auto got = reader.ReadFile(name, 0, int64_t{1} << 40);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    ASSERT_EQ(got->size(), want->size()) << name;
    EXPECT_TRUE(*got == *want) << name;
  }
  // A hardlink reads its target; paths are found with or without "./".
  auto hard = reader.ReadFile("hard", 0, 10000);
  ASSERT_TRUE(hard.ok()) << hard.status();
  EXPECT_EQ(*hard, corpus.files.at("./files/f_513"));
  EXPECT_EQ(reader.ReadFile("link", 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader.ReadFile("missing", 0, 1).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(ZtocReaderTest, RandomRangesOfTheBigFile) {
  const auto& corpus = testing::Corpus();
  const std::string& big = corpus.files.at(corpus.big_name);
  testing::MemoryBlobReader blob(corpus.layers.at(GetParam()));
  ZtocReader reader(ZtocFor(GetParam()), blob);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 40; ++i) {
    int64_t off = static_cast<int64_t>(rng() % big.size());
    int64_t len = static_cast<int64_t>(rng() % (300 << 10));
    auto got = reader.ReadFile(corpus.big_name, off, len);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == big.substr(off, len)) << off << "+" << len;
  }
  auto tail = reader.ReadFile(corpus.big_name, big.size() - 5, 100);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, big.substr(big.size() - 5));
  EXPECT_EQ(reader.ReadFile(corpus.big_name, big.size() + 1, 10)->size(), 0u);
  EXPECT_FALSE(reader.ReadFile(corpus.big_name, -1, 10).ok());
}

TEST_P(ZtocReaderTest, SmallFileFetchesAtMostTwoSpansInOneRead) {
  const auto& corpus = testing::Corpus();
  auto z = ZtocFor(GetParam());
  testing::MemoryBlobReader blob(corpus.layers.at(GetParam()));
  ZtocReader reader(z, blob);
  int64_t largest = 0;
  for (int64_t s = 0; s < z->SpanCount(); ++s) {
    largest = std::max(largest, z->SpanCompressedEnd(s) - z->SpanCompressedStart(s));
  }
  for (const char* name : {"./files/f_100", "./files/f_4095", "./nested/a/b/leaf.txt"}) {
    ReadStats stats;
    auto got = reader.ReadFile(name, 0, 1 << 20, &stats);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, corpus.files.at(name));
    EXPECT_LE(stats.spans_decoded, 2) << name;
    EXPECT_EQ(stats.fetches, 1) << name;
    EXPECT_LE(stats.compressed_bytes_fetched, 2 * largest) << name;
  }
  // A multi-span range is one coalesced fetch.
  ReadStats stats;
  ASSERT_TRUE(reader.ReadFile(corpus.big_name, 0, 2 << 20, &stats).ok());
  EXPECT_GE(stats.spans_decoded, 10);
  EXPECT_EQ(stats.fetches, 1);
  EXPECT_EQ(blob.reads(), 4);
}

TEST_P(ZtocReaderTest, FlippedByteIsDataLoss) {
  const auto& corpus = testing::Corpus();
  auto z = ZtocFor(GetParam());
  testing::MemoryBlobReader blob(corpus.layers.at(GetParam()));
  int64_t span = z->SpanCount() / 2;
  blob.Corrupt(z->SpanCompressedStart(span) + 100);
  ZtocReader reader(z, blob);
  auto got = reader.ReadUncompressed(z->SpanUncompressedStart(span), 10);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  // Other spans still read.
  EXPECT_TRUE(reader.ReadUncompressed(z->SpanUncompressedStart(span + 2), 10).ok());
}

INSTANTIATE_TEST_SUITE_P(Compressors, ZtocReaderTest,
                         ::testing::Values("gzip", "pigz", "members"));

TEST(ZtocReaderV1Test, LegacyCheckpointBlobReadsTheSameFiles) {
  const auto& corpus = testing::Corpus();
  auto z = ZtocFor("gzip");
  std::string blob = EncodeGzipCheckpoints(z->span_size, z->checkpoints);
  testing::RawOverrides o;
  o.checkpoints_blob = blob.substr(0, kCheckpointBlobHeaderSize) +
                       blob.substr(kCheckpointBlobHeaderSize + kCheckpointRecordSize);
  auto v1 = ParseZtoc(testing::SerializeRaw(*z, o));
  ASSERT_TRUE(v1.ok()) << v1.status();
  testing::MemoryBlobReader layer(corpus.layers.at("gzip"));
  ZtocReader reader(std::make_shared<const Ztoc>(*std::move(v1)), layer);
  for (const char* name : {"./files/f_0", "./files/f_1", "./files/f_65537", "./big.bin"}) {
    auto got = reader.ReadFile(name, 0, int64_t{1} << 40);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    EXPECT_TRUE(*got == corpus.files.at(name)) << name;
  }
}

TEST(ZtocReaderUncompressedTest, ReadsPlainTarLayers) {
  testing::TarBuilder t;
  std::string a = testing::PseudoRandomText(123457, 11);
  t.AddFile("a", a);
  t.AddFile("b", "bee");
  std::string tar = t.Finish();
  auto z = testing::BuildTestZtoc(tar, 10000);
  ASSERT_TRUE(z.ok()) << z.status();
  testing::MemoryBlobReader blob(tar);
  ZtocReader reader(std::make_shared<const Ztoc>(*std::move(z)), blob);
  ReadStats stats;
  auto got = reader.ReadFile("a", 5000, 30000, &stats);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, a.substr(5000, 30000));
  EXPECT_EQ(stats.fetches, 1);
  EXPECT_EQ(*reader.ReadFile("b", 0, 10), "bee");
  blob.Corrupt(600);
  EXPECT_EQ(reader.ReadFile("a", 0, 10).status().code(), absl::StatusCode::kDataLoss);
}

TEST(SpanDecoderTest, RejectsWrongSizeAndIndex) {
  auto z = ZtocFor("members");
  const std::string& layer = testing::Corpus().layers.at("members");
  std::string_view span0 = std::string_view(layer).substr(
      z->SpanCompressedStart(0), z->SpanCompressedEnd(0) - z->SpanCompressedStart(0));
  EXPECT_TRUE(DecodeSpan(*z, 0, span0).ok());
  EXPECT_EQ(DecodeSpan(*z, 0, span0.substr(1)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeSpan(*z, z->SpanCount(), span0).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(DecodeSpan(*z, 1, span0).status().code(), absl::StatusCode::kDataLoss);
}

TEST(SpanDecoderTest, ZtocClaimingMoreDataThanTheSpanHoldsIsDataLoss) {
  Ztoc lying = *ZtocFor("gzip");
  int64_t last = lying.SpanCount() - 1;
  lying.uncompressed_archive_size += 5 << 20;
  ASSERT_TRUE(ValidateZtoc(lying).ok());
  const std::string& layer = testing::Corpus().layers.at("gzip");
  std::string_view bytes = std::string_view(layer).substr(lying.SpanCompressedStart(last));
  auto got = DecodeSpan(lying, last, bytes);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
}

}  // namespace
}  // namespace slipstream::index
