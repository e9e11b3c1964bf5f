// SPDX-License-Identifier: Apache-2.0
#include "unpack/layer_unpacker.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <string>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "remote/media_types.h"
#include "tests/unpack/test_compress.h"
#include "tests/unpack/test_tar.h"
#include "tests/unpack/tree_snapshot.h"

namespace slipstream::unpack {
namespace {

using ::testing::HasSubstr;
using testing::Gzip;
using testing::TestTar;
using testing::Zstd;

// An in-memory blob, read in whatever pieces the caller asks for.
class MemoryBlobReader : public remote::BlobReader {
 public:
  explicit MemoryBlobReader(std::string data) : data_(std::move(data)), digest_(Sha256Of(data_)) {}
  const Digest& digest() const override { return digest_; }
  int64_t size() const override { return static_cast<int64_t>(data_.size()); }
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override {
    if (offset > size()) return absl::OutOfRangeError("past the end");
    return data_.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
  }

 private:
  std::string data_;
  Digest digest_;
};

class LayerUnpackerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("unpack-layer-");
    ASSERT_TRUE(dir.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*dir));
    dest_ = tmp_->Join("layer");
    tar_ = TestTar().Dir("./").Dir("etc").File("etc/hosts", "127.0.0.1 localhost\n").File(
        "big", testing::RandomText(300000, 11)).Finish();
  }

  absl::StatusOr<LayerUnpackResult> Unpack(std::string_view media_type, const std::string& blob,
                                           const Digest& digest, const Digest& diff_id,
                                           size_t piece = 65536) {
    auto u = LayerUnpacker::Create(media_type, digest, diff_id, dest_);
    if (!u.ok()) return u.status();
    for (size_t i = 0; i < blob.size(); i += piece) {
      absl::Status s = (*u)->Write(std::string_view(blob).substr(i, piece));
      if (!s.ok()) return s;
    }
    return (*u)->Finish();
  }

  // Nothing at the destination and no partial directory next to it.
  void ExpectNothingLeft() {
    struct stat st;
    EXPECT_NE(::lstat(dest_.c_str(), &st), 0);
    EXPECT_EQ(testing::CountEntriesWithPrefix(tmp_->path(), "layer"), 0);
  }

  std::unique_ptr<TempDir> tmp_;
  std::string dest_;
  std::string tar_;
};

TEST_F(LayerUnpackerTest, VerifiesBothDigestsAndMovesIntoPlace) {
  const std::string gz = Gzip(tar_);
  auto r = Unpack(remote::kOciLayerGzip, gz, Sha256Of(gz), Sha256Of(tar_), 1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->digest, Sha256Of(gz));
  EXPECT_EQ(r->diff_id, Sha256Of(tar_));
  EXPECT_EQ(r->compression, Compression::kGzip);
  EXPECT_EQ(r->compressed_bytes, static_cast<int64_t>(gz.size()));
  EXPECT_EQ(r->uncompressed_bytes, static_cast<int64_t>(tar_.size()));
  EXPECT_EQ(r->entries, 4);
  EXPECT_EQ(*ReadFileToString(dest_ + "/etc/hosts"), "127.0.0.1 localhost\n");
  EXPECT_EQ(testing::CountEntriesWithPrefix(tmp_->path(), "layer.partial"), 0);
}

TEST_F(LayerUnpackerTest, DigestMismatchLeavesNothing) {
  const std::string gz = Gzip(tar_);
  const Digest wrong = Sha256Of("something else");
  auto r = Unpack(remote::kOciLayerGzip, gz, wrong, Sha256Of(tar_));
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr(wrong.str()));
  ExpectNothingLeft();
  auto r2 = Unpack(remote::kOciLayerGzip, gz, Sha256Of(gz), wrong);
  EXPECT_TRUE(absl::IsDataLoss(r2.status())) << r2.status();
  EXPECT_THAT(std::string(r2.status().message()), HasSubstr("diff_id"));
  ExpectNothingLeft();
}

TEST_F(LayerUnpackerTest, TruncatedOrCorruptBlobsAreDataLoss) {
  const std::string gz = Gzip(tar_);
  const std::string zst = Zstd(tar_);
  std::string flipped = gz;
  flipped[gz.size() / 2] ^= 0x10;
  struct Case {
    std::string_view media_type;
    std::string blob;
  };
  for (const Case& c : {Case{remote::kOciLayerGzip, gz.substr(0, gz.size() / 2)},
                        Case{remote::kOciLayerGzip, gz.substr(0, gz.size() - 3)},
                        Case{remote::kOciLayerGzip, flipped},
                        Case{remote::kOciLayerGzip, gz + "trailing"},
                        Case{remote::kOciLayerZstd, zst.substr(0, zst.size() - 10)},
                        Case{remote::kOciLayer, tar_.substr(0, 700)},
                        Case{remote::kOciLayerGzip, std::string()}}) {
    auto r = Unpack(c.media_type, c.blob, Digest(), Digest());
    EXPECT_TRUE(absl::IsDataLoss(r.status())) << c.media_type << " " << c.blob.size() << ": "
                                              << r.status();
    ExpectNothingLeft();
  }
}

TEST_F(LayerUnpackerTest, AbandonedUnpackRemovesThePartialDirectory) {
  {
    auto u = LayerUnpacker::Create(remote::kOciLayer, Digest(), Digest(), dest_);
    ASSERT_TRUE(u.ok());
    ASSERT_TRUE((*u)->Write(tar_.substr(0, 2048)).ok());
    struct stat st;
    EXPECT_EQ(::lstat((*u)->partial_dir().c_str(), &st), 0);
    EXPECT_EQ((*u)->partial_dir().rfind(dest_ + ".partial-", 0), 0u);
  }
  ExpectNothingLeft();
}

TEST_F(LayerUnpackerTest, ErrorsAreStickyAndCleanUpAtOnce) {
  auto u = LayerUnpacker::Create(remote::kOciLayerGzip, Digest(), Digest(), dest_);
  ASSERT_TRUE(u.ok());
  // Long enough for the format sniffer to decide (it looks at the first 262 bytes).
  absl::Status s = (*u)->Write(std::string(1000, 'x'));
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  ExpectNothingLeft();
  EXPECT_EQ((*u)->Write("more"), s);
  EXPECT_EQ((*u)->Finish().status(), s);
}

TEST_F(LayerUnpackerTest, RefusesExistingDestinationAndBadInputs) {
  ASSERT_TRUE(MakeDirs(dest_).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(
      LayerUnpacker::Create(remote::kOciLayer, Digest(), Digest(), dest_).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      LayerUnpacker::Create("application/json", Digest(), Digest(), tmp_->Join("x")).status()));
  auto sha512 = Digest::Parse("sha512:" + std::string(128, 'a'));
  ASSERT_TRUE(sha512.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      LayerUnpacker::Create(remote::kOciLayer, *sha512, Digest(), tmp_->Join("x")).status()));
}

TEST_F(LayerUnpackerTest, UnpackLayerFromBlobReaderAndFd) {
  MemoryBlobReader blob(Zstd(tar_));
  auto r = UnpackLayer(blob, remote::kOciLayerZstd, Sha256Of(tar_), dest_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->digest, blob.digest());
  EXPECT_EQ(*ReadFileToString(dest_ + "/etc/hosts"), "127.0.0.1 localhost\n");

  const std::string gz = Gzip(tar_);
  ASSERT_TRUE(WriteFileAtomic(tmp_->Join("blob.gz"), gz).ok());
  auto fd = OpenFile(tmp_->Join("blob.gz"), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto r2 = UnpackLayerFromFd(fd->get(), remote::kDockerLayerGzip, Sha256Of(gz), Sha256Of(tar_),
                              tmp_->Join("layer2"), {.gzip_backend = GzipBackend::kZlib});
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(testing::DiffSnapshots(testing::Snapshot(dest_), testing::Snapshot(tmp_->Join("layer2"))),
            "");
}

TEST_F(LayerUnpackerTest, MaliciousMemberFailsTheWholeLayer) {
  const std::string tar = TestTar().File("fine", "1").File("../escape", "2").Finish();
  auto r = Unpack(remote::kOciLayerGzip, Gzip(tar), Digest(), Digest());
  EXPECT_TRUE(absl::IsInvalidArgument(r.status())) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("../escape"));
  ExpectNothingLeft();
  EXPECT_EQ(testing::CountEntriesWithPrefix(tmp_->path(), "escape"), 0);
}

}  // namespace
}  // namespace slipstream::unpack
