// SPDX-License-Identifier: Apache-2.0
// The adapter's translations that need no kernel: attributes, statfs, open flags, xattr
// buffer sizing, and the errno each LayerFs error becomes.
#include "fuse/fuse_translate.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/sysmacros.h>

#include "absl/status/status.h"
#include "common/status.h"

namespace slipstream::fuse {
namespace {

TEST(FuseTranslateTest, StatCarriesEveryField) {
  Attr a;
  a.ino = MakeIno(3, 77);
  a.mode = S_IFCHR | 0620;
  a.nlink = 4;
  a.uid = 1000;
  a.gid = 5;
  a.rdev = makedev(136, 2);
  a.size = 12345;
  a.blocks = 25;
  a.mtime_sec = 1700000000;
  a.mtime_nsec = 999999999;
  struct stat st = ToStat(a);
  EXPECT_EQ(st.st_ino, MakeIno(3, 77));
  EXPECT_EQ(st.st_mode, static_cast<mode_t>(S_IFCHR | 0620));
  EXPECT_EQ(st.st_nlink, 4u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 5u);
  EXPECT_EQ(major(st.st_rdev), 136u);
  EXPECT_EQ(minor(st.st_rdev), 2u);
  EXPECT_EQ(st.st_size, 12345);
  EXPECT_EQ(st.st_blocks, 25);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 999999999);
  EXPECT_EQ(st.st_ctim.tv_nsec, 999999999);
}

TEST(FuseTranslateTest, StatvfsIsFullAndReadOnly) {
  FsStats s;
  s.blocks = 100;
  s.files = 7;
  struct statvfs sv = ToStatvfs(s);
  EXPECT_EQ(sv.f_blocks, 100u);
  EXPECT_EQ(sv.f_bfree, 0u);
  EXPECT_EQ(sv.f_bavail, 0u);
  EXPECT_EQ(sv.f_files, 7u);
  EXPECT_EQ(sv.f_ffree, 0u);
  EXPECT_EQ(sv.f_namemax, 255u);
  EXPECT_TRUE(sv.f_flag & ST_RDONLY);
}

TEST(FuseTranslateTest, WritingOpensAreReadOnlyFilesystemErrors) {
  EXPECT_EQ(WriteAccessErrno(O_RDONLY), 0);
  EXPECT_EQ(WriteAccessErrno(O_RDONLY | O_NOFOLLOW | O_CLOEXEC), 0);
  EXPECT_EQ(WriteAccessErrno(O_WRONLY), EROFS);
  EXPECT_EQ(WriteAccessErrno(O_RDWR), EROFS);
  EXPECT_EQ(WriteAccessErrno(O_RDONLY | O_TRUNC), EROFS);
}

TEST(FuseTranslateTest, XattrAnswers) {
  EXPECT_EQ(ChooseXattrAnswer(0, 10), XattrAnswer::kSize);
  EXPECT_EQ(ChooseXattrAnswer(9, 10), XattrAnswer::kTooSmall);
  EXPECT_EQ(ChooseXattrAnswer(10, 10), XattrAnswer::kData);
  EXPECT_EQ(ChooseXattrAnswer(0, 0), XattrAnswer::kSize);
  EXPECT_EQ(JoinXattrNames({"user.a", "trusted.overlay.opaque"}),
            std::string("user.a\0trusted.overlay.opaque\0", 30));
  EXPECT_EQ(JoinXattrNames({}), "");
}

TEST(FuseTranslateTest, LayerFsErrorsBecomeTheExpectedErrnos) {
  // The codes LayerFs documents, through the one Status → errno table.
  EXPECT_EQ(StatusToErrno(absl::NotFoundError("no inode")), ENOENT);
  EXPECT_EQ(StatusToErrno(absl::InvalidArgumentError("not a directory")), EINVAL);
  EXPECT_EQ(StatusToErrno(absl::UnavailableError("registry down")), EIO);
  EXPECT_EQ(StatusToErrno(absl::DataLossError("span digest")), EIO);
  EXPECT_EQ(StatusToErrno(absl::DeadlineExceededError("waited")), EIO);
  EXPECT_EQ(StatusToErrno(absl::OkStatus()), 0);
}

}  // namespace
}  // namespace slipstream::fuse
