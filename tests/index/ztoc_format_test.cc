// SPDX-License-Identifier: Apache-2.0
#include "index/ztoc_format.h"

#include <gtest/gtest.h>

#include <random>

#include "index/checkpoints.h"
#include "tests/index/test_layers.h"

namespace slipstream::index {
namespace {

using testing::RawOverrides;
using testing::SerializeRaw;

// A small gzip layer with several spans, built once.
const Ztoc& SmallZtoc() {
  static const Ztoc* z = [] {
    testing::TarBuilder tar;
    tar.AddDir("dir/");
    tar.AddFile("dir/a.txt", testing::PseudoRandomText(300000, 7));
    tar.AddSymlink("dir/link", "a.txt");
    tar.AddFile("dir/b.txt", testing::PseudoRandomText(200000, 8));
    auto blob = testing::Compress("gzip", tar.Finish());
    if (!blob.ok()) std::abort();
    auto built = testing::BuildTestZtoc(*blob, 64 << 10);
    if (!built.ok()) std::abort();
    return new Ztoc(*std::move(built));
  }();
  return *z;
}

TEST(ZtocFormatTest, RoundTripIsLossless) {
  const Ztoc& z = SmallZtoc();
  ASSERT_GE(z.SpanCount(), 3);
  auto bytes = SerializeZtoc(z);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto parsed = ParseZtoc(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, z);
  // Deterministic output: the same zTOC always serializes to the same bytes.
  EXPECT_EQ(*SerializeZtoc(*parsed), *bytes);
}

TEST(ZtocFormatTest, UncompressedLayerRoundTrip) {
  testing::TarBuilder tar;
  tar.AddFile("x", testing::PseudoRandomText(100000, 3));
  auto z = testing::BuildTestZtoc(tar.Finish(), 32 << 10);
  ASSERT_TRUE(z.ok()) << z.status();
  EXPECT_EQ(z->compression, CompressionAlgorithm::kUncompressed);
  auto bytes = SerializeZtoc(*z);
  ASSERT_TRUE(bytes.ok());
  auto parsed = ParseZtoc(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, *z);
}

TEST(ZtocFormatTest, SerializeRefusesInvalidZtoc) {
  Ztoc z = SmallZtoc();
  z.span_digests.pop_back();
  EXPECT_EQ(SerializeZtoc(z).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ZtocFormatTest, ReadsV1CheckpointsWithoutCheckpointZero) {
  const Ztoc& z = SmallZtoc();
  ASSERT_EQ(z.checkpoints[0].in, 10);  // gzip -n writes a 10-byte header
  std::string blob = EncodeGzipCheckpoints(z.span_size, z.checkpoints);
  std::string v1 = blob.substr(0, kCheckpointBlobHeaderSize) +
                   blob.substr(kCheckpointBlobHeaderSize + kCheckpointRecordSize);
  RawOverrides o;
  o.checkpoints_blob = v1;
  auto parsed = ParseZtoc(SerializeRaw(z, o));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->checkpoints.size(), z.checkpoints.size());
  EXPECT_EQ(parsed->checkpoints[0].in, 10);
  EXPECT_EQ(parsed->checkpoints[0].out, 0);
  EXPECT_EQ(parsed->checkpoints[0].bits, 0);
  for (size_t i = 1; i < z.checkpoints.size(); ++i) {
    EXPECT_EQ(parsed->checkpoints[i], z.checkpoints[i]) << i;
  }
  auto decoded = DecodeGzipCheckpoints(v1);
  ASSERT_TRUE(decoded.ok());
  EXPECT_TRUE(decoded->v1);
  EXPECT_FALSE(DecodeGzipCheckpoints(blob)->v1);
}

TEST(ZtocFormatTest, CheckpointBlobLayout) {
  Checkpoint c;
  c.in = 0x0102030405;
  c.out = 77;
  c.bits = 3;
  c.window = std::string(kWindowSize, 'w');
  std::string blob = EncodeGzipCheckpoints(4194304, {c});
  ASSERT_EQ(blob.size(), 4u + 8 + 8 + 8 + 1 + 32768);
  EXPECT_EQ(blob.substr(0, 4), std::string("\x01\0\0\0", 4));
  EXPECT_EQ(blob.substr(4, 8), std::string("\0\0\x40\0\0\0\0\0", 8));
  EXPECT_EQ(blob.substr(12, 8), std::string("\x05\x04\x03\x02\x01\0\0\0", 8));
  EXPECT_EQ(blob.substr(20, 8), std::string("\x4d\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(blob[28], 3);
  EXPECT_EQ(blob.substr(29, 4), "wwww");
  auto back = DecodeGzipCheckpoints(blob, 1);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->span_size, 4194304);
  EXPECT_EQ(back->checkpoints[0], c);
}

TEST(ZtocFormatTest, TarZinfoPackedAndFlatbufferForms) {
  std::string packed = EncodeTarZinfo({2, 65536, 1000000});
  ASSERT_EQ(packed.size(), 20u);
  auto z = DecodeTarZinfo(packed);
  ASSERT_TRUE(z.ok());
  EXPECT_EQ(z->version, 2);
  EXPECT_EQ(z->span_size, 65536);
  EXPECT_EQ(z->size, 1000000);
  EXPECT_FALSE(DecodeTarZinfo("short").ok());
  EXPECT_FALSE(DecodeTarZinfo(std::string(40, 'z')).ok());
}

TEST(ZtocFormatTest, BadCheckpointBlobs) {
  Checkpoint c;
  c.window = std::string(kWindowSize, '\0');
  std::string two = EncodeGzipCheckpoints(65536, {c, c});
  EXPECT_FALSE(DecodeGzipCheckpoints(two.substr(0, 5)).ok());
  EXPECT_FALSE(DecodeGzipCheckpoints(two.substr(0, two.size() - 1)).ok());
  EXPECT_FALSE(DecodeGzipCheckpoints(two + "x").ok());
  EXPECT_FALSE(DecodeGzipCheckpoints(two, 3).ok());
  std::string negative = two;
  negative.replace(0, 4, "\xff\xff\xff\xff");
  EXPECT_FALSE(DecodeGzipCheckpoints(negative).ok());
  std::string huge = two;
  huge.replace(0, 4, "\xff\xff\xff\x7f");
  EXPECT_FALSE(DecodeGzipCheckpoints(huge).ok());
}

void ExpectRejected(const std::string& bytes, const char* why) {
  auto parsed = ParseZtoc(bytes);
  EXPECT_FALSE(parsed.ok()) << why;
  if (!parsed.ok()) {
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
        << why << ": " << parsed.status();
  }
}

TEST(ZtocFormatTest, HostileZtocsAreRejected) {
  const Ztoc& z = SmallZtoc();
  std::string good = *SerializeZtoc(z);

  // (The last few bytes may be alignment padding, whose loss leaves a valid buffer.)
  for (size_t n : {size_t{0}, size_t{3}, size_t{8}, size_t{100}, good.size() / 2,
                   good.size() - 16}) {
    ExpectRejected(good.substr(0, n), "truncated");
  }
  {
    RawOverrides o;
    o.max_span_id = 1 << 30;
    ExpectRejected(SerializeRaw(z, o), "huge span count");
  }
  {
    RawOverrides o;
    o.max_span_id = -1;
    ExpectRejected(SerializeRaw(z, o), "negative span count");
  }
  {
    std::string blob = EncodeGzipCheckpoints(z.span_size, z.checkpoints);
    RawOverrides o;
    o.checkpoints_blob = blob.substr(0, blob.size() - 100);
    ExpectRejected(SerializeRaw(z, o), "checkpoint blob length");
  }
  {
    RawOverrides o;
    std::vector<std::string> digests;
    for (const Digest& d : z.span_digests) digests.push_back(d.str());
    digests.pop_back();
    o.span_digests = digests;
    ExpectRejected(SerializeRaw(z, o), "span digest count");
    digests.push_back("md5:abc");
    o.span_digests = digests;
    ExpectRejected(SerializeRaw(z, o), "bad span digest");
  }
  {
    RawOverrides o;
    o.compression_algorithm = 9;
    ExpectRejected(SerializeRaw(z, o), "unknown algorithm");
  }
  {
    Ztoc bad = z;
    std::swap(bad.checkpoints[1], bad.checkpoints[2]);
    ExpectRejected(SerializeRaw(bad), "checkpoints decreasing");
  }
  {
    Ztoc bad = z;
    bad.checkpoints.back().in = bad.compressed_archive_size + 1;
    ExpectRejected(SerializeRaw(bad), "checkpoint past the end");
  }
  {
    Ztoc bad = z;
    bad.checkpoints[1].bits = 9;
    ExpectRejected(SerializeRaw(bad), "bits > 7");
  }
  {
    Ztoc bad = z;
    ASSERT_GE(bad.entries.size(), 3u);
    std::swap(bad.entries[1].uncompressed_offset, bad.entries[3].uncompressed_offset);
    ExpectRejected(SerializeRaw(bad), "entry offsets decreasing");
  }
  {
    Ztoc bad = z;
    bad.entries[1].uncompressed_size = bad.uncompressed_archive_size;
    ExpectRejected(SerializeRaw(bad), "entry past the end");
  }
  {
    Ztoc bad = z;
    bad.entries[0].name = "";
    ExpectRejected(SerializeRaw(bad), "empty name");
    bad.entries[0].name = std::string("a\0b", 3);
    ExpectRejected(SerializeRaw(bad), "NUL in name");
  }
  {
    Ztoc bad = z;
    bad.entries[0].type = "socket";
    ExpectRejected(SerializeRaw(bad), "unknown type");
  }
  {
    Ztoc bad = z;
    bad.span_size = 0;
    ExpectRejected(SerializeRaw(bad), "span size 0");
  }
  {
    Ztoc bad = z;
    bad.version = "9.9";
    ExpectRejected(SerializeRaw(bad), "version");
  }
}

TEST(ZtocFormatTest, RandomBytesAndBitFlipsNeverCrash) {
  std::mt19937 rng(42);
  for (int i = 0; i < 2000; ++i) {
    std::string junk(rng() % 600, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    EXPECT_FALSE(ParseZtoc(junk).ok());
  }
  // Flips in a valid zTOC may land in the checkpoint windows (still valid) or anywhere else;
  // either way the parser must answer without crashing, and a parsed result is valid.
  std::string good = *SerializeZtoc(SmallZtoc());
  int rejected = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bad = good;
    // Flips concentrate on the flatbuffer tables, which sit at the start and end.
    size_t pos = (i % 2 == 0) ? rng() % 4096 : bad.size() - 1 - rng() % 8192;
    bad[pos] = static_cast<char>(bad[pos] ^ (1 << (rng() % 8)));
    auto parsed = ParseZtoc(bad);
    if (parsed.ok()) {
      EXPECT_TRUE(ValidateZtoc(*parsed).ok());
    } else {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(ZtocFormatTest, MisalignedInputIsCopied) {
  std::string good = *SerializeZtoc(SmallZtoc());
  std::string shifted = "x" + good;
  auto parsed = ParseZtoc(std::string_view(shifted).substr(1));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, SmallZtoc());
}

}  // namespace
}  // namespace slipstream::index
