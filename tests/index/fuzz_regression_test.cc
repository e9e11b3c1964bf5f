// SPDX-License-Identifier: Apache-2.0
// Regressions for what fuzzing the zTOC parser turned up (fuzz/ztoc_fuzzer.cc,
// fuzz/checkpoints_fuzzer.cc), and a check that the committed seed corpus still parses, so a
// format change cannot silently leave the fuzz targets starting from rejected inputs.
#include <dirent.h>

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "common/fd.h"
#include "index/checkpoints.h"
#include "index/ztoc.h"
#include "index/ztoc_format.h"
#include "tests/index/test_layers.h"

#ifndef SLIPSTREAM_FUZZ_CORPUS_DIR
#error "SLIPSTREAM_FUZZ_CORPUS_DIR must name fuzz/corpus"
#endif

namespace slipstream::index {
namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

// An uncompressed layer claiming INT64_MAX bytes: SpanCount() rounded up with
// (size + span_size - 1) / span_size, a signed overflow (UBSan) that ParseZtoc reached while
// comparing the span count with max_span_id.
TEST(FuzzRegressionTest, SpanCountOfAHugeUncompressedLayerDoesNotOverflow) {
  Ztoc z;
  z.compression = CompressionAlgorithm::kUncompressed;
  z.compressed_archive_size = z.uncompressed_archive_size = kInt64Max;
  z.span_size = 2;
  EXPECT_EQ(z.SpanCount(), kInt64Max / 2 + 1);
  z.span_size = kMaxSpanSize;
  EXPECT_EQ(z.SpanCount(), kInt64Max / kMaxSpanSize + 1);
  z.compressed_archive_size = z.uncompressed_archive_size = 4 * kMaxSpanSize;
  EXPECT_EQ(z.SpanCount(), 4);
  EXPECT_EQ(z.SpanUncompressedEnd(3), 4 * kMaxSpanSize);
}

TEST(FuzzRegressionTest, ParseZtocRejectsAHugeUncompressedLayer) {
  Ztoc z;
  z.compression = CompressionAlgorithm::kUncompressed;
  z.compressed_archive_size = z.uncompressed_archive_size = kInt64Max;
  z.span_size = 2;
  testing::RawOverrides o;
  o.checkpoints_blob = EncodeTarZinfo({2, 2, kInt64Max});
  o.max_span_id = 0;
  o.span_digests = std::vector<std::string>{Sha256Of("").str()};
  auto parsed = ParseZtoc(testing::SerializeRaw(z, o));
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << parsed.status();
}

std::vector<std::string> CorpusFiles(const std::string& target) {
  std::string dir = std::string(SLIPSTREAM_FUZZ_CORPUS_DIR) + "/" + target;
  std::vector<std::string> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name);
  }
  closedir(d);
  return files;
}

// Seeds are real zTOCs made by our builder (ztoc_seed_gen): every one parses, and they cover
// gzip (v1 and v2 checkpoints, one and several members) and uncompressed layers.
TEST(FuzzCorpusTest, ZtocSeedsParse) {
  std::vector<std::string> files = CorpusFiles("ztoc_fuzzer");
  ASSERT_GE(files.size(), 4u);
  int gzip = 0, tar = 0, multi_span = 0;
  for (const std::string& f : files) {
    auto bytes = ReadFileToString(f);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_LT(bytes->size(), 64u << 10) << f;
    auto z = ParseZtoc(*bytes);
    ASSERT_TRUE(z.ok()) << f << ": " << z.status() << " (regenerate: scripts/fuzz --regen-seeds)";
    EXPECT_FALSE(z->entries.empty()) << f;
    (z->compression == CompressionAlgorithm::kGzip ? gzip : tar)++;
    if (z->SpanCount() > 1) ++multi_span;
  }
  EXPECT_GE(gzip, 2);
  EXPECT_GE(tar, 1);
  EXPECT_GE(multi_span, 2);
}

TEST(FuzzCorpusTest, CheckpointSeedsDecode) {
  std::vector<std::string> files = CorpusFiles("checkpoints_fuzzer");
  ASSERT_GE(files.size(), 4u);
  int v1 = 0, v2 = 0, zinfo = 0;
  for (const std::string& f : files) {
    auto bytes = ReadFileToString(f);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_LT(bytes->size(), 64u << 10) << f;
    auto gzip = DecodeGzipCheckpoints(*bytes);
    auto tar = DecodeTarZinfo(*bytes);
    EXPECT_TRUE(gzip.ok() || tar.ok()) << f << " (regenerate: scripts/fuzz --regen-seeds)";
    if (gzip.ok()) (gzip->v1 ? v1 : v2)++;
    if (tar.ok()) ++zinfo;
  }
  EXPECT_GE(v1, 1);
  EXPECT_GE(v2, 1);
  EXPECT_GE(zinfo, 1);
}

}  // namespace
}  // namespace slipstream::index
