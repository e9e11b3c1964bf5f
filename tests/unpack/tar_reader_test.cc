// SPDX-License-Identifier: Apache-2.0
#include "unpack/tar_reader.h"

#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unpack/test_tar.h"

namespace slipstream::unpack {
namespace {

using ::testing::HasSubstr;
using testing::GnuLongMember;
using testing::PaxMember;
using testing::TestHeader;
using testing::TestTar;

// Records every callback; checks that they come in a valid order.
class Recorder : public TarEntryHandler {
 public:
  absl::Status OnEntry(const TarEntry& e) override {
    EXPECT_FALSE(open_);
    open_ = true;
    entries.push_back(e);
    contents.emplace_back();
    return absl::OkStatus();
  }
  absl::Status OnData(std::string_view d) override {
    EXPECT_TRUE(open_);
    contents.back().append(d);
    return absl::OkStatus();
  }
  absl::Status OnEntryEnd() override {
    EXPECT_TRUE(open_);
    open_ = false;
    return absl::OkStatus();
  }
  std::vector<TarEntry> entries;
  std::vector<std::string> contents;

 private:
  bool open_ = false;
};

absl::Status Parse(const std::string& tar, Recorder& r, size_t piece = 100000) {
  TarReader reader(&r);
  for (size_t i = 0; i < tar.size(); i += piece) {
    absl::Status s = reader.Write(std::string_view(tar).substr(i, piece));
    if (!s.ok()) return s;
  }
  return reader.Finish();
}

TEST(TarReaderTest, BasicMembersInAnyPieceSize) {
  const std::string big(70000, 'z');
  const std::string tar = TestTar()
                              .Dir("./d/")
                              .File("d/a.txt", "hello", 04755)
                              .File("d/big", big)
                              .File("d/empty", "")
                              .Symlink("d/link", "../x")
                              .Hardlink("d/hard", "d/a.txt")
                              .Finish();
  for (size_t piece : {size_t{1}, size_t{511}, size_t{512}, size_t{100000}}) {
    Recorder r;
    ASSERT_TRUE(Parse(tar, r, piece).ok()) << piece;
    ASSERT_EQ(r.entries.size(), 6u);
    EXPECT_EQ(r.entries[0].type, TarEntryType::kDirectory);
    EXPECT_EQ(r.entries[1].name, "d/a.txt");
    EXPECT_EQ(r.entries[1].mode, 04755u);
    EXPECT_EQ(r.contents[1], "hello");
    EXPECT_EQ(r.contents[2], big);
    EXPECT_EQ(r.entries[3].size, 0);
    EXPECT_EQ(r.entries[4].type, TarEntryType::kSymlink);
    EXPECT_EQ(r.entries[4].linkname, "../x");
    EXPECT_EQ(r.entries[5].type, TarEntryType::kHardlink);
    EXPECT_EQ(r.entries[1].header_offset, 512);
  }
}

TEST(TarReaderTest, GnuLongNameAndLink) {
  const std::string long_name = std::string(150, 'n') + "/" + std::string(200, 'm');
  const std::string long_link = std::string(300, 'l');
  TestHeader h;
  h.name = long_name.substr(0, 100);
  h.typeflag = '2';
  h.linkname = long_link.substr(0, 100);
  h.gnu_magic = true;
  const std::string tar = TestTar()
                              .Raw(GnuLongMember(long_name, 'L'))
                              .Raw(GnuLongMember(long_link, 'K'))
                              .Member(h)
                              .File("short", "s")
                              .Finish();
  Recorder r;
  ASSERT_TRUE(Parse(tar, r, 97).ok());
  ASSERT_EQ(r.entries.size(), 2u);
  EXPECT_EQ(r.entries[0].name, long_name);
  EXPECT_EQ(r.entries[0].linkname, long_link);
  EXPECT_EQ(r.entries[0].header_offset, 0);
  EXPECT_EQ(r.entries[1].name, "short");  // long names apply to one member only
  EXPECT_EQ(r.entries[1].linkname, "");
}

TEST(TarReaderTest, PaxLocalRecords) {
  const std::string xattr_value("\x01\x00\x02", 3);
  TestHeader h;
  h.name = "truncated-name";
  h.size = 4;
  const std::string tar = TestTar()
                              .Raw(PaxMember({{"path", std::string(300, 'p')},
                                              {"uid", "3000000"},
                                              {"gid", "42"},
                                              {"uname", "user"},
                                              {"gname", "group"},
                                              {"mtime", "1700000000.25"},
                                              {"atime", "1600000000"},
                                              {"size", "4"},
                                              {"comment", "ignored"},
                                              {"SCHILY.xattr.user.a", "va"},
                                              {"SCHILY.xattr.security.bin", xattr_value}}))
                              .Member(h, "data")
                              .Finish();
  Recorder r;
  ASSERT_TRUE(Parse(tar, r).ok());
  ASSERT_EQ(r.entries.size(), 1u);
  const TarEntry& e = r.entries[0];
  EXPECT_EQ(e.name, std::string(300, 'p'));
  EXPECT_EQ(e.uid, 3000000);
  EXPECT_EQ(e.gid, 42);
  EXPECT_EQ(e.uname, "user");
  EXPECT_EQ(e.gname, "group");
  EXPECT_EQ(e.mtime, (TarTime{1700000000, 250000000}));
  ASSERT_TRUE(e.atime.has_value());
  EXPECT_EQ(e.atime->sec, 1600000000);
  EXPECT_EQ(e.xattrs.at("user.a"), "va");
  EXPECT_EQ(e.xattrs.at("security.bin"), xattr_value);
  EXPECT_EQ(r.contents[0], "data");
}

TEST(TarReaderTest, PaxSizeOverridesHeaderSize) {
  TestHeader h;
  h.name = "f";
  h.size = 1;  // wrong on purpose: the PAX size wins
  std::string content(1000, 'c');
  const std::string tar = TestTar()
                              .Raw(PaxMember({{"size", "1000"}}))
                              .Raw(testing::HeaderBlock(h))
                              .Raw(testing::Padded(content))
                              .File("next", "n")
                              .Finish();
  Recorder r;
  ASSERT_TRUE(Parse(tar, r).ok());
  ASSERT_EQ(r.entries.size(), 2u);
  EXPECT_EQ(r.contents[0], content);
  EXPECT_EQ(r.entries[1].name, "next");
}

TEST(TarReaderTest, GlobalHeadersApplyToLaterMembersExceptPath) {
  const std::string tar = TestTar()
                              .File("before", "")
                              .Raw(PaxMember({{"uid", "77"}, {"mtime", "5.5"}, {"path", "all"},
                                              {"SCHILY.xattr.user.g", "1"}},
                                             'g'))
                              .File("a", "")
                              .Raw(PaxMember({{"uid", "88"}}))
                              .File("b", "")
                              .Raw(PaxMember({{"uid", ""}}, 'g'))  // removes the global uid
                              .File("c", "")
                              .Finish();
  Recorder r;
  ASSERT_TRUE(Parse(tar, r).ok());
  ASSERT_EQ(r.entries.size(), 4u);
  EXPECT_EQ(r.entries[0].uid, 0);
  EXPECT_EQ(r.entries[1].name, "a");
  EXPECT_EQ(r.entries[1].uid, 77);
  EXPECT_EQ(r.entries[1].mtime, (TarTime{5, 500000000}));
  EXPECT_EQ(r.entries[1].xattrs.at("user.g"), "1");
  EXPECT_EQ(r.entries[2].uid, 88);  // local beats global
  EXPECT_EQ(r.entries[3].uid, 0);
  EXPECT_EQ(r.entries[3].mtime.sec, 5);
}

TEST(TarReaderTest, Base256AndV7AndDevices) {
  TestHeader big;
  big.name = "b256";
  big.base256_size = true;
  big.uid = 1 << 30;
  big.mtime = -100;
  TestHeader v7;
  v7.name = "olddir/";
  v7.typeflag = '\0';
  v7.v7 = true;
  TestHeader dev;
  dev.name = "dev/sda";
  dev.typeflag = '4';
  dev.devmajor = 8;
  dev.devminor = 1;
  const std::string tar = TestTar().Member(big, "xyz").Member(v7).Member(dev).Finish();
  Recorder r;
  absl::Status s = Parse(tar, r);
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(r.entries.size(), 3u);
  EXPECT_EQ(r.entries[0].uid, 1 << 30);
  EXPECT_EQ(r.entries[0].mtime.sec, -100);
  EXPECT_EQ(r.contents[0], "xyz");
  EXPECT_EQ(r.entries[1].type, TarEntryType::kDirectory);
  EXPECT_EQ(r.entries[2].type, TarEntryType::kBlockDevice);
  EXPECT_EQ(r.entries[2].devmajor, 8u);
  EXPECT_EQ(r.entries[2].devminor, 1u);
}

TEST(TarReaderTest, UnsupportedMembersNameTheEntry) {
  TestHeader sparse;
  sparse.name = "sparse-file";
  sparse.typeflag = 'S';
  sparse.gnu_magic = true;
  Recorder r;
  absl::Status s = Parse(TestTar().File("ok", "").Member(sparse).Finish(), r);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("sparse-file"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("offset 512"));

  Recorder r2;
  s = Parse(TestTar().Raw(PaxMember({{"GNU.sparse.major", "1"}})).File("pax-sparse", "").Finish(), r2);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("pax-sparse"));

  TestHeader weird;
  weird.name = "volume";
  weird.typeflag = 'V';
  Recorder r3;
  s = Parse(TestTar().Member(weird).Finish(), r3);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("volume"));
}

TEST(TarReaderTest, CorruptHeaderNamesOffset) {
  std::string tar = TestTar().File("a", "123").File("b", "").Finish();
  tar[1024 + 5] ^= 1;  // second header
  Recorder r;
  absl::Status s = Parse(tar, r);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("offset 1024"));
}

TEST(TarReaderTest, TruncationIsDataLoss) {
  const std::string tar = TestTar().File("a", std::string(2000, 'a')).Finish();
  for (size_t cut : {size_t{100}, size_t{512 + 10}, size_t{512 + 2000}, size_t{2560 + 200}}) {
    Recorder r;
    absl::Status s = Parse(tar.substr(0, cut), r);
    EXPECT_TRUE(absl::IsDataLoss(s)) << cut << ": " << s;
  }
  Recorder r;
  absl::Status s = Parse(PaxMember({{"path", "x"}}), r);
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
}

TEST(TarReaderTest, EndMarkerOptionalAndTrailingDataIgnored) {
  Recorder r;
  ASSERT_TRUE(Parse(TestTar().File("a", "1").data(), r).ok());
  EXPECT_EQ(r.entries.size(), 1u);
  Recorder r2;
  ASSERT_TRUE(Parse(TestTar().File("a", "1").Finish() + std::string(9216, '\0') + "junk", r2).ok());
  EXPECT_EQ(r2.entries.size(), 1u);
  // A lone zero block followed by a header is not an end marker.
  Recorder r3;
  absl::Status s = Parse(TestTar().File("a", "1").Raw(std::string(512, '\0')).File("b", "").data(), r3);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

TEST(TarReaderTest, HandlerErrorIsReturnedAndSticky) {
  class Refuser : public Recorder {
   public:
    absl::Status OnEntry(const TarEntry& e) override { return absl::PermissionDeniedError(e.name); }
  } refuser;
  TarReader reader(&refuser);
  absl::Status s = reader.Write(TestTar().File("nope", "").Finish());
  EXPECT_TRUE(absl::IsPermissionDenied(s));
  EXPECT_EQ(reader.Finish(), s);
}

TEST(TarReaderTest, OversizedExtensionRefused) {
  TestHeader h;
  h.name = "PaxHeaders/huge";
  h.typeflag = 'x';
  h.size = 64 << 20;
  Recorder r;
  absl::Status s = Parse(testing::HeaderBlock(h), r);
  EXPECT_TRUE(absl::IsInvalidArgument(s)) << s;
}

}  // namespace
}  // namespace slipstream::unpack

namespace slipstream::unpack {
namespace {

// Random corruption of a tar with every extension kind: the reader must fail cleanly or
// succeed, never crash or loop (run under ASan/UBSan in the sanitizer build).
TEST(TarReaderFuzzTest, CorruptedArchivesNeverCrash) {
  TestHeader dev;
  dev.name = "dev/x";
  dev.typeflag = '3';
  const std::string tar = TestTar()
                              .Raw(PaxMember({{"uid", "1"}}, 'g'))
                              .Raw(PaxMember({{"path", "p/" + std::string(200, 'q')},
                                              {"SCHILY.xattr.user.x", "v"},
                                              {"mtime", "1.5"}}))
                              .File("ignored", std::string(700, 'a'))
                              .Raw(GnuLongMember(std::string(300, 'L'), 'L'))
                              .Raw(GnuLongMember(std::string(300, 'K'), 'K'))
                              .Symlink("s", "t")
                              .Member(dev)
                              .File("last", "z")
                              .Finish();
  std::mt19937 rng(7);
  int ok = 0;
  for (int i = 0; i < 400; ++i) {
    std::string mutated = tar;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      mutated[rng() % mutated.size()] = static_cast<char>(rng());
    }
    if (rng() % 4 == 0) mutated.resize(rng() % mutated.size());
    Recorder r;
    if (Parse(mutated, r, 1 + rng() % 1024).ok()) ++ok;
  }
  // Most flips land in content or padding and still parse; checksums catch header damage.
  EXPECT_GT(ok, 0);
  EXPECT_LT(ok, 400);
}

}  // namespace
}  // namespace slipstream::unpack
