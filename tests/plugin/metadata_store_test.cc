// SPDX-License-Identifier: Apache-2.0
#include "plugin/metadata_store.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "plugin/snapshot_overlay.h"

namespace slipstream::plugin {
namespace {

SnapshotInfo Info(const std::string& name, const std::string& parent, SnapshotKind kind) {
  SnapshotInfo info;
  info.name = name;
  info.parent = parent;
  info.kind = kind;
  info.created = info.updated = absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(5);
  info.labels = {{"a", "1"}, {"b", "two words"}};
  return info;
}

TEST(MetadataStoreTest, InsertGetRoundTripsEveryField) {
  auto tmp = TempDir::Create();
  ASSERT_TRUE(tmp.ok());
  auto store = MetadataStore::Open(tmp->Join("m.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  SnapshotInfo info = Info("k", "", SnapshotKind::kActive);
  auto id = (*store)->Insert(info);
  ASSERT_TRUE(id.ok());
  auto got = (*store)->Get("k");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->id, *id);
  EXPECT_EQ(got->info, info);
  EXPECT_TRUE(absl::IsAlreadyExists((*store)->Insert(info).status()));
  EXPECT_TRUE(absl::IsNotFound((*store)->Get("nope").status()));
}

TEST(MetadataStoreTest, CommitRenamesAndRecordsUsage) {
  auto tmp = TempDir::Create();
  auto store = MetadataStore::Open(tmp->Join("m.db"));
  ASSERT_TRUE(store.ok());
  auto& s = **store;
  ASSERT_TRUE(s.Insert(Info("active", "", SnapshotKind::kActive)).ok());
  ASSERT_TRUE(s.Insert(Info("taken", "", SnapshotKind::kCommitted)).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(s.CommitActive("active", "taken", {}, {1, 1}, absl::Now())));
  EXPECT_TRUE(absl::IsNotFound(s.CommitActive("nope", "x", {}, {1, 1}, absl::Now())));
  ASSERT_TRUE(s.CommitActive("active", "done", {{"x", "y"}}, {4096, 3}, absl::Now()).ok());
  auto got = s.Get("done");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->info.kind, SnapshotKind::kCommitted);
  EXPECT_EQ(got->info.labels, (Labels{{"x", "y"}}));
  EXPECT_EQ(got->usage.size, 4096);
  EXPECT_EQ(got->usage.inodes, 3);
  EXPECT_TRUE(absl::IsNotFound(s.Get("active").status()));
}

TEST(MetadataStoreTest, ChildrenAncestorsAndDelete) {
  auto tmp = TempDir::Create();
  auto store = MetadataStore::Open(tmp->Join("m.db"));
  ASSERT_TRUE(store.ok());
  auto& s = **store;
  auto c1 = s.Insert(Info("c1", "", SnapshotKind::kCommitted));
  auto c2 = s.Insert(Info("c2", "c1", SnapshotKind::kCommitted));
  auto a = s.Insert(Info("a", "c2", SnapshotKind::kActive));
  ASSERT_TRUE(c1.ok() && c2.ok() && a.ok());
  EXPECT_EQ(*s.AncestorIds("a"), (std::vector<int64_t>{*c2, *c1}));
  EXPECT_TRUE(*s.HasChildren("c1"));
  EXPECT_FALSE(*s.HasChildren("a"));
  EXPECT_EQ(*s.Ids(), (std::set<int64_t>{*c1, *c2, *a}));
  ASSERT_TRUE(s.Delete("a").ok());
  EXPECT_TRUE(absl::IsNotFound(s.Delete("a")));
  EXPECT_EQ(s.List()->size(), 2u);
}

TEST(MetadataStoreTest, RolledBackTransactionLeavesNoRow) {
  auto tmp = TempDir::Create();
  auto store = MetadataStore::Open(tmp->Join("m.db"));
  ASSERT_TRUE(store.ok());
  {
    auto tx = (*store)->Begin();
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE((*store)->Insert(Info("k", "", SnapshotKind::kActive)).ok());
  }
  EXPECT_TRUE(absl::IsNotFound((*store)->Get("k").status()));
}

TEST(MetadataStoreTest, SurvivesReopen) {
  auto tmp = TempDir::Create();
  {
    auto store = MetadataStore::Open(tmp->Join("m.db"));
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Insert(Info("k", "", SnapshotKind::kCommitted)).ok());
  }
  auto store = MetadataStore::Open(tmp->Join("m.db"));
  ASSERT_TRUE(store.ok());
  EXPECT_TRUE((*store)->Get("k").ok());
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

TEST(MetadataCrashTest, OpenRemovesLeftoversAndKeepsSnapshots) {
  auto tmp = TempDir::Create();
  std::string root = tmp->Join("root");
  {
    auto sn = OverlaySnapshotter::Open(root);
    ASSERT_TRUE(sn.ok());
    ASSERT_TRUE((*sn)->Prepare("a", "", {}).ok());
    ASSERT_TRUE((*sn)->Commit("c", "a", {}).ok());
  }
  // What a SIGKILL can leave: a half-built dir, a half-deleted one, an id dir whose row never
  // committed.
  ASSERT_TRUE(MakeDirs(root + "/snapshots/new-abc123/fs").ok());
  ASSERT_TRUE(MakeDirs(root + "/snapshots/rm-77/fs").ok());
  ASSERT_TRUE(MakeDirs(root + "/snapshots/99/fs").ok());
  auto sn = OverlaySnapshotter::Open(root);
  ASSERT_TRUE(sn.ok());
  EXPECT_FALSE(Exists(root + "/snapshots/new-abc123"));
  EXPECT_FALSE(Exists(root + "/snapshots/rm-77"));
  EXPECT_FALSE(Exists(root + "/snapshots/99"));
  EXPECT_TRUE((*sn)->Stat("c").ok());
  EXPECT_TRUE((*sn)->Prepare("b", "c", {}).ok());
}

// A child process churns Prepare/Commit/Remove and is SIGKILLed at a random moment; after
// reopening, every row must have its complete directory and no directory may lack a row.
TEST(MetadataCrashTest, SigkillAtAnyMomentLeavesConsistentStore) {
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE(round);
    auto tmp = TempDir::Create();
    std::string root = tmp->Join("root");
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(ready[0]);
      auto sn = OverlaySnapshotter::Open(root);
      if (!sn.ok()) ::_exit(1);
      for (int i = 0;; ++i) {
        std::string key = absl::StrCat("k", i);
        std::string name = absl::StrCat("c", i);
        std::string parent = i > 0 ? absl::StrCat("c", i - 1) : "";
        (void)(*sn)->Prepare(key, parent, {{"i", key}});
        (void)(*sn)->Commit(name, key, {});
        (void)(*sn)->View(absl::StrCat("v", i), name, {});
        (void)(*sn)->Remove(absl::StrCat("v", i));
        if (i == 3) (void)!::write(ready[1], "x", 1);
      }
    }
    ::close(ready[1]);
    char c;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);  // the child has done real work
    ::close(ready[0]);
    ::usleep(1000 * (1 + round * 7));
    ::kill(pid, SIGKILL);
    int wstatus = 0;
    ::waitpid(pid, &wstatus, 0);

    auto sn = OverlaySnapshotter::Open(root);
    ASSERT_TRUE(sn.ok()) << sn.status();
    auto store = MetadataStore::Open(root + "/metadata.db");
    ASSERT_TRUE(store.ok());
    auto records = (*store)->List();
    ASSERT_TRUE(records.ok());
    EXPECT_GE(records->size(), 4u);
    std::set<std::string> dirs;
    for (const auto& r : *records) {
      EXPECT_TRUE(Exists(absl::StrCat(root, "/snapshots/", r.id, "/fs"))) << r.info.name;
      dirs.insert(absl::StrCat(r.id));
      if (r.info.kind == SnapshotKind::kCommitted && !r.info.parent.empty()) {
        EXPECT_TRUE((*sn)->Stat(r.info.parent).ok());
      }
    }
    DIR* d = ::opendir((root + "/snapshots").c_str());
    ASSERT_NE(d, nullptr);
    while (struct dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") EXPECT_TRUE(dirs.contains(n)) << "leftover dir " << n;
    }
    ::closedir(d);
    // No directory without a row: Open removed them all.
    EXPECT_EQ((*sn)->Cleanup().value_or(-1), 0);
  }
}

}  // namespace
}  // namespace slipstream::plugin
