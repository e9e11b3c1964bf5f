// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "index/tar_toc_fields.h"
#include "index/tar_toc_parser.h"
#include "tests/index/test_layers.h"

namespace slipstream::index {
namespace {

TEST(TarTocFieldsTest, Numbers) {
  EXPECT_EQ(*TarNumber(std::string("0000644\0", 8), "mode"), 0644);
  EXPECT_EQ(*TarNumber("  755 ", "mode"), 0755);
  EXPECT_EQ(*TarNumber(std::string(8, '\0'), "mode"), 0);
  EXPECT_FALSE(TarNumber("0009", "mode").ok());
  EXPECT_FALSE(TarNumber("77777777777777777777777", "size").ok());
  // GNU base-256: 0x80 marker then big-endian bytes.
  std::string b256(12, '\0');
  b256[0] = static_cast<char>(0x80);
  b256[10] = 0x01;
  b256[11] = 0x02;
  EXPECT_EQ(*TarNumber(b256, "size"), 0x0102);
  std::string neg(8, static_cast<char>(0xff));
  EXPECT_EQ(*TarNumber(neg, "mtime"), -1);
  std::string too_big(12, static_cast<char>(0x7f));
  too_big[0] = static_cast<char>(0x80);
  EXPECT_FALSE(TarNumber(too_big, "size").ok());
}

TEST(TarTocFieldsTest, PaxRecords) {
  std::map<std::string, std::string> r;
  ASSERT_TRUE(ParsePaxRecords("12 path=abc\n19 SCHILY.xattr.a=\n", &r).ok());
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r["path"], "abc");
  EXPECT_EQ(r["SCHILY.xattr.a"], "");
  std::map<std::string, std::string> bad;
  EXPECT_FALSE(ParsePaxRecords("99 path=abc\n", &bad).ok());
  EXPECT_FALSE(ParsePaxRecords("11 path=abc", &bad).ok());
  EXPECT_FALSE(ParsePaxRecords("7 =abc\n", &bad).ok());
  EXPECT_FALSE(ParsePaxRecords("x path=abc\n", &bad).ok());
}

TEST(TarTocFieldsTest, ModTime) {
  EXPECT_EQ(FormatModTime(0, 0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatModTime(1700000000, 0), "2023-11-14T22:13:20Z");
  EXPECT_EQ(FormatModTime(1700000000, 500000000), "2023-11-14T22:13:20.5Z");
  EXPECT_EQ(FormatModTime(1700000000, 123456789), "2023-11-14T22:13:20.123456789Z");
  int64_t s = 0;
  int32_t n = 0;
  ASSERT_TRUE(ParsePaxTime("1700000000.1200000009", &s, &n).ok());
  EXPECT_EQ(s, 1700000000);
  EXPECT_EQ(n, 120000000);
  ASSERT_TRUE(ParsePaxTime("-1.5", &s, &n).ok());
  EXPECT_EQ(FormatModTime(s, n), "1969-12-31T23:59:58.5Z");
  EXPECT_FALSE(ParsePaxTime("12a", &s, &n).ok());
}

std::vector<FileMetadata> ParseAll(const std::string& tar, size_t chunk) {
  TarTocParser p;
  for (size_t i = 0; i < tar.size(); i += chunk) {
    absl::Status s = p.Feed(std::string_view(tar).substr(i, chunk));
    EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE(p.Finish().ok());
  return p.TakeEntries();
}

TEST(TarTocParserTest, PaxXattrsLongNamesAndSpecialFiles) {
  testing::TarBuilder t;
  testing::TarAttrs a;
  a.prefix = "usr/share";
  t.AddFile("doc.txt", "hello", a);
  std::string long_path = "p/" + std::string(150, 'x') + "/file";
  t.AddPax({{"path", long_path},
            {"mtime", "1700000000.25"},
            {"SCHILY.xattr.user.key", "value"},
            {"SCHILY.xattr.security.capability", std::string("\x01\0\x02", 3)},
            {"uid", "4000000000"}});
  t.AddFile("short", std::string(1000, 'p'));
  std::string gnu_long = "g/" + std::string(200, 'y');
  t.AddGnuLongName(gnu_long);
  testing::TarAttrs g;
  g.gnu_magic = true;
  t.AddFile("truncated-name", "gnu", g);
  t.AddSymlink("sym", "doc.txt");
  t.AddHardlink("hard", "short");
  t.AddFifo("fifo");
  t.AddChar("null", 1, 3);
  t.AddRaw("old-dir/", '\0', "");
  t.AddRaw("global", 'g', "19 comment=ignored\n");
  t.AddRaw("vol", 'V', "");
  std::string tar = t.Finish();

  for (size_t chunk : {size_t{1}, size_t{511}, size_t{4096}, tar.size()}) {
    std::vector<FileMetadata> e = ParseAll(tar, chunk);
    ASSERT_EQ(e.size(), 8u) << chunk;
    EXPECT_EQ(e[0].name, "usr/share/doc.txt");
    EXPECT_EQ(e[0].type, "reg");
    EXPECT_EQ(e[0].uncompressed_offset, 512);
    EXPECT_EQ(e[0].uncompressed_size, 5);
    EXPECT_EQ(tar.substr(e[0].uncompressed_offset, 5), "hello");
    EXPECT_EQ(e[0].mode, 0644);
    EXPECT_EQ(e[0].uid, 1000u);
    EXPECT_EQ(e[0].uname, "user");
    EXPECT_EQ(e[0].gname, "group");
    EXPECT_EQ(e[0].mod_time, "2023-11-14T22:13:20Z");
    EXPECT_TRUE(e[0].xattrs.empty());

    EXPECT_EQ(e[1].name, long_path);
    EXPECT_EQ(e[1].mod_time, "2023-11-14T22:13:20.25Z");
    EXPECT_EQ(e[1].uid, 4000000000u);
    EXPECT_EQ(e[1].uncompressed_size, 1000);
    EXPECT_EQ(tar.substr(e[1].uncompressed_offset, 1000), std::string(1000, 'p'));
    // All PAX records, sorted by key.
    std::vector<Xattr> want = {{"SCHILY.xattr.security.capability", std::string("\x01\0\x02", 3)},
                               {"SCHILY.xattr.user.key", "value"},
                               {"mtime", "1700000000.25"},
                               {"path", long_path},
                               {"uid", "4000000000"}};
    EXPECT_EQ(e[1].xattrs, want);

    EXPECT_EQ(e[2].name, gnu_long);
    EXPECT_EQ(tar.substr(e[2].uncompressed_offset, 3), "gnu");
    EXPECT_EQ(e[3].type, "symlink");
    EXPECT_EQ(e[3].linkname, "doc.txt");
    EXPECT_EQ(e[4].type, "hardlink");
    EXPECT_EQ(e[4].linkname, "short");
    EXPECT_EQ(e[4].uncompressed_size, 0);
    EXPECT_EQ(e[5].type, "fifo");
    EXPECT_EQ(e[6].type, "char");
    EXPECT_EQ(e[6].devmajor, 1);
    EXPECT_EQ(e[6].devminor, 3);
    EXPECT_EQ(e[7].name, "old-dir/");
    EXPECT_EQ(e[7].type, "dir");
  }
}

TEST(TarTocParserTest, RejectsMalformedArchives) {
  testing::TarBuilder t;
  t.AddFile("a", std::string(2000, 'a'));
  std::string tar = t.Finish();
  {
    std::string bad = tar;
    bad[10] ^= 1;  // breaks the header checksum
    TarTocParser p;
    EXPECT_EQ(p.Feed(bad).code(), absl::StatusCode::kInvalidArgument);
  }
  {
    TarTocParser p;
    ASSERT_TRUE(p.Feed(tar.substr(0, 1000)).ok());
    EXPECT_EQ(p.Finish().code(), absl::StatusCode::kInvalidArgument);  // inside the data
  }
  {
    testing::TarBuilder big;
    big.AddRaw("PaxHeaders/x", 'x', std::string((1 << 20) + 1, 'x'));
    TarTocParser p;
    EXPECT_FALSE(p.Feed(big.bytes()).ok());
  }
  {
    testing::TarBuilder pax;
    pax.AddRaw("PaxHeaders/x", 'x', "5 a=b\n");
    TarTocParser p;
    EXPECT_FALSE(p.Feed(pax.bytes()).ok());
  }
}

}  // namespace
}  // namespace slipstream::index
