// SPDX-License-Identifier: Apache-2.0
// The layer writer through LayerUnpacker on hand-built tars: member semantics, whiteouts, and
// layers that try to write outside their directory.
#include "unpack/layer_writer.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <string>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "remote/media_types.h"
#include "tests/unpack/test_tar.h"
#include "tests/unpack/tree_snapshot.h"
#include "unpack/layer_unpacker.h"

namespace slipstream::unpack {
namespace {

using ::testing::HasSubstr;
using testing::PaxMember;
using testing::TestHeader;
using testing::TestTar;

std::string Xattr(const std::string& path, const std::string& name) {
  char buf[256];
  const ssize_t n = ::lgetxattr(path.c_str(), name.c_str(), buf, sizeof(buf));
  return n < 0 ? "<none>" : std::string(buf, static_cast<size_t>(n));
}

class LayerWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("unpack-writer-");
    ASSERT_TRUE(dir.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*dir));
    ASSERT_TRUE(MakeDirs(tmp_->Join("layers")).ok());
    ASSERT_TRUE(MakeDirs(tmp_->Join("sentinel")).ok());
    ASSERT_TRUE(WriteFileAtomic(tmp_->Join("sentinel/keep"), "precious").ok());
    dest_ = tmp_->Join("layers/l1");
    sentinel_before_ = testing::Snapshot(tmp_->Join("sentinel"));
  }

  absl::StatusOr<LayerUnpackResult> Unpack(const std::string& tar) {
    auto u = LayerUnpacker::Create(remote::kOciLayer, Digest(), Digest(), dest_);
    if (!u.ok()) return u.status();
    absl::Status s = (*u)->Write(tar);
    if (!s.ok()) return s;
    return (*u)->Finish();
  }

  // A refused layer: error naming `entry`, nothing at the destination, no partial directory
  // left, the sentinel untouched.
  void ExpectRefused(const std::string& tar, const std::string& entry) {
    absl::StatusOr<LayerUnpackResult> r = Unpack(tar);
    ASSERT_FALSE(r.ok()) << "layer with " << entry << " was accepted";
    EXPECT_TRUE(absl::IsInvalidArgument(r.status()) || absl::IsNotFound(r.status())) << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("\"" + entry + "\"")) << r.status();
    struct stat st;
    EXPECT_NE(::lstat(dest_.c_str(), &st), 0);
    EXPECT_EQ(testing::CountEntriesWithPrefix(tmp_->Join("layers"), "l1"), 0);
    EXPECT_EQ(testing::DiffSnapshots(sentinel_before_, testing::Snapshot(tmp_->Join("sentinel"))), "");
    EXPECT_EQ(testing::CountEntriesWithPrefix(tmp_->path(), "evil"), 0);
  }

  std::string Path(const std::string& rel) const { return dest_ + "/" + rel; }

  std::unique_ptr<TempDir> tmp_;
  std::string dest_;
  std::map<std::string, testing::NodeInfo> sentinel_before_;
};

TEST_F(LayerWriterTest, RefusesDotDot) {
  ExpectRefused(TestTar().File("ok", "1").File("../evil", "x").Finish(), "../evil");
  ExpectRefused(TestTar().File("a/../../evil", "x").Finish(), "a/../../evil");
}

TEST_F(LayerWriterTest, RefusesAbsoluteNames) {
  const std::string abs = tmp_->Join("sentinel/evil");
  ExpectRefused(TestTar().File(abs, "x").Finish(), abs);
}

TEST_F(LayerWriterTest, RefusesWritingThroughSymlinks) {
  const std::string sentinel = tmp_->Join("sentinel");
  ExpectRefused(TestTar().Symlink("a", sentinel).File("a/evil", "x").Finish(), "a/evil");
  ExpectRefused(TestTar().Symlink("a", "../../sentinel").File("a/evil", "x").Finish(), "a/evil");
  ExpectRefused(TestTar().Symlink("a", sentinel).Dir("a/evil").Finish(), "a/evil");
  ExpectRefused(TestTar().Symlink("a", sentinel).Symlink("a/evil", "/x").Finish(), "a/evil");
  ExpectRefused(TestTar().Symlink("a", ".").File("a/a/evil", "x").Finish(), "a/a/evil");
}

TEST_F(LayerWriterTest, RefusesSymlinkReplacingACachedDirectory) {
  // "d" is opened (and cached) for d/x, then replaced by a symlink out of the layer.
  ExpectRefused(TestTar()
                    .Dir("d")
                    .File("d/x", "1")
                    .Symlink("d", tmp_->Join("sentinel"))
                    .File("d/evil", "x")
                    .Finish(),
                "d/evil");
}

TEST_F(LayerWriterTest, RefusesHardlinksOutOfTheLayer) {
  ExpectRefused(TestTar().Hardlink("h", "../../etc/passwd").Finish(), "h");
  ExpectRefused(TestTar().Hardlink("h", "/etc/passwd").Finish(), "h");
  ExpectRefused(TestTar().Symlink("s", "/etc/passwd").Hardlink("h", "s").Finish(), "h");
  ExpectRefused(TestTar().Symlink("s", "../../../etc/passwd").Hardlink("h", "s").Finish(), "h");
  ExpectRefused(TestTar()
                    .Symlink("a", tmp_->Join("sentinel"))
                    .Hardlink("h", "a/keep")
                    .Finish(),
                "h");
  ExpectRefused(TestTar().Hardlink("h", "missing").Finish(), "h");
  ExpectRefused(TestTar().Dir("d").Hardlink("h", "d").Finish(), "h");
}

TEST_F(LayerWriterTest, RefusesBadWhiteoutsAndOverlayXattrs) {
  ExpectRefused(TestTar().File(".wh..", "").Finish(), ".wh..");
  ExpectRefused(TestTar()
                    .Raw(PaxMember({{"SCHILY.xattr.trusted.overlay.redirect", "/etc"}}))
                    .File("f", "")
                    .Finish(),
                "f");
}

TEST_F(LayerWriterTest, HardlinkToInLayerSymlinkIsFine) {
  ASSERT_TRUE(Unpack(TestTar().File("f", "x").Symlink("s", "f").Hardlink("h", "s").Finish()).ok());
  struct stat a, b;
  ASSERT_EQ(::lstat(Path("s").c_str(), &a), 0);
  ASSERT_EQ(::lstat(Path("h").c_str(), &b), 0);
  EXPECT_TRUE(S_ISLNK(b.st_mode));
  EXPECT_EQ(a.st_ino, b.st_ino);
}

TEST_F(LayerWriterTest, LaterMembersReplaceEarlierOnes) {
  auto r = Unpack(TestTar()
                      .File("f", "first")
                      .File("f", "second")
                      .Dir("d")
                      .File("d/x", "1")
                      .File("d", "d is a file now")
                      .File("e", "e was a file")
                      .Dir("e", 0700)
                      .Dir("m", 0700)
                      .File("m/child", "kept")
                      .Dir("m", 0751)
                      .Symlink("l", "old")
                      .Symlink("l", "new")
                      .Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*ReadFileToString(Path("f")), "second");
  EXPECT_EQ(*ReadFileToString(Path("d")), "d is a file now");
  struct stat st;
  ASSERT_EQ(::lstat(Path("e").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  ASSERT_EQ(::lstat(Path("m").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0751u);
  EXPECT_EQ(*ReadFileToString(Path("m/child")), "kept");
  char buf[16];
  ASSERT_EQ(::readlink(Path("l").c_str(), buf, sizeof(buf)), 3);
  EXPECT_EQ(std::string(buf, 3), "new");
}

TEST_F(LayerWriterTest, WhiteoutsBecomeOverlayMarkers) {
  TestHeader wh;
  wh.name = "dir/.wh.gone";
  wh.uid = 12;
  wh.gid = 34;
  auto r = Unpack(TestTar()
                      .Dir("dir")
                      .File("dir/gone", "replaced by the whiteout")
                      .Member(wh)
                      .File("opq/.wh..wh..opq", "")
                      .File("opq/kept", "k")
                      .File(".wh..wh..opq", "")
                      .Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st;
  ASSERT_EQ(::lstat(Path("dir/gone").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  EXPECT_EQ(st.st_uid, 12u);
  EXPECT_EQ(st.st_gid, 34u);
  EXPECT_NE(::lstat(Path("dir/.wh.gone").c_str(), &st), 0);
  EXPECT_NE(::lstat(Path("opq/.wh..wh..opq").c_str(), &st), 0);
  EXPECT_EQ(Xattr(Path("opq"), "trusted.overlay.opaque"), "y");
  EXPECT_EQ(Xattr(dest_, "trusted.overlay.opaque"), "y");
  EXPECT_EQ(Xattr(Path("dir"), "trusted.overlay.opaque"), "<none>");
}

TEST_F(LayerWriterTest, OwnersModesXattrsAndTimes) {
  TestHeader suid;
  suid.name = "bin/ping";
  suid.mode = 04755;
  suid.uid = 1000;
  suid.gid = 2000;
  // A VFS_CAP_REVISION_2 capability granting cap_net_raw: chown would clear it, so it only
  // survives when set after the chown.
  const std::string cap("\x00\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);
  TestHeader dir;
  dir.name = "sticky";
  dir.typeflag = '5';
  dir.mode = 01777;
  dir.mtime = 1000000000;
  TestHeader fifo;
  fifo.name = "sticky/fifo";
  fifo.typeflag = '6';
  fifo.mode = 0620;
  fifo.uid = 7;
  TestHeader dev;
  dev.name = "null";
  dev.typeflag = '3';
  dev.devmajor = 1;
  dev.devminor = 3;
  dev.mode = 0666;
  TestHeader root;
  root.name = "./";
  root.typeflag = '5';
  root.mode = 0750;
  root.mtime = 1234;
  auto r = Unpack(TestTar()
                      .Member(root)
                      .Raw(PaxMember({{"SCHILY.xattr.security.capability", cap},
                                      {"SCHILY.xattr.user.note", "hi"},
                                      {"mtime", "1500000000.123456789"}}))
                      .Member(suid, "ELF")
                      .Member(dir)
                      .Member(fifo)
                      .Member(dev)
                      .File("sticky/late-child", "changes the dir mtime")
                      .Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat st;
  ASSERT_EQ(::lstat(Path("bin/ping").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  EXPECT_EQ(st.st_uid, 1000u);
  EXPECT_EQ(st.st_gid, 2000u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1500000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(Xattr(Path("bin/ping"), "user.note"), "hi");
  EXPECT_EQ(Xattr(Path("bin/ping"), "security.capability").size(), cap.size());
  ASSERT_EQ(::lstat(Path("bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);  // implicit parent
  ASSERT_EQ(::lstat(Path("sticky").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1000000000);  // restored after its children were written
  ASSERT_EQ(::lstat(Path("sticky/fifo").c_str(), &st), 0);
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0620u);
  EXPECT_EQ(st.st_uid, 7u);
  ASSERT_EQ(::lstat(Path("null").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
  ASSERT_EQ(::lstat(dest_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_mtim.tv_sec, 1234);
}

TEST_F(LayerWriterTest, HardlinksShareTheInode) {
  auto r = Unpack(TestTar().File("a/f", "data").Hardlink("b/g", "a/f").Hardlink("b/g", "./a/f").Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  struct stat a, b;
  ASSERT_EQ(::lstat(Path("a/f").c_str(), &a), 0);
  ASSERT_EQ(::lstat(Path("b/g").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(a.st_nlink, 2u);
}

TEST_F(LayerWriterTest, RootMustBeADirectory) {
  TestHeader h;
  h.name = "./";
  h.typeflag = '0';
  h.v7 = false;
  ExpectRefused(TestTar().Member(h).Finish(), "./");
}

TEST_F(LayerWriterTest, ManyDirectoriesStayWithinTheFdBudget) {
  TestTar tar;
  for (int i = 0; i < 200; ++i) {
    tar.File("d" + std::to_string(i % 40) + "/sub/f" + std::to_string(i), std::to_string(i));
  }
  auto r = Unpack(tar.Finish());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->entries, 200);
  EXPECT_EQ(*ReadFileToString(Path("d17/sub/f137")), "137");
}

}  // namespace
}  // namespace slipstream::unpack
