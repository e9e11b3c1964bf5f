// SPDX-License-Identifier: Apache-2.0
#include "unpack/tar_header.h"

#include <string>

#include "gtest/gtest.h"
#include "tests/unpack/test_tar.h"

namespace slipstream::unpack {
namespace {

using testing::HeaderBlock;
using testing::TestHeader;

TEST(TarNumberTest, OctalForms) {
  EXPECT_EQ(*ParseTarNumber(std::string("0000644\0", 8)), 0644);
  EXPECT_EQ(*ParseTarNumber("   755 "), 0755);
  EXPECT_EQ(*ParseTarNumber(std::string(8, '\0')), 0);
  EXPECT_EQ(*ParseTarNumber("        "), 0);
  EXPECT_EQ(*ParseTarNumber("77777777777"), 077777777777);
  EXPECT_FALSE(ParseTarNumber("0008").ok());
  EXPECT_FALSE(ParseTarNumber("12x4").ok());
}

TEST(TarNumberTest, Base256) {
  std::string big("\x80\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00\x00", 12);
  EXPECT_EQ(*ParseTarNumber(big), int64_t{2} << 32);
  std::string minus_one(8, '\xff');
  EXPECT_EQ(*ParseTarNumber(minus_one), -1);
  std::string minus_256("\xff\xff\xff\xff\xff\xff\xff\x00", 8);
  EXPECT_EQ(*ParseTarNumber(minus_256), -256);
  std::string overflow("\x80\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 12);
  EXPECT_FALSE(ParseTarNumber(overflow).ok());
}

TEST(TarHeaderTest, UstarPrefixJoinsName) {
  TestHeader h;
  h.name = "file.txt";
  h.prefix = "some/long/dir";
  h.uname = "alice";
  h.devmajor = 3;
  auto parsed = ParseTarHeaderBlock(HeaderBlock(h));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->name, "some/long/dir/file.txt");
  EXPECT_EQ(parsed->uname, "alice");
  EXPECT_EQ(parsed->devmajor, 3);
  EXPECT_FALSE(parsed->gnu);
}

TEST(TarHeaderTest, GnuMagicIgnoresPrefixArea) {
  TestHeader h;
  h.name = "f";
  h.prefix = "not-a-prefix";  // GNU keeps atime/ctime there
  h.gnu_magic = true;
  auto parsed = ParseTarHeaderBlock(HeaderBlock(h));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->name, "f");
  EXPECT_TRUE(parsed->gnu);
}

TEST(TarHeaderTest, ChecksumMismatchIsDataLoss) {
  TestHeader h;
  h.name = "f";
  std::string block = HeaderBlock(h);
  block[0] = 'g';
  auto parsed = ParseTarHeaderBlock(block);
  EXPECT_TRUE(absl::IsDataLoss(parsed.status())) << parsed.status();
}

TEST(TarHeaderTest, BadNumericFieldIsInvalidArgumentNamingIt) {
  TestHeader h;
  h.name = "f";
  std::string block = HeaderBlock(h);
  block[110] = '9';  // inside uid
  // Fix the checksum so only the field is wrong.
  std::fill(block.begin() + 148, block.begin() + 156, ' ');
  unsigned sum = 0;
  for (unsigned char c : block) sum += c;
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%06o", sum);
  std::copy(buf, buf + 6, block.begin() + 148);
  block[154] = '\0';
  auto parsed = ParseTarHeaderBlock(block);
  EXPECT_TRUE(absl::IsInvalidArgument(parsed.status())) << parsed.status();
  EXPECT_NE(parsed.status().message().find("uid"), absl::string_view::npos);
}

TEST(PaxTest, RecordsWithBinaryValues) {
  const std::string value("a\nb\0c=d", 7);
  const std::string body = testing::PaxRecord("path", "x/y") +
                           testing::PaxRecord("SCHILY.xattr.user.bin", value);
  auto records = ParsePaxRecords(body);
  ASSERT_TRUE(records.ok()) << records.status();
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].second, "x/y");
  EXPECT_EQ((*records)[1].first, "SCHILY.xattr.user.bin");
  EXPECT_EQ((*records)[1].second, value);
}

TEST(PaxTest, MalformedRecords) {
  for (const std::string& body : {std::string("5 a=b\n"), std::string("99 a=b\n"),
                                  std::string("x a=b\n"), std::string("6 ab\n\n"),
                                  std::string("7 =bcd\n"), std::string("7 a=bcdX")}) {
    EXPECT_FALSE(ParsePaxRecords(body).ok()) << body;
  }
}

TEST(PaxTest, Times) {
  EXPECT_EQ(*ParsePaxTime("1700000000.123456789"), (TarTime{1700000000, 123456789}));
  EXPECT_EQ(*ParsePaxTime("1700000000.5"), (TarTime{1700000000, 500000000}));
  EXPECT_EQ(*ParsePaxTime("1700000000.1234567891234"), (TarTime{1700000000, 123456789}));
  EXPECT_EQ(*ParsePaxTime("42"), (TarTime{42, 0}));
  EXPECT_EQ(*ParsePaxTime("-1.25"), (TarTime{-2, 750000000}));
  EXPECT_FALSE(ParsePaxTime("").ok());
  EXPECT_FALSE(ParsePaxTime("1.2.3").ok());
  EXPECT_FALSE(ParsePaxTime("abc").ok());
}

}  // namespace
}  // namespace slipstream::unpack
