// SPDX-License-Identifier: Apache-2.0
// containerd's snapshotter test suite (snapshots/testsuite) re-created for slipstream: every
// case runs against the C++ API ("direct") and through a real gRPC channel ("grpc"), and the
// returned mounts are really mounted (the tests run as root).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/plugin/snapshot_suite_client.h"
#include "tests/plugin/snapshot_test_mount.h"
#include "tests/plugin/snapshot_test_tree.h"

namespace slipstream::plugin::testing {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

const Labels kRootLabel = {{"containerd.io/gc.root", "2024-01-01T00:00:00Z"}};

class SnapshotSuiteTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("snapshot-suite-");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    root_ = tmp_->Join("root");
    work_ = tmp_->Join("work");
    ASSERT_TRUE(MakeDirs(work_).ok());
    auto s = MakeSuiteSnapshotter(GetParam(), root_);
    ASSERT_TRUE(s.ok()) << s.status();
    sn_ = std::move(*s);
  }
  void TearDown() override {
    mounts_.clear();  // unmount before the snapshotter and the temp dir go
    sn_.reset();
  }

  // Makes <work>/<name>, mounts `mounts` there and unmounts at the end of the test.
  std::string MountAt(const std::string& name, const std::vector<MountSpec>& mounts) {
    std::string target = absl::StrCat(work_, "/", name);
    EXPECT_TRUE(MakeDirs(target).ok());
    auto status = MountAll(mounts, target);
    EXPECT_TRUE(status.ok()) << status;
    if (status.ok()) mounts_.push_back(std::make_unique<ScopedMount>(target));
    return target;
  }

  // Prepare `key` on `parent` and mount it.
  std::string PrepareMount(const std::string& key, const std::string& parent) {
    auto mounts = sn_->Prepare(key, parent, kRootLabel);
    EXPECT_TRUE(mounts.ok()) << mounts.status();
    if (!mounts.ok()) return "";
    EXPECT_GE(mounts->size(), 1u);
    return MountAt(key, *mounts);
  }

  // containerd's checkSnapshots: every applier becomes one committed layer; a view of the
  // top must look exactly like all appliers applied to one plain directory.
  void CheckSnapshots(const std::vector<Applier>& layers) {
    std::string parent;
    for (size_t i = 0; i < layers.size(); ++i) {
      std::string key = absl::StrCat("layer-", i, "-active");
      std::string dir = PrepareMount(key, parent);
      ASSERT_FALSE(dir.empty());
      auto st = layers[i](dir);
      ASSERT_TRUE(st.ok()) << st;
      std::string name = absl::StrCat("layer-", i);
      ASSERT_TRUE(sn_->Commit(name, key, kRootLabel).ok());
      parent = name;
    }
    auto view = sn_->View("check-view", parent, kRootLabel);
    ASSERT_TRUE(view.ok()) << view.status();
    std::string mounted = MountAt("check-view", *view);
    std::string flat = absl::StrCat(work_, "/flat");
    ASSERT_TRUE(MakeDirs(flat).ok());
    for (const auto& a : layers) ASSERT_TRUE(a(flat).ok());
    EXPECT_EQ(DumpTree(mounted), DumpTree(flat));
  }

  std::unique_ptr<TempDir> tmp_;
  std::string root_;
  std::string work_;
  std::unique_ptr<SuiteSnapshotter> sn_;
  std::vector<std::unique_ptr<ScopedMount>> mounts_;
};

TEST_P(SnapshotSuiteTest, Basic) {
  Applier initial = Chain({CreateFile("foo", "foo\n", 0777), CreateDir("a", 0755),
                           CreateDir("a/b", 0755), CreateDir("a/b/c", 0755)});
  Applier diff = Chain({CreateFile("bar", "bar\n", 0777), CreateFile("foo", "bar\n", 0777),
                        RemovePath("a/b")});

  std::string preparing = PrepareMount("preparing", "");
  ASSERT_TRUE(initial(preparing).ok());
  ASSERT_TRUE(sn_->Commit("committed", "preparing", kRootLabel).ok());
  auto si = sn_->Stat("committed");
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->parent, "");
  EXPECT_EQ(si->kind, SnapshotKind::kCommitted);
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("preparing").status()));

  std::string next = PrepareMount("nextlayer", "committed");
  std::string expected_dir = absl::StrCat(work_, "/expected");
  ASSERT_TRUE(MakeDirs(expected_dir).ok());
  ASSERT_TRUE(initial(expected_dir).ok());
  EXPECT_EQ(DumpTree(next), DumpTree(expected_dir));
  ASSERT_TRUE(diff(next).ok());
  auto ni = sn_->Stat("nextlayer");
  ASSERT_TRUE(ni.ok());
  EXPECT_EQ(ni->parent, "committed");
  EXPECT_EQ(ni->kind, SnapshotKind::kActive);

  ASSERT_TRUE(sn_->Commit("committed-next", "nextlayer", kRootLabel).ok());
  auto si2 = sn_->Stat("committed-next");
  ASSERT_TRUE(si2.ok());
  EXPECT_EQ(si2->parent, "committed");
  EXPECT_EQ(si2->kind, SnapshotKind::kCommitted);
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("nextlayer").status()));

  auto walked = sn_->Walk({});
  ASSERT_TRUE(walked.ok());
  std::map<std::string, SnapshotInfo> by_name;
  for (const auto& i : *walked) by_name[i.name] = i;
  EXPECT_EQ(by_name["committed"], *si);
  EXPECT_EQ(by_name["committed-next"], *si2);

  auto view = sn_->View("nextnextlayer", "committed-next", kRootLabel);
  ASSERT_TRUE(view.ok());
  std::string nextnext = MountAt("nextnextlayer", *view);
  ASSERT_TRUE(diff(expected_dir).ok());
  EXPECT_EQ(DumpTree(nextnext), DumpTree(expected_dir));
  mounts_.clear();

  EXPECT_TRUE(sn_->Remove("nextnextlayer").ok());
  auto busy = sn_->Remove("committed");
  EXPECT_TRUE(absl::IsFailedPrecondition(busy)) << busy;
  EXPECT_THAT(std::string(busy.message()), HasSubstr("remove"));
  EXPECT_TRUE(sn_->Remove("committed-next").ok());
  EXPECT_TRUE(sn_->Remove("committed").ok());
}

TEST_P(SnapshotSuiteTest, StatActive) {
  std::string preparing = PrepareMount("preparing", "");
  ASSERT_TRUE(CreateFile("foo", "foo\n", 0777)(preparing).ok());
  auto si = sn_->Stat("preparing");
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->name, "preparing");
  EXPECT_EQ(si->kind, SnapshotKind::kActive);
  EXPECT_EQ(si->parent, "");
}

TEST_P(SnapshotSuiteTest, StatCommitted) {
  std::string preparing = PrepareMount("preparing", "");
  ASSERT_TRUE(CreateFile("foo", "foo\n", 0777)(preparing).ok());
  ASSERT_TRUE(sn_->Commit("committed", "preparing", kRootLabel).ok());
  auto si = sn_->Stat("committed");
  ASSERT_TRUE(si.ok());
  EXPECT_EQ(si->name, "committed");
  EXPECT_EQ(si->kind, SnapshotKind::kCommitted);
  EXPECT_EQ(si->parent, "");
  EXPECT_EQ(si->labels, kRootLabel);
}

TEST_P(SnapshotSuiteTest, Transitivity) {
  std::string a = PrepareMount("preparing", "");
  ASSERT_TRUE(CreateFile("foo", "foo\n", 0777)(a).ok());
  ASSERT_TRUE(sn_->Commit("snapA", "preparing", kRootLabel).ok());
  std::string b = PrepareMount("next", "snapA");
  ASSERT_TRUE(CreateFile("foo", "foo bar\n", 0777)(b).ok());
  ASSERT_TRUE(sn_->Commit("snapB", "next", kRootLabel).ok());
  auto sa = sn_->Stat("snapA");
  auto sb = sn_->Stat("snapB");
  ASSERT_TRUE(sa.ok() && sb.ok());
  auto sp = sn_->Stat(sb->parent);
  ASSERT_TRUE(sp.ok());
  EXPECT_EQ(sa->parent, "");
  EXPECT_EQ(sb->parent, "snapA");
  EXPECT_EQ(sp->parent, "");
}

TEST_P(SnapshotSuiteTest, PrepareViewSameKeyFails) {
  ASSERT_TRUE(sn_->Prepare("preparing", "", kRootLabel).ok());
  ASSERT_TRUE(sn_->Commit("snapA", "preparing", kRootLabel).ok());
  ASSERT_TRUE(sn_->Prepare("newlayer", "snapA", kRootLabel).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(sn_->View("newlayer", "snapA", kRootLabel).status()));
  ASSERT_TRUE(sn_->Prepare("prepLayer", "snapA", kRootLabel).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(sn_->Prepare("prepLayer", "snapA", kRootLabel).status()));
  ASSERT_TRUE(sn_->View("viewLayer", "snapA", kRootLabel).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(sn_->View("viewLayer", "snapA", kRootLabel).status()));
}

TEST_P(SnapshotSuiteTest, DeletedFilesInChildSnapshot) {
  CheckSnapshots({Chain({CreateFile("foo", "foo\n", 0777), CreateFile("foobar", "foobar\n", 0777)}),
                  RemovePath("foobar"), Chain({})});
}

TEST_P(SnapshotSuiteTest, LayerFileUpdate) {
  CheckSnapshots({Chain({CreateFile("foo", "foo\n", 0777), CreateDir("dir", 0755),
                         CreateFile("dir/f", "old", 0644)}),
                  Chain({CreateFile("foo", "new contents\n", 0777), CreateFile("dir/f", "n", 0600)}),
                  CreateFile("dir/f", "third", 0640)});
}

TEST_P(SnapshotSuiteTest, RemoveDirectoryInLowerLayer) {
  CheckSnapshots({Chain({CreateDir("lib", 0700), CreateFile("lib/hidden", "a", 0644),
                         CreateDir("lib/sub", 0755), CreateFile("lib/sub/x", "x", 0644)}),
                  RemovePath("lib"),
                  Chain({CreateDir("lib", 0755), CreateFile("lib/newfile", "b", 0644)})});
}

TEST_P(SnapshotSuiteTest, Chown) {
  CheckSnapshots({Chain({CreateDir("opt", 0755), CreateDir("opt/a", 0755), CreateDir("opt/a/b", 0755),
                         CreateFile("opt/a/b/file.txt", "hello", 0644)}),
                  Chain({Chown("opt", 1, 1), Chown("opt/a", 1, 1), Chown("opt/a/b", 1, 1),
                         Chown("opt/a/b/file.txt", 1, 1)})});
}

TEST_P(SnapshotSuiteTest, DirectoryPermissionOnCommit) {
  CheckSnapshots({Chain({CreateDir("dir1", 0700), CreateDir("dir2", 0700), CreateDir("dir3", 0700),
                         CreateFile("dir1/file", "file", 0600)}),
                  Chain({CreateDir("dir4", 0700), CreateFile("dir2/file2", "f", 0600)})});
}

TEST_P(SnapshotSuiteTest, MoveFileFromLowerLayer) {
  CheckSnapshots({Chain({CreateDir("dir1", 0700), CreateFile("dir1/f1", "Hello", 0644),
                         CreateDir("dir2", 0700), CreateFile("dir2/f2", "...", 0644)}),
                  Chain({CreateDir("dir3", 0700), CreateFile("dir3/f1", "Hello", 0644),
                         RemovePath("dir1"), HardLink("dir2/f2", "dir3/f2"), RemovePath("dir2/f2")})});
}

// Files from a lower layer can be renamed. Renaming a *directory* from a lower layer fails
// with EXDEV on overlayfs without redirect_dir (as with containerd's overlay snapshotter);
// tools like mv fall back to copying, so the case renames a directory made in the same layer.
TEST_P(SnapshotSuiteTest, Rename) {
  CheckSnapshots({Chain({CreateDir("dir1", 0755), CreateFile("somefile", "something", 0644),
                         CreateFile("dir1/f", "x", 0644)}),
                  Chain({RenamePath("somefile", "dir1/f1"), RenamePath("dir1/f", "moved"),
                         CreateDir("newdir", 0700), RenamePath("newdir", "dir2")})});
}

TEST_P(SnapshotSuiteTest, RemoveIntermediateSnapshot) {
  PrepareMount("base", "");
  ASSERT_TRUE(sn_->Commit("committed-base", "base", kRootLabel).ok());
  ASSERT_TRUE(sn_->Prepare("intermediate", "committed-base", kRootLabel).ok());
  ASSERT_TRUE(sn_->Commit("committed-inter", "intermediate", kRootLabel).ok());
  ASSERT_TRUE(sn_->Prepare("toplayer", "committed-inter", kRootLabel).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(sn_->Remove("committed-inter")));
  EXPECT_TRUE(sn_->Remove("toplayer").ok());
  EXPECT_TRUE(sn_->Remove("committed-inter").ok());
  EXPECT_TRUE(sn_->Remove("committed-base").ok());
}

// containerd's baseTestSnapshots: c1 <- c2 <- a1, a2, v1 (on c2), v2.
void BaseSnapshots(SuiteSnapshotter& sn) {
  ASSERT_TRUE(sn.Prepare("c1-a", "", kRootLabel).ok());
  ASSERT_TRUE(sn.Commit("c1", "c1-a", kRootLabel).ok());
  ASSERT_TRUE(sn.Prepare("c2-a", "c1", kRootLabel).ok());
  ASSERT_TRUE(sn.Commit("c2", "c2-a", kRootLabel).ok());
  ASSERT_TRUE(sn.Prepare("a1", "c2", kRootLabel).ok());
  ASSERT_TRUE(sn.Prepare("a2", "", kRootLabel).ok());
  ASSERT_TRUE(sn.View("v1", "c2", kRootLabel).ok());
  ASSERT_TRUE(sn.View("v2", "", kRootLabel).ok());
}

TEST_P(SnapshotSuiteTest, Update) {
  absl::Time t1 = absl::Now();
  BaseSnapshots(*sn_);
  absl::Time t2 = absl::Now();
  struct Case {
    std::string name;
    SnapshotKind kind;
    std::string parent;
  };
  for (const Case& tc : std::vector<Case>{{"c1", SnapshotKind::kCommitted, ""},
                                          {"c2", SnapshotKind::kCommitted, "c1"},
                                          {"a1", SnapshotKind::kActive, "c2"},
                                          {"a2", SnapshotKind::kActive, ""},
                                          {"v1", SnapshotKind::kView, "c2"},
                                          {"v2", SnapshotKind::kView, ""}}) {
    SCOPED_TRACE(tc.name);
    auto st = sn_->Stat(tc.name);
    ASSERT_TRUE(st.ok());
    EXPECT_GE(st->created, t1);
    EXPECT_LE(st->created, t2);
    EXPECT_EQ(st->created, st->updated);
    EXPECT_EQ(st->kind, tc.kind);
    EXPECT_EQ(st->parent, tc.parent);
    EXPECT_EQ(st->name, tc.name);

    absl::Time created = st->created;
    Labels expected = {{"l1", "v1"}, {"l2", "v2"}, {"l3", "v3"}, {"containerd.io/gc.root", "now"}};
    SnapshotInfo in = *st;
    in.parent = "doesnotexist";
    in.labels = expected;
    absl::Time u1 = absl::Now();
    auto up = sn_->Update(in, {});
    absl::Time u2 = absl::Now();
    ASSERT_TRUE(up.ok()) << up.status();
    EXPECT_EQ(up->created, created);
    EXPECT_GE(up->updated, u1);
    EXPECT_LE(up->updated, u2);
    EXPECT_EQ(up->kind, tc.kind);
    EXPECT_EQ(up->parent, tc.parent);
    EXPECT_EQ(up->labels, expected);

    in = *up;
    in.labels = {{"l1", "updated"}, {"l4", "v4"}};
    up = sn_->Update(in, {"labels.l1", "labels.l2"});
    ASSERT_TRUE(up.ok());
    EXPECT_EQ(up->labels,
              (Labels{{"l1", "updated"}, {"l3", "v3"}, {"containerd.io/gc.root", "now"}}));

    in = *up;
    in.labels = {{"l4", "v4"}, {"containerd.io/gc.root", "now"}};
    up = sn_->Update(in, {"labels"});
    ASSERT_TRUE(up.ok());
    EXPECT_EQ(up->labels, in.labels);
    EXPECT_EQ(sn_->Stat(tc.name)->labels, in.labels);

    in.parent = "doesnotexist";
    EXPECT_TRUE(absl::IsInvalidArgument(sn_->Update(in, {"parent"}).status()));
  }
  SnapshotInfo missing;
  missing.name = "missing";
  EXPECT_TRUE(absl::IsNotFound(sn_->Update(missing, {}).status()));
}

TEST_P(SnapshotSuiteTest, Remove) {
  ASSERT_TRUE(sn_->Prepare("committed-a", "", kRootLabel).ok());
  ASSERT_TRUE(sn_->Commit("committed-1", "committed-a", kRootLabel).ok());
  ASSERT_TRUE(sn_->Prepare("reuse-1", "committed-1", kRootLabel).ok());
  ASSERT_TRUE(sn_->Remove("reuse-1").ok());
  ASSERT_TRUE(sn_->View("reuse-1", "committed-1", kRootLabel).ok());
  ASSERT_TRUE(sn_->Remove("reuse-1").ok());
  ASSERT_TRUE(sn_->Prepare("reuse-1", "", kRootLabel).ok());
  ASSERT_TRUE(sn_->Remove("committed-1").ok());
  ASSERT_TRUE(sn_->Commit("committed-1", "reuse-1", kRootLabel).ok());
  EXPECT_TRUE(absl::IsNotFound(sn_->Remove("never-there")));
}

TEST_P(SnapshotSuiteTest, ViewReadonly) {
  ASSERT_TRUE(sn_->Prepare("preparing", "", kRootLabel).ok());
  ASSERT_TRUE(sn_->Commit("committed", "preparing", kRootLabel).ok());
  auto m = sn_->View("view", "committed", kRootLabel);
  ASSERT_TRUE(m.ok());
  std::string dir = MountAt("view-mount", *m);
  int fd = ::open((dir + "/testfile").c_str(), O_WRONLY | O_CREAT, 0644);
  EXPECT_LT(fd, 0) << "write into a view must fail";
  EXPECT_EQ(errno, EROFS);
  if (fd >= 0) ::close(fd);
  mounts_.clear();
  EXPECT_TRUE(sn_->Remove("view").ok());
  EXPECT_TRUE(sn_->Remove("committed").ok());
}

TEST_P(SnapshotSuiteTest, StatInWalk) {
  BaseSnapshots(*sn_);
  auto walked = sn_->Walk({});
  ASSERT_TRUE(walked.ok());
  EXPECT_EQ(walked->size(), 6u);
  for (const auto& info : *walked) {
    auto st = sn_->Stat(info.name);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(*st, info);
  }
}

std::vector<std::string> Names(const absl::StatusOr<std::vector<SnapshotInfo>>& infos) {
  std::vector<std::string> out;
  if (!infos.ok()) return {"<error: " + infos.status().ToString() + ">"};
  for (const auto& i : *infos) out.push_back(i.name);
  std::sort(out.begin(), out.end());
  return out;
}

TEST_P(SnapshotSuiteTest, WalkFilters) {
  ASSERT_TRUE(sn_->Prepare("c1-a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("c1", "c1-a", {{"containerd.io/snapshot.ref", "sha256:c1"}, {"t", "x"}}).ok());
  ASSERT_TRUE(sn_->Prepare("a1", "c1", {{"t", "x"}}).ok());
  ASSERT_TRUE(sn_->View("v1", "c1", {{"t", "y"}}).ok());
  using V = std::vector<std::string>;
  EXPECT_EQ(Names(sn_->Walk({})), (V{"a1", "c1", "v1"}));
  EXPECT_EQ(Names(sn_->Walk({"labels.\"containerd.io/snapshot.ref\"==sha256:c1"})), V{"c1"});
  EXPECT_EQ(Names(sn_->Walk({"labels.\"containerd.io/snapshot.ref\"==\"sha256:c1\",parent==\"\""})),
            V{"c1"});
  EXPECT_EQ(Names(sn_->Walk({"parent==c1"})), (V{"a1", "v1"}));
  EXPECT_EQ(Names(sn_->Walk({"parent==c1,labels.t==x"})), V{"a1"});
  EXPECT_EQ(Names(sn_->Walk({"name==v1", "kind==committed"})), (V{"c1", "v1"}));
  EXPECT_EQ(Names(sn_->Walk({"kind==active"})), V{"a1"});
  EXPECT_EQ(Names(sn_->Walk({"labels.t!=x"})), V{"v1"});
  EXPECT_EQ(Names(sn_->Walk({"labels.\"containerd.io/snapshot.ref\""})), V{"c1"});
  EXPECT_EQ(Names(sn_->Walk({"name~=/^[av]1$/"})), (V{"a1", "v1"}));
  EXPECT_TRUE(absl::IsInvalidArgument(sn_->Walk({"labels.t=="}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(sn_->Walk({"name~=\"(\""}).status()));
}

TEST_P(SnapshotSuiteTest, UsageActiveAndCommitted) {
  std::string dir = PrepareMount("active", "");
  auto before = sn_->Usage("active");
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(CreateFile("big", std::string(1 << 20, 'x'), 0644)(dir).ok());
  ASSERT_TRUE(CreateFile("small", "s", 0644)(dir).ok());
  auto after = sn_->Usage("active");
  ASSERT_TRUE(after.ok());
  EXPECT_GE(after->size - before->size, 1 << 20);
  EXPECT_EQ(after->inodes - before->inodes, 2);
  mounts_.clear();
  ASSERT_TRUE(sn_->Commit("committed", "active", {}).ok());
  auto committed = sn_->Usage("committed");
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(committed->size, after->size);
  EXPECT_EQ(committed->inodes, after->inodes);
  EXPECT_TRUE(absl::IsNotFound(sn_->Usage("missing").status()));
}

TEST_P(SnapshotSuiteTest, MountsMatchPrepareAndRefuseCommitted) {
  ASSERT_TRUE(sn_->Prepare("base-a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("base", "base-a", {}).ok());
  auto prepared = sn_->Prepare("top", "base", {});
  ASSERT_TRUE(prepared.ok());
  auto again = sn_->Mounts("top");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*prepared, *again);
  ASSERT_EQ(again->size(), 1u);
  EXPECT_EQ((*again)[0].type, "overlay");
  EXPECT_TRUE(absl::IsFailedPrecondition(sn_->Mounts("base").status()));
  EXPECT_TRUE(absl::IsNotFound(sn_->Mounts("missing").status()));
}

TEST_P(SnapshotSuiteTest, ErrorCodes) {
  EXPECT_TRUE(absl::IsNotFound(sn_->Prepare("k", "no-parent", {}).status()));
  ASSERT_TRUE(sn_->Prepare("active", "", {}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(sn_->Prepare("k", "active", {}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      sn_->Prepare("k", "", {{"big", std::string(kMaxLabelBytes, 'v')}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(sn_->Prepare("", "", {}).status()));
  ASSERT_TRUE(sn_->View("view", "", {}).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(sn_->Commit("c", "view", {})));
  EXPECT_TRUE(absl::IsNotFound(sn_->Commit("c", "missing", {})));
  ASSERT_TRUE(sn_->Commit("c", "active", {}).ok());
  ASSERT_TRUE(sn_->Prepare("active2", "", {}).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(sn_->Commit("c", "active2", {})));
  EXPECT_TRUE(sn_->Stat("active2").ok()) << "a failed commit keeps the active snapshot";
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("missing").status()));
}

TEST_P(SnapshotSuiteTest, CleanupRemovesOrphanDirsOnly) {
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  ASSERT_TRUE(sn_->Commit("c", "a", {}).ok());
  std::string orphan = root_ + "/snapshots/987654";
  ASSERT_TRUE(MakeDirs(orphan + "/fs").ok());
  ASSERT_TRUE(sn_->Cleanup().ok());
  struct stat st;
  EXPECT_NE(::stat(orphan.c_str(), &st), 0);
  auto mounts = sn_->Prepare("b", "c", {});
  ASSERT_TRUE(mounts.ok());
  std::string dir = MountAt("b", *mounts);
  EXPECT_TRUE(CreateFile("x", "x", 0644)(dir).ok());
}

TEST_P(SnapshotSuiteTest, OverlayWhiteoutsHideLowerFiles) {
  std::string l1 = PrepareMount("l1-a", "");
  ASSERT_TRUE(Chain({CreateFile("keep", "k", 0644), CreateFile("gone", "g", 0644)})(l1).ok());
  ASSERT_TRUE(sn_->Commit("l1", "l1-a", {}).ok());
  std::string l2 = PrepareMount("l2-a", "l1");
  ASSERT_TRUE(RemovePath("gone")(l2).ok());
  ASSERT_TRUE(sn_->Commit("l2", "l2-a", {}).ok());
  mounts_.clear();
  auto top = sn_->Prepare("top", "l2", {});
  ASSERT_TRUE(top.ok());
  std::string dir = MountAt("top", *top);
  auto tree = DumpTree(dir);
  EXPECT_TRUE(tree.contains("keep"));
  EXPECT_FALSE(tree.contains("gone"));
  // lowerdir lists the nearest parent first, as containerd does.
  ASSERT_EQ(top->size(), 1u);
  std::string lower;
  for (const auto& o : (*top)[0].options) {
    if (o.starts_with("lowerdir=")) lower = o;
  }
  auto l2_pos = lower.find("/snapshots/");
  EXPECT_NE(l2_pos, std::string::npos);
  EXPECT_EQ(std::count(lower.begin(), lower.end(), ':'), 1);
}

INSTANTIATE_TEST_SUITE_P(Modes, SnapshotSuiteTest, ::testing::Values("direct", "grpc"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace slipstream::plugin::testing
