// SPDX-License-Identifier: Apache-2.0
#include "index/ztoc_builder.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/fd.h"
#include "common/temp_dir.h"

#include "index/gzip_member.h"
#include "tests/index/test_layers.h"

namespace slipstream::index {
namespace {

constexpr int64_t kSpan = 64 << 10;

const FileMetadata* FindEntry(const Ztoc& z, const std::string& name) {
  for (const FileMetadata& e : z.entries) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

TEST(ZtocBuilderTest, GnuTarLayerEntriesPointAtTheirData) {
  const auto& corpus = testing::Corpus();
  auto z = testing::BuildTestZtoc(corpus.layers.at("gzip"), kSpan);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->version, "0.9");
  EXPECT_EQ(z->build_tool_identifier, "slipstream-test");
  EXPECT_EQ(z->compression, CompressionAlgorithm::kGzip);
  EXPECT_EQ(z->compressed_archive_size, static_cast<int64_t>(corpus.layers.at("gzip").size()));
  EXPECT_EQ(z->uncompressed_archive_size, static_cast<int64_t>(corpus.tar.size()));
  for (const auto& [name, data] : corpus.files) {
    const FileMetadata* e = FindEntry(*z, name);
    ASSERT_NE(e, nullptr) << name;
    EXPECT_EQ(e->type, "reg");
    ASSERT_EQ(e->uncompressed_size, static_cast<int64_t>(data.size())) << name;
    EXPECT_TRUE(corpus.tar.compare(e->uncompressed_offset, data.size(), data) == 0) << name;
    EXPECT_EQ(e->uid, 0u);
    EXPECT_EQ(e->mode, 0644) << name;
  }
  const FileMetadata* link = FindEntry(*z, "./link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->type, "symlink");
  EXPECT_EQ(link->linkname, "files/f_100");
  const FileMetadata* hard = FindEntry(*z, "./hard");
  ASSERT_NE(hard, nullptr);
  EXPECT_EQ(hard->type, "hardlink");
  EXPECT_EQ(hard->linkname, "./files/f_513");
  const FileMetadata* empty = FindEntry(*z, "./empty/");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->type, "dir");
  // The GNU 'L' record carried the 125-byte name.
  EXPECT_NE(FindEntry(*z, "./deep/" + std::string(120, 'n') + ".txt"), nullptr);
}

TEST(ZtocBuilderTest, CheckpointsFollowTheSpanRule) {
  const auto& corpus = testing::Corpus();
  for (const auto& [tool, blob] : corpus.layers) {
    auto z = testing::BuildTestZtoc(blob, kSpan);
    ASSERT_TRUE(z.ok()) << tool << ": " << z.status();
    // ~31 MB of tar in 64 KiB spans.
    EXPECT_GT(z->SpanCount(), 100) << tool;
    EXPECT_EQ(z->span_digests.size(), z->checkpoints.size());
    EXPECT_EQ(z->checkpoints[0].out, 0);
    EXPECT_EQ(z->checkpoints[0].in, 10);
    // Most block ends fall mid-byte, so spans sharing a byte with their predecessor occur.
    EXPECT_TRUE(std::any_of(z->checkpoints.begin(), z->checkpoints.end(),
                            [](const Checkpoint& c) { return c.bits != 0; }))
        << tool;
    for (size_t i = 1; i < z->checkpoints.size(); ++i) {
      // Spans are longer than span_size: checkpoints come only after more than that.
      EXPECT_GT(z->checkpoints[i].out - z->checkpoints[i - 1].out, kSpan) << tool << " " << i;
      EXPECT_GT(z->checkpoints[i].in, z->checkpoints[i - 1].in);
      // The window is the 32 KiB of tar just before the checkpoint.
      ASSERT_EQ(z->checkpoints[i].window,
                corpus.tar.substr(z->checkpoints[i].out - kWindowSize, kWindowSize))
          << tool << " " << i;
    }
    EXPECT_EQ(z->span_digests[0],
              Sha256Of(std::string_view(blob).substr(
                  z->SpanCompressedStart(0), z->SpanCompressedEnd(0) - z->SpanCompressedStart(0))));
  }
}

TEST(ZtocBuilderTest, GnuTarPaxFormat) {
  auto dir = TempDir::Create("pax-");
  ASSERT_TRUE(dir.ok());
  std::string long_dir = std::string(90, 'd');
  ASSERT_TRUE(MakeDirs(dir->Join("root/" + long_dir)).ok());
  std::string long_rel = long_dir + "/" + std::string(80, 'f') + ".txt";
  ASSERT_TRUE(WriteFileAtomic(dir->Join("root/" + long_rel), "pax data").ok());
  auto tar = testing::RunFilter({"tar", "-C", dir->Join("root"), "--format=pax", "-cf", "-",
                                 long_dir},
                                "");
  ASSERT_TRUE(tar.ok()) << tar.status();
  auto blob = testing::Compress("gzip", *tar);
  ASSERT_TRUE(blob.ok());
  auto z = testing::BuildTestZtoc(*blob, kSpan);
  ASSERT_TRUE(z.ok()) << z.status();
  const FileMetadata* e = FindEntry(*z, long_rel);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->uncompressed_size, 8);
  EXPECT_EQ(tar->substr(e->uncompressed_offset, 8), "pax data");
  // GNU tar put the 171-byte name in a PAX "path" record (the ustar fields cannot hold it).
  EXPECT_TRUE(std::any_of(e->xattrs.begin(), e->xattrs.end(), [&](const Xattr& x) {
    return x.key == "path" && x.value == long_rel;
  }));
  EXPECT_TRUE(std::is_sorted(e->xattrs.begin(), e->xattrs.end(),
                             [](const Xattr& a, const Xattr& b) { return a.key < b.key; }));
}

TEST(ZtocBuilderTest, ResultDoesNotDependOnWriteSizes) {
  testing::TarBuilder t;
  t.AddFile("a", testing::PseudoRandomText(150000, 1));
  t.AddFile("b", testing::PseudoRandomText(90000, 2));
  auto blob = testing::Compress("members", t.Finish());
  ASSERT_TRUE(blob.ok());
  auto whole = testing::BuildTestZtoc(*blob, 16 << 10, blob->size());
  ASSERT_TRUE(whole.ok()) << whole.status();
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{4096}}) {
    auto pieces = testing::BuildTestZtoc(*blob, 16 << 10, chunk);
    ASSERT_TRUE(pieces.ok()) << pieces.status();
    EXPECT_EQ(*pieces, *whole) << chunk;
  }
}

TEST(ZtocBuilderTest, SmallLayersGetNoZtoc) {
  testing::TarBuilder t;
  t.AddFile("a", "tiny");
  auto blob = testing::Compress("gzip", t.Finish());
  ASSERT_TRUE(blob.ok());
  ZtocBuilder builder;  // default min_layer_size: 10 MiB
  ASSERT_TRUE(builder.Write(*blob).ok());
  auto z = builder.Finish();
  ASSERT_TRUE(z.ok());
  EXPECT_FALSE(z->has_value());
}

TEST(ZtocBuilderTest, UncompressedTarUsesFixedSlices) {
  testing::TarBuilder t;
  t.AddFile("a", testing::PseudoRandomText(100000, 5));
  std::string tar = t.Finish();
  auto z = testing::BuildTestZtoc(tar, 30000, 777);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->compression, CompressionAlgorithm::kUncompressed);
  EXPECT_TRUE(z->checkpoints.empty());
  int64_t spans = (static_cast<int64_t>(tar.size()) + 29999) / 30000;
  ASSERT_EQ(z->SpanCount(), spans);
  for (int64_t i = 0; i < spans; ++i) {
    EXPECT_EQ(z->span_digests[i], Sha256Of(std::string_view(tar).substr(i * 30000, 30000)));
  }
  EXPECT_EQ(z->entries.size(), 1u);
}

TEST(ZtocBuilderTest, GzipHeaderWithOptionalFields) {
  testing::TarBuilder t;
  t.AddFile("a", testing::PseudoRandomText(50000, 5));
  std::string tar = t.Finish();
  auto plain = testing::Compress("gzip", tar);
  ASSERT_TRUE(plain.ok());
  // Rebuild the header with FEXTRA, FNAME, FCOMMENT and FHCRC; the deflate data is unchanged.
  std::string header = plain->substr(0, 10);
  header[3] = 0x1e;
  header += std::string("\x03\0abc", 5) + "name.tar" + std::string(1, '\0') + "comment" +
            std::string(1, '\0') + "hc";
  std::string blob = header + plain->substr(10);
  auto z = testing::BuildTestZtoc(blob, 16 << 10, 5);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->checkpoints[0].in, static_cast<int64_t>(header.size()));
  EXPECT_EQ(z->uncompressed_archive_size, static_cast<int64_t>(tar.size()));
}

TEST(ZtocBuilderTest, CorruptAndTruncatedGzipFail) {
  testing::TarBuilder t;
  t.AddFile("a", testing::PseudoRandomText(200000, 9));
  auto blob = testing::Compress("gzip", t.Finish());
  ASSERT_TRUE(blob.ok());
  {
    auto z = testing::BuildTestZtoc(blob->substr(0, blob->size() / 2), kSpan);
    EXPECT_EQ(z.status().code(), absl::StatusCode::kDataLoss) << z.status();
  }
  {
    std::string bad = *blob;
    bad[bad.size() - 6] ^= 0x40;  // inside the trailer's CRC/ISIZE
    auto z = testing::BuildTestZtoc(bad, kSpan);
    EXPECT_EQ(z.status().code(), absl::StatusCode::kDataLoss) << z.status();
  }
  {
    std::string bad = *blob;
    bad[bad.size() / 2] ^= 0x55;  // inside the deflate data
    auto z = testing::BuildTestZtoc(bad, kSpan);
    EXPECT_FALSE(z.ok());
  }
  {
    auto z = testing::BuildTestZtoc(*blob + "garbage", kSpan);
    EXPECT_EQ(z.status().code(), absl::StatusCode::kDataLoss) << z.status();
  }
  {
    auto z = testing::BuildTestZtoc(*blob + std::string(100, '\0'), kSpan);
    EXPECT_TRUE(z.ok()) << z.status();  // zero padding after the last member is accepted
  }
  {
    // The same error on every call after the first.
    ZtocBuilderOptions opts;
    opts.min_layer_size = 0;
    ZtocBuilder builder(opts);
    EXPECT_FALSE(builder.Write(std::string("\x1f\x8b\x09\0\0\0\0\0\0\0", 10)).ok());
    EXPECT_FALSE(builder.Write("more").ok());
    EXPECT_FALSE(builder.Finish().ok());
  }
}

TEST(ZtocBuilderTest, BuildZtocFromBlobReader) {
  const auto& corpus = testing::Corpus();
  testing::MemoryBlobReader blob(corpus.layers.at("pigz"));
  ZtocBuilderOptions opts;
  opts.span_size = kSpan;
  opts.build_tool_identifier = "slipstream-test";
  auto z = BuildZtoc(blob, opts, 1 << 20);  // the layer is > 10 MiB: it gets a zTOC
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_TRUE(z->has_value());
  auto direct = testing::BuildTestZtoc(corpus.layers.at("pigz"), kSpan);
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(**z, *direct);
}

}  // namespace
}  // namespace slipstream::index
