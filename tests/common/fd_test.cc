// SPDX-License-Identifier: Apache-2.0
#include "common/fd.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/temp_dir.h"
#include "gtest/gtest.h"

namespace slipstream {
namespace {

TEST(Fd, AtomicWriteReadBack) {
  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  std::string path = dir->Join("f");
  ASSERT_TRUE(WriteFileAtomic(path, "one").ok());
  ASSERT_TRUE(WriteFileAtomic(path, "two!").ok());
  auto got = ReadFileToString(path);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "two!");
  EXPECT_EQ(ReadFileToString(dir->Join("missing")).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ReadFileToString(path, 2).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(Fd, PwriteAndPreadExact) {
  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  auto fd = OpenFile(dir->Join("sparse"), O_RDWR | O_CREAT);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(PwriteAll(fd->get(), "world", 6).ok());
  ASSERT_TRUE(PwriteAll(fd->get(), "hello ", 0).ok());
  char buf[11];
  ASSERT_TRUE(PreadExact(fd->get(), buf, 11, 0).ok());
  EXPECT_EQ(std::string(buf, 11), "hello world");
  EXPECT_EQ(PreadExact(fd->get(), buf, 11, 5).code(), absl::StatusCode::kOutOfRange);
}

TEST(Fd, MakeDirsAndRemoveAllDoNotFollowSymlinks) {
  auto dir = TempDir::Create();
  auto outside = TempDir::Create();
  ASSERT_TRUE(dir.ok() && outside.ok());
  ASSERT_TRUE(WriteFileAtomic(outside->Join("keep"), "x").ok());
  ASSERT_TRUE(MakeDirs(dir->Join("a/b/c")).ok());
  ASSERT_TRUE(MakeDirs(dir->Join("a/b/c")).ok());
  ASSERT_TRUE(WriteFileAtomic(dir->Join("a/b/c/file"), "y").ok());
  ASSERT_EQ(::symlink(outside->path().c_str(), dir->Join("a/link").c_str()), 0);
  ASSERT_TRUE(RemoveAll(dir->Join("a")).ok());
  struct stat st;
  EXPECT_NE(::lstat(dir->Join("a").c_str(), &st), 0);
  EXPECT_EQ(::stat(outside->Join("keep").c_str(), &st), 0) << "RemoveAll followed a symlink";
  EXPECT_TRUE(RemoveAll(dir->Join("a")).ok());
}

TEST(TempDir, RemovedOnDestruction) {
  std::string path;
  {
    auto dir = TempDir::Create("t-");
    ASSERT_TRUE(dir.ok());
    path = dir->path();
    ASSERT_TRUE(MakeDirs(dir->Join("x/y")).ok());
  }
  struct stat st;
  EXPECT_NE(::stat(path.c_str(), &st), 0);
}

}  // namespace
}  // namespace slipstream
