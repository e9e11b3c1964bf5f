// SPDX-License-Identifier: Apache-2.0
// TarWriter checked against GNU tar: every stream must list (`tar -tvf`) and extract
// (`tar -xf`) to exactly what was written.
#include "testkit/tar_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testkit/tar_writer_format.h"
#include "testkit/tar_writer_tree.h"

namespace slipstream::testkit {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Runs `tar <args> -f <archive>` and returns stdout; fails the test on a non-zero exit or
// any complaint on stderr.
std::string RunTar(const std::string& archive_bytes, std::vector<std::string> args,
                   const std::string& cwd = "") {
  auto dir = TempDir::Create("tar-test-");
  EXPECT_TRUE(dir.ok()) << dir.status();
  const std::string path = dir->Join("archive.tar");
  EXPECT_TRUE(WriteFileAtomic(path, archive_bytes).ok());
  std::vector<std::string> argv = {"tar"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("-f");
  argv.push_back(path);
  SubprocessOptions opts;
  opts.cwd = cwd;
  opts.env["TZ"] = "UTC";
  auto r = RunSubprocess(argv, opts);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_EQ(r->stderr_data, "");
  return r->stdout_data;
}

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

// The stream is whole blocks and ends with two zero blocks.
void ExpectWellFormed(const std::string& tar) {
  ASSERT_EQ(tar.size() % 512, 0u);
  ASSERT_GE(tar.size(), 1024u);
  EXPECT_EQ(tar.substr(tar.size() - 1024), std::string(1024, '\0'));
}

TEST(TarWriter, EveryEntryTypeListsInGnuTar) {
  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar));
  ASSERT_TRUE(w.AddDir("etc", {.mode = 0755}).ok());
  ASSERT_TRUE(w.AddFile("etc/hosts", "127.0.0.1 localhost\n", {.mode = 0644, .uid = 1000,
                                                                .gid = 100, .uname = "alice",
                                                                .gname = "users"}).ok());
  ASSERT_TRUE(w.AddSymlink("etc/localtime", "/usr/share/zoneinfo/UTC").ok());
  ASSERT_TRUE(w.AddHardlink("etc/hosts.bak", "etc/hosts").ok());
  ASSERT_TRUE(w.AddCharDevice("dev/null", 1, 3, {.mode = 0666}).ok());
  ASSERT_TRUE(w.AddBlockDevice("dev/sda", 8, 0, {.mode = 0660}).ok());
  ASSERT_TRUE(w.AddFifo("run/fifo", {.mode = 0600}).ok());
  ASSERT_TRUE(w.AddFile("usr/bin/su", "ELF", {.mode = 04755}).ok());
  ASSERT_TRUE(w.AddDir("tmp", {.mode = 01777}).ok());
  ASSERT_TRUE(w.AddFile("usr/bin/wall", "ELF", {.mode = 02755}).ok());
  ASSERT_TRUE(w.AddWhiteout("var", "gone").ok());
  ASSERT_TRUE(w.AddOpaqueWhiteout("opt").ok());
  ASSERT_TRUE(w.Finish().ok());
  ExpectWellFormed(tar);

  const auto lines = Lines(RunTar(tar, {"-tv", "--numeric-owner"}));
  ASSERT_EQ(lines.size(), 12u) << RunTar(tar, {"-tv"});
  EXPECT_THAT(lines[0], HasSubstr("drwxr-xr-x 0/0"));
  EXPECT_THAT(lines[0], HasSubstr("2020-01-01 00:00 etc/"));
  EXPECT_THAT(lines[1], HasSubstr("-rw-r--r-- 1000/100"));
  EXPECT_THAT(lines[1], HasSubstr(" 20 2020-01-01 00:00 etc/hosts"));
  EXPECT_THAT(lines[2], HasSubstr("lrwxrwxrwx"));
  EXPECT_THAT(lines[2], HasSubstr("etc/localtime -> /usr/share/zoneinfo/UTC"));
  EXPECT_THAT(lines[3], HasSubstr("etc/hosts.bak link to etc/hosts"));
  EXPECT_THAT(lines[4], HasSubstr("crw-rw-rw-"));
  EXPECT_THAT(lines[4], HasSubstr("1,3"));
  EXPECT_THAT(lines[5], HasSubstr("brw-rw----"));
  EXPECT_THAT(lines[5], HasSubstr("8,0"));
  EXPECT_THAT(lines[6], HasSubstr("prw-------"));
  EXPECT_THAT(lines[7], HasSubstr("-rwsr-xr-x"));
  EXPECT_THAT(lines[8], HasSubstr("drwxrwxrwt"));
  EXPECT_THAT(lines[9], HasSubstr("-rwxr-sr-x"));
  EXPECT_THAT(lines[10], HasSubstr("var/.wh.gone"));
  EXPECT_THAT(lines[11], HasSubstr("opt/.wh..wh..opq"));

  const auto named = Lines(RunTar(tar, {"-tv"}));
  EXPECT_THAT(named[1], HasSubstr("alice/users"));
}

TEST(TarWriter, ExtractsContentsLinksAndSubsecondMtimes) {
  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar));
  const std::string big(3 * 512 + 17, 'x');  // content that needs padding
  const absl::Time mtime = absl::FromUnixNanos(1600000000123456789);
  ASSERT_TRUE(w.AddDir("a").ok());
  ASSERT_TRUE(w.AddFile("a/big", big, {.mode = 0600, .mtime = mtime}).ok());
  ASSERT_TRUE(w.AddFile("a/empty", "").ok());
  ASSERT_TRUE(w.AddHardlink("a/big2", "a/big").ok());
  ASSERT_TRUE(w.AddSymlink("a/link", "big").ok());
  ASSERT_TRUE(w.Finish().ok());
  ExpectWellFormed(tar);

  auto out = TempDir::Create("tar-x-");
  ASSERT_TRUE(out.ok());
  RunTar(tar, {"-x", "-C", out->path()});
  auto content = ReadFileToString(out->Join("a/big"));
  ASSERT_TRUE(content.ok()) << content.status();
  EXPECT_EQ(*content, big);
  struct stat st1, st2, st3;
  ASSERT_EQ(::lstat(out->Join("a/big").c_str(), &st1), 0);
  ASSERT_EQ(::lstat(out->Join("a/big2").c_str(), &st2), 0);
  EXPECT_EQ(st1.st_ino, st2.st_ino) << "hardlink must share the inode";
  EXPECT_EQ(st1.st_mode & 07777, 0600u);
  EXPECT_EQ(st1.st_mtim.tv_sec, 1600000000);
  EXPECT_EQ(st1.st_mtim.tv_nsec, 123456789);
  ASSERT_EQ(::lstat(out->Join("a/link").c_str(), &st3), 0);
  EXPECT_TRUE(S_ISLNK(st3.st_mode));
  EXPECT_EQ(::lstat(out->Join("a/empty").c_str(), &st3), 0);
  EXPECT_EQ(st3.st_size, 0);
}

std::string LongPath(size_t components, size_t width) {
  std::string path;
  for (size_t i = 0; i < components; ++i) {
    if (!path.empty()) path += "/";
    path += std::string(width, static_cast<char>('a' + i % 26));
  }
  return path;
}

class LongNames : public ::testing::TestWithParam<LongNameStyle> {};

TEST_P(LongNames, LongNamesAndLinkTargetsRoundTrip) {
  const std::string mid = LongPath(3, 50);    // 152 bytes: fits the ustar prefix split
  const std::string huge = LongPath(6, 60);   // 365 bytes: needs PAX or GNU long names
  const std::string target = LongPath(4, 40); // 163-byte symlink target
  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar), GetParam());
  ASSERT_TRUE(w.AddFile(mid, "m").ok());
  ASSERT_TRUE(w.AddFile(huge, "h").ok());
  ASSERT_TRUE(w.AddSymlink("s", target).ok());
  ASSERT_TRUE(w.AddHardlink("hl", huge).ok());
  ASSERT_TRUE(w.Finish().ok());
  ExpectWellFormed(tar);
  EXPECT_THAT(Lines(RunTar(tar, {"-t"})), ElementsAre(mid, huge, "s", "hl"));

  if (GetParam() == LongNameStyle::kGnu) {
    EXPECT_THAT(tar, HasSubstr("././@LongLink"));
    EXPECT_THAT(tar, Not(HasSubstr(" path=")));
  } else {
    EXPECT_THAT(tar, Not(HasSubstr("././@LongLink")));
    EXPECT_THAT(tar, HasSubstr(absl::StrCat(" path=", huge, "\n")));
    EXPECT_THAT(tar, HasSubstr(absl::StrCat(" linkpath=", target, "\n")));
    // The 152-byte name was split into prefix + name, not written as a PAX record.
    EXPECT_THAT(tar, Not(HasSubstr(absl::StrCat("path=", mid))));
    EXPECT_EQ(tar.substr(345, 101), mid.substr(0, 101));
  }

  auto out = TempDir::Create("tar-long-");
  ASSERT_TRUE(out.ok());
  RunTar(tar, {"-x", "-C", out->path()});
  auto content = ReadFileToString(out->Join(huge));
  ASSERT_TRUE(content.ok()) << content.status();
  EXPECT_EQ(*content, "h");
  std::string link(512, '\0');
  const ssize_t n = ::readlink(out->Join("s").c_str(), link.data(), link.size());
  ASSERT_GT(n, 0);
  EXPECT_EQ(link.substr(0, static_cast<size_t>(n)), target);
}

INSTANTIATE_TEST_SUITE_P(Styles, LongNames,
                         ::testing::Values(LongNameStyle::kPax, LongNameStyle::kGnu));

TEST(TarWriter, LargeOwnerIdsUsePaxOrBase256) {
  for (LongNameStyle style : {LongNameStyle::kPax, LongNameStyle::kGnu}) {
    std::string tar;
    TarWriter w(TarWriter::StringSink(&tar), style);
    ASSERT_TRUE(w.AddFile("f", "x", {.uid = 3000000, .gid = 4000000}).ok());
    ASSERT_TRUE(w.Finish().ok());
    EXPECT_THAT(RunTar(tar, {"-tv", "--numeric-owner"}), HasSubstr("3000000/4000000"));
    EXPECT_EQ(tar.find(" uid=3000000\n") != std::string::npos, style == LongNameStyle::kPax);
  }
}

TEST(TarWriter, XattrsExtractWithGnuTar) {
  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar));
  const std::string binary("\x01\x00\xff=\n", 5);
  ASSERT_TRUE(w.AddFile("f", "x", {.xattrs = {{"user.slipstream", "hello"},
                                              {"user.binary", binary}}}).ok());
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_THAT(tar, HasSubstr("SCHILY.xattr.user.slipstream=hello\n"));

  auto out = TempDir::Create("tar-xattr-");
  ASSERT_TRUE(out.ok());
  RunTar(tar, {"-x", "--xattrs", "--xattrs-include=user.*", "-C", out->path()});
  char buf[64];
  ssize_t n = ::lgetxattr(out->Join("f").c_str(), "user.slipstream", buf, sizeof buf);
  ASSERT_EQ(n, 5) << "errno " << errno;
  EXPECT_EQ(std::string(buf, 5), "hello");
  n = ::lgetxattr(out->Join("f").c_str(), "user.binary", buf, sizeof buf);
  ASSERT_EQ(n, 5);
  EXPECT_EQ(std::string(buf, 5), binary);
}

TEST(TarWriter, RawPaxRecordsAndGlobalHeaders) {
  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar));
  ASSERT_TRUE(w.AddGlobalPax({{"comment", "made by slipstream"}}).ok());
  ASSERT_TRUE(w.AddFile("f", "x", {.pax_records = {{"path", "renamed"}}}).ok());
  ASSERT_TRUE(w.Finish().ok());
  // A raw `path` record overrides the header name, as the PAX spec says.
  EXPECT_THAT(Lines(RunTar(tar, {"-t"})), ElementsAre("renamed"));
  EXPECT_THAT(tar, HasSubstr("comment=made by slipstream\n"));
}

TEST(TarWriter, ErrorsAreStickyAndFinishIsFinal) {
  int calls = 0;
  TarWriter w([&calls](std::string_view) {
    ++calls;
    return absl::UnavailableError("disk gone");
  });
  EXPECT_EQ(w.AddFile("f", "x").code(), absl::StatusCode::kUnavailable);
  const int after_first = calls;
  EXPECT_EQ(w.AddDir("d").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(w.Finish().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(calls, after_first) << "no writes after the first failure";

  std::string tar;
  TarWriter ok(TarWriter::StringSink(&tar));
  ASSERT_TRUE(ok.Finish().ok());
  EXPECT_EQ(ok.AddFile("late", "x").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(tar, std::string(1024, '\0'));
  EXPECT_EQ(ok.bytes_written(), 1024);

  TarWriter bad(TarWriter::StringSink(&tar));
  EXPECT_EQ(bad.AddWhiteout("d", "a/b").code(), absl::StatusCode::kInvalidArgument);
}

TEST(TarWriter, AddFileFromFdStreamsAndDetectsShrinking) {
  auto dir = TempDir::Create("tar-fd-");
  ASSERT_TRUE(dir.ok());
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 % 251);
  ASSERT_TRUE(WriteFileAtomic(dir->Join("src"), data).ok());
  auto fd = OpenFile(dir->Join("src"), O_RDONLY);
  ASSERT_TRUE(fd.ok());

  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar));
  ASSERT_TRUE(w.AddFileFromFd("blob", fd->get(), static_cast<int64_t>(data.size())).ok());
  ASSERT_TRUE(w.Finish().ok());
  EXPECT_EQ(RunTar(tar, {"-xO"}), data);

  std::string tar2;
  TarWriter w2(TarWriter::StringSink(&tar2));
  EXPECT_EQ(w2.AddFileFromFd("blob", fd->get(), static_cast<int64_t>(data.size()) + 1).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(TarWriter, DirectoryTreeIsCompleteAndDeterministic) {
  auto src = TempDir::Create("tar-tree-");
  ASSERT_TRUE(src.ok());
  ASSERT_TRUE(MakeDirs(src->Join("b/sub")).ok());
  ASSERT_TRUE(WriteFileAtomic(src->Join("b/sub/file"), "content", 0640).ok());
  ASSERT_TRUE(WriteFileAtomic(src->Join("a"), "first").ok());
  ASSERT_EQ(::link(src->Join("b/sub/file").c_str(), src->Join("c-hardlink").c_str()), 0);
  ASSERT_EQ(::symlink("b/sub/file", src->Join("d-symlink").c_str()), 0);
  ASSERT_EQ(::mkfifo(src->Join("e-fifo").c_str(), 0600), 0);
  ASSERT_EQ(::chmod(src->Join("b").c_str(), 02755), 0);
  ASSERT_EQ(::lsetxattr(src->Join("a").c_str(), "user.k", "v", 1, 0), 0);
  const timespec times[2] = {{1, 0}, {1500000000, 250000000}};
  ASSERT_EQ(::utimensat(AT_FDCWD, src->Join("a").c_str(), times, AT_SYMLINK_NOFOLLOW), 0);

  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar));
  ASSERT_TRUE(AddDirectoryTree(w, src->path(), {.uid = 0, .gid = 0}).ok());
  ASSERT_TRUE(w.Finish().ok());

  const auto lines = Lines(RunTar(tar, {"-tv", "--numeric-owner"}));
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_THAT(lines[0], HasSubstr(" 0/0 "));
  EXPECT_THAT(lines[0], HasSubstr(" a"));
  EXPECT_THAT(lines[1], HasSubstr("drwxr-sr-x"));
  EXPECT_THAT(lines[1], HasSubstr(" b/"));
  EXPECT_THAT(lines[2], HasSubstr(" b/sub/"));
  EXPECT_THAT(lines[3], HasSubstr("-rw-r----- 0/0"));
  EXPECT_THAT(lines[3], HasSubstr(" b/sub/file"));
  EXPECT_THAT(lines[4], HasSubstr("c-hardlink link to b/sub/file"));
  EXPECT_THAT(lines[5], HasSubstr("d-symlink -> b/sub/file"));
  EXPECT_THAT(lines[6], HasSubstr("prw-------"));
  EXPECT_THAT(tar, HasSubstr("SCHILY.xattr.user.k=v\n"));
  EXPECT_THAT(tar, HasSubstr(" mtime=1500000000.25\n"));

  std::string again;
  TarWriter w2(TarWriter::StringSink(&again));
  ASSERT_TRUE(AddDirectoryTree(w2, src->path(), {.uid = 0, .gid = 0}).ok());
  ASSERT_TRUE(w2.Finish().ok());
  EXPECT_EQ(tar, again);

  TarWriter w3(TarWriter::StringSink(&again));
  EXPECT_EQ(AddDirectoryTree(w3, src->Join("missing")).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AddDirectoryTree(w3, src->Join("a")).code(), absl::StatusCode::kInvalidArgument);
}

TEST(TarFormat, PaxRecordLengthCountsItsOwnDigits) {
  EXPECT_EQ(tar_format::PaxRecord("a", "b"), "6 a=b\n");
  // 9 bytes besides the length: one digit would make 10, which needs two digits → 11.
  EXPECT_EQ(tar_format::PaxRecord("key", "vvv"), "11 key=vvv\n");
  const std::string r99 = tar_format::PaxRecord("k", std::string(93, 'v'));
  EXPECT_EQ(r99.size(), 99u);
  EXPECT_EQ(r99.substr(0, 3), "99 ");
  // 98 bytes besides the length: 100 would need three digits → 101.
  const std::string r101 = tar_format::PaxRecord("k", std::string(94, 'v'));
  EXPECT_EQ(r101.size(), 101u);
  EXPECT_EQ(r101.substr(0, 4), "101 ");
}

TEST(TarFormat, NumbersOctalAndBase256) {
  char f[12];
  ASSERT_TRUE(tar_format::PutNumber(f, 8, 0755, false));
  EXPECT_EQ(std::string(f, 8), std::string("0000755\0", 8));
  EXPECT_FALSE(tar_format::PutNumber(f, 8, 2097152, false));
  ASSERT_TRUE(tar_format::PutNumber(f, 8, 2097152, true));
  EXPECT_EQ(static_cast<unsigned char>(f[0]), 0x80);
  EXPECT_EQ(static_cast<unsigned char>(f[5]), 0x20);
  EXPECT_FALSE(tar_format::PutNumber(f, 12, -1, true));
  ASSERT_TRUE(tar_format::PutNumber(f, 12, (int64_t{1} << 33) - 1, false));
  EXPECT_EQ(std::string(f, 12), std::string("77777777777\0", 12));
}

TEST(TarFormat, UstarSplitAndPaxTime) {
  EXPECT_FALSE(tar_format::SplitUstarName("short").has_value());
  EXPECT_FALSE(tar_format::SplitUstarName(std::string(120, 'x')).has_value());
  const std::string name = std::string(60, 'p') + "/" + std::string(60, 'n');
  auto split = tar_format::SplitUstarName(name);
  ASSERT_TRUE(split.has_value());
  EXPECT_EQ(split->first, std::string(60, 'p'));
  EXPECT_EQ(split->second, std::string(60, 'n'));
  EXPECT_EQ(tar_format::PaxTime(5, 0), "5");
  EXPECT_EQ(tar_format::PaxTime(5, 500000000), "5.5");
  EXPECT_EQ(tar_format::PaxTime(-2, 500000000), "-1.5");
}

}  // namespace
}  // namespace slipstream::testkit
