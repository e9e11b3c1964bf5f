// SPDX-License-Identifier: Apache-2.0
// Compressors checked against the gzip and zstd command-line tools and by counting the
// members/frames they write.
#include "testkit/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <random>
#include <string>
#include <vector>

#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"

namespace slipstream::testkit {
namespace {

using remote::Compression;

// Half pseudo-random bytes, half repetitive text: compressible but not trivially.
std::string TestData(size_t size, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::string data;
  data.reserve(size);
  while (data.size() < size) {
    if (rng() % 2) {
      for (int i = 0; i < 300 && data.size() < size; ++i) data.push_back(static_cast<char>(rng()));
    } else {
      data.append("the quick brown fox jumps over the lazy dog ");
    }
  }
  data.resize(size);
  return data;
}

// Decompresses with the command-line tool (`gzip -dc` / `zstd -dc`).
std::string CliDecompress(Compression c, const std::string& compressed) {
  auto dir = TempDir::Create("compress-test-");
  EXPECT_TRUE(dir.ok());
  const std::string path = dir->Join("blob");
  EXPECT_TRUE(WriteFileAtomic(path, compressed).ok());
  std::vector<std::string> argv = c == Compression::kGzip
                                      ? std::vector<std::string>{"gzip", "-dc", path}
                                      : std::vector<std::string>{"zstd", "-qdc", path};
  SubprocessOptions opts;
  opts.max_output = 64u << 20;
  auto r = RunSubprocess(argv, opts);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  return r->stdout_data;
}

// Sizes of the uncompressed contents of each gzip member.
std::vector<size_t> GzipMemberSizes(const std::string& gz) {
  std::vector<size_t> sizes;
  z_stream z{};
  EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
  z.avail_in = static_cast<uInt>(gz.size());
  std::string buf(1 << 16, '\0');
  size_t current = 0;
  while (z.avail_in > 0) {
    z.next_out = reinterpret_cast<Bytef*>(buf.data());
    z.avail_out = static_cast<uInt>(buf.size());
    const int rc = inflate(&z, Z_NO_FLUSH);
    current += buf.size() - z.avail_out;
    if (rc == Z_STREAM_END) {
      sizes.push_back(current);
      current = 0;
      inflateReset(&z);
    } else if (rc != Z_OK) {
      ADD_FAILURE() << "inflate rc " << rc;
      break;
    }
  }
  inflateEnd(&z);
  return sizes;
}

// Sizes of the uncompressed contents of each zstd frame.
std::vector<size_t> ZstdFrameSizes(const std::string& zst) {
  std::vector<size_t> sizes;
  std::string_view rest(zst);
  while (!rest.empty()) {
    const size_t frame = ZSTD_findFrameCompressedSize(rest.data(), rest.size());
    if (ZSTD_isError(frame)) {
      ADD_FAILURE() << ZSTD_getErrorName(frame);
      break;
    }
    auto plain = DecompressString(Compression::kZstd, rest.substr(0, frame));
    EXPECT_TRUE(plain.ok()) << plain.status();
    sizes.push_back(plain.ok() ? plain->size() : 0);
    rest.remove_prefix(frame);
  }
  return sizes;
}

class RoundTrip : public ::testing::TestWithParam<Compression> {};

TEST_P(RoundTrip, CliDecompressesWhatWeWrite) {
  const std::string data = TestData(3 << 20);
  for (int level : {-1, 1, 9}) {
    auto compressed = CompressString(GetParam(), data, {.level = level});
    ASSERT_TRUE(compressed.ok()) << compressed.status();
    EXPECT_LT(compressed->size(), data.size()) << "level " << level;
    EXPECT_EQ(CliDecompress(GetParam(), *compressed), data) << "level " << level;
    auto back = DecompressString(GetParam(), *compressed);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, data);
  }
}

TEST_P(RoundTrip, OutputDoesNotDependOnHowInputIsSplit) {
  const std::string data = TestData(1 << 20, 11);
  auto whole = CompressString(GetParam(), data, {.member_size = 100000});
  ASSERT_TRUE(whole.ok());
  std::string pieces;
  auto c = MakeCompressor(GetParam(),
                          [&pieces](std::string_view chunk) {
                            pieces.append(chunk);
                            return absl::OkStatus();
                          },
                          {.member_size = 100000});
  ASSERT_TRUE(c.ok());
  for (size_t pos = 0, step = 1; pos < data.size(); pos += step, step = step * 3 % 70001 + 1) {
    ASSERT_TRUE((*c)->Update(std::string_view(data).substr(pos, step)).ok());
  }
  ASSERT_TRUE((*c)->Finish().ok());
  EXPECT_EQ(pieces, *whole);
}

TEST_P(RoundTrip, EmptyInputIsAValidStream) {
  auto compressed = CompressString(GetParam(), "");
  ASSERT_TRUE(compressed.ok());
  EXPECT_FALSE(compressed->empty());
  EXPECT_EQ(CliDecompress(GetParam(), *compressed), "");
}

TEST_P(RoundTrip, UpdateAfterFinishAndSinkErrors) {
  int calls = 0;
  auto c = MakeCompressor(GetParam(), [&calls](std::string_view) {
    ++calls;
    return absl::DataLossError("sink broke");
  });
  ASSERT_TRUE(c.ok());
  // 1 MiB of random data overflows the 256 KiB output buffer, so the sink is reached.
  EXPECT_EQ((*c)->Update(TestData(1 << 20)).code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*c)->Finish().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(calls, 1);

  auto fine = MakeCompressor(GetParam(), [](std::string_view) { return absl::OkStatus(); });
  ASSERT_TRUE(fine.ok());
  ASSERT_TRUE((*fine)->Finish().ok());
  EXPECT_EQ((*fine)->Update("x").code(), absl::StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, RoundTrip,
                         ::testing::Values(Compression::kGzip, Compression::kZstd));

TEST(Compress, GzipMembersEndAtExactInputMultiples) {
  const std::string data = TestData(350000);
  auto gz = CompressString(Compression::kGzip, data, {.member_size = 100000});
  ASSERT_TRUE(gz.ok());
  EXPECT_EQ(GzipMemberSizes(*gz), (std::vector<size_t>{100000, 100000, 100000, 50000}));
  EXPECT_EQ(CliDecompress(Compression::kGzip, *gz), data);

  // An exact multiple leaves no empty trailing member.
  auto exact = CompressString(Compression::kGzip, data.substr(0, 200000), {.member_size = 100000});
  ASSERT_TRUE(exact.ok());
  EXPECT_EQ(GzipMemberSizes(*exact), (std::vector<size_t>{100000, 100000}));
}

TEST(Compress, ZstdFramesEndAtExactInputMultiples) {
  const std::string data = TestData(250000);
  auto zst = CompressString(Compression::kZstd, data, {.member_size = 100000});
  ASSERT_TRUE(zst.ok());
  EXPECT_EQ(ZstdFrameSizes(*zst), (std::vector<size_t>{100000, 100000, 50000}));
  EXPECT_EQ(CliDecompress(Compression::kZstd, *zst), data);
  auto single = CompressString(Compression::kZstd, data);
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(ZstdFrameSizes(*single).size(), 1u);
}

TEST(Compress, NoneIsIdentity) {
  const std::string data = TestData(700000);
  auto out = CompressString(Compression::kNone, data, {.member_size = 1000});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, data);
}

TEST(Compress, BadOptionsAreInvalidArgument) {
  auto sink = [](std::string_view) { return absl::OkStatus(); };
  EXPECT_EQ(MakeCompressor(Compression::kGzip, sink, {.level = 10}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeCompressor(Compression::kZstd, sink, {.level = 99}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeCompressor(Compression::kGzip, sink, {.member_size = -5}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Decompress, CorruptTruncatedAndOversizedInput) {
  const std::string data = TestData(200000);
  for (Compression c : {Compression::kGzip, Compression::kZstd}) {
    auto packed = CompressString(c, data);
    ASSERT_TRUE(packed.ok());
    std::string truncated = packed->substr(0, packed->size() / 2);
    EXPECT_EQ(DecompressString(c, truncated).status().code(), absl::StatusCode::kDataLoss)
        << CompressionName(c);
    std::string corrupt = *packed;
    corrupt[corrupt.size() / 2] ^= 0x55;
    corrupt[corrupt.size() / 2 + 1] ^= 0x55;
    EXPECT_EQ(DecompressString(c, corrupt).status().code(), absl::StatusCode::kDataLoss)
        << CompressionName(c);
    EXPECT_EQ(DecompressString(c, *packed, 1000).status().code(),
              absl::StatusCode::kResourceExhausted);
    EXPECT_EQ(DecompressString(c, "not compressed at all").status().code(),
              absl::StatusCode::kDataLoss);
  }
}

TEST(Compress, NamesAndMediaTypes) {
  EXPECT_EQ(LayerMediaType(Compression::kGzip), remote::kOciLayerGzip);
  EXPECT_EQ(LayerMediaType(Compression::kZstd), remote::kOciLayerZstd);
  EXPECT_EQ(LayerMediaType(Compression::kNone), remote::kOciLayer);
  for (Compression c : {Compression::kGzip, Compression::kZstd, Compression::kNone}) {
    auto parsed = ParseCompression(CompressionName(c));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, c);
  }
  EXPECT_EQ(ParseCompression("brotli").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slipstream::testkit
