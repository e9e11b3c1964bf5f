// SPDX-License-Identifier: Apache-2.0
#include "plugin/snapshot_overlay.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "plugin/snapshot_usage.h"

namespace slipstream::plugin {
namespace {

absl::Status Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    return LastErrnoStatus(absl::StrCat("rename ", from, " to ", to));
  }
  return absl::OkStatus();
}

absl::Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) return LastErrnoStatus(absl::StrCat("mkdir ", path));
  // mkdir(2) applies the umask; containerd's layout needs the exact modes.
  if (::chmod(path.c_str(), mode) != 0) return LastErrnoStatus(absl::StrCat("chmod ", path));
  return absl::OkStatus();
}

bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

OverlaySnapshotter::OverlaySnapshotter(std::string root, Options options,
                                       std::unique_ptr<MetadataStore> store)
    : root_(std::move(root)),
      snapshots_dir_(root_ + "/snapshots"),
      options_(options),
      store_(std::move(store)) {}

absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> OverlaySnapshotter::Open(
    const std::string& root, Options options) {
  if (root.empty()) return absl::InvalidArgumentError("snapshotter root is empty");
  SS_RETURN_IF_ERROR(MakeDirs(root, 0700));
  SS_RETURN_IF_ERROR(MakeDirs(root + "/snapshots", 0700));
  SS_ASSIGN_OR_RETURN(auto store, MetadataStore::Open(root + "/metadata.db"));
  auto snapshotter = std::unique_ptr<OverlaySnapshotter>(
      new OverlaySnapshotter(root, options, std::move(store)));
  // Nothing can be staging yet, so every temp dir is a leftover of a previous process.
  SS_ASSIGN_OR_RETURN(int removed, snapshotter->RemoveOrphans(/*all_temps=*/true));
  if (removed > 0) log::Info("removed leftover snapshot dirs", {{"root", root}, {"count", removed}});
  return snapshotter;
}

std::string OverlaySnapshotter::SnapshotDir(int64_t id) const {
  return absl::StrCat(snapshots_dir_, "/", id);
}

OverlayPaths OverlaySnapshotter::PathsOf(int64_t id) const {
  std::string dir = SnapshotDir(id);
  return OverlayPaths{dir + "/fs", dir + "/work"};
}

absl::StatusOr<StagingDir> OverlaySnapshotter::CreateStaging() {
  std::string tmpl = snapshots_dir_ + "/new-XXXXXX";
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return LastErrnoStatus(absl::StrCat("mkdtemp in ", snapshots_dir_));
  }
  StagingDir staging{tmpl, tmpl + "/fs"};
  auto status = MakeDir(staging.fs, 0755);
  if (status.ok()) status = MakeDir(tmpl + "/work", 0711);
  if (!status.ok()) {
    RemoveAll(tmpl).IgnoreError();
    return status;
  }
  return staging;
}

absl::Status OverlaySnapshotter::DiscardStaging(const StagingDir& staging) {
  return RemoveAll(staging.path);
}

absl::Status OverlaySnapshotter::CheckParent(const std::string& parent) {
  if (parent.empty()) return absl::OkStatus();
  auto record = store_->Get(parent);
  if (absl::IsNotFound(record.status())) {
    return absl::NotFoundError(absl::StrCat("parent snapshot ", parent, " does not exist"));
  }
  SS_RETURN_IF_ERROR(record.status());
  if (record->info.kind != SnapshotKind::kCommitted) {
    return absl::InvalidArgumentError(
        absl::StrCat("parent ", parent, " is not a committed snapshot"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MountSpec>> OverlaySnapshotter::MountsFor(const SnapshotRecord& record) {
  SS_ASSIGN_OR_RETURN(std::vector<int64_t> ancestor_ids, store_->AncestorIds(record.info.name));
  std::vector<OverlayPaths> ancestors;
  ancestors.reserve(ancestor_ids.size());
  for (int64_t id : ancestor_ids) ancestors.push_back(PathsOf(id));
  return OverlayMounts(record.info.kind, PathsOf(record.id), ancestors, options_.index_off);
}

absl::StatusOr<std::vector<MountSpec>> OverlaySnapshotter::Prepare(const std::string& key,
                                                                   const std::string& parent,
                                                                   const Labels& labels) {
  return CreateSnapshot(SnapshotKind::kActive, key, parent, labels);
}

absl::StatusOr<std::vector<MountSpec>> OverlaySnapshotter::View(const std::string& key,
                                                                const std::string& parent,
                                                                const Labels& labels) {
  return CreateSnapshot(SnapshotKind::kView, key, parent, labels);
}

absl::StatusOr<std::vector<MountSpec>> OverlaySnapshotter::CreateSnapshot(
    SnapshotKind kind, const std::string& key, const std::string& parent, const Labels& labels) {
  if (key.empty()) return absl::InvalidArgumentError("snapshot key is empty");
  SS_RETURN_IF_ERROR(ValidateLabels(labels));
  // The directory is made before taking the lock: mkdtemp and two mkdirs need no metadata.
  SS_ASSIGN_OR_RETURN(StagingDir temp, CreateStaging());

  SnapshotInfo info;
  info.name = key;
  info.parent = parent;
  info.kind = kind;
  info.created = info.updated = absl::Now();
  info.labels = labels;

  int64_t id = 0;
  bool renamed = false;
  absl::MutexLock lock(&mu_);
  auto result = [&]() -> absl::StatusOr<std::vector<MountSpec>> {
    SS_ASSIGN_OR_RETURN(auto tx, store_->Begin());
    SS_RETURN_IF_ERROR(CheckParent(parent));
    if (!parent.empty()) {
      // Like containerd: the upper dir takes the owner of the parent's root so a container
      // running as another user can write to its root directory.
      SS_ASSIGN_OR_RETURN(SnapshotRecord parent_record, store_->Get(parent));
      struct stat st;
      std::string parent_fs = PathsOf(parent_record.id).fs;
      if (::stat(parent_fs.c_str(), &st) != 0) {
        return LastErrnoStatus(absl::StrCat("stat parent ", parent_fs));
      }
      if (::chown(temp.fs.c_str(), st.st_uid, st.st_gid) != 0) {
        return LastErrnoStatus(absl::StrCat("chown ", temp.fs));
      }
    }
    SS_ASSIGN_OR_RETURN(id, store_->Insert(info));
    SS_RETURN_IF_ERROR(Rename(temp.path, SnapshotDir(id)));
    CrashPoint("snapshot.prepare.after_rename");
    renamed = true;
    SS_ASSIGN_OR_RETURN(auto mounts, MountsFor(SnapshotRecord{id, info, {}}));
    // The row commits last: once it is durable the directory is already complete.
    SS_RETURN_IF_ERROR(tx->Commit());
    return mounts;
  }();
  if (!result.ok()) {
    // The transaction rolled back; the directory (empty) is not referenced by anything.
    RemoveAll(renamed ? SnapshotDir(id) : temp.path).IgnoreError();
  }
  return result;
}

absl::StatusOr<std::vector<MountSpec>> OverlaySnapshotter::Mounts(const std::string& key) {
  absl::MutexLock lock(&mu_);
  SS_ASSIGN_OR_RETURN(SnapshotRecord record, store_->Get(key));
  if (record.info.kind != SnapshotKind::kActive && record.info.kind != SnapshotKind::kView) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", key, " is not active or view: no mounts"));
  }
  return MountsFor(record);
}

absl::Status OverlaySnapshotter::Commit(const std::string& name, const std::string& key,
                                        const Labels& labels) {
  if (name.empty()) return absl::InvalidArgumentError("commit name is empty");
  SS_RETURN_IF_ERROR(ValidateLabels(labels));
  int64_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    SS_ASSIGN_OR_RETURN(SnapshotRecord record, store_->Get(key));
    if (record.info.kind != SnapshotKind::kActive) {
      return absl::FailedPreconditionError(absl::StrCat("snapshot ", key, " is not active"));
    }
    id = record.id;
  }
  // du walks the whole layer: done without the lock. A concurrent Remove of the same key is
  // caught below by re-reading the row.
  SS_ASSIGN_OR_RETURN(SnapshotUsage usage, DiskUsage(PathsOf(id).fs));

  absl::MutexLock lock(&mu_);
  SS_ASSIGN_OR_RETURN(auto tx, store_->Begin());
  SS_ASSIGN_OR_RETURN(SnapshotRecord record, store_->Get(key));
  if (record.id != id || record.info.kind != SnapshotKind::kActive) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", key, " changed while being committed"));
  }
  SS_RETURN_IF_ERROR(store_->CommitActive(key, name, labels, usage, absl::Now()));
  return tx->Commit();
}

void OverlaySnapshotter::SetRemoveObserver(RemoveObserver observer) {
  absl::MutexLock lock(&observer_mu_);
  remove_observer_ =
      observer ? std::make_shared<RemoveObserver>(std::move(observer)) : nullptr;
}

absl::Status OverlaySnapshotter::Remove(const std::string& key) {
  std::string doomed;
  Labels labels;
  {
    absl::MutexLock lock(&mu_);
    SS_ASSIGN_OR_RETURN(auto tx, store_->Begin());
    SS_ASSIGN_OR_RETURN(SnapshotRecord record, store_->Get(key));
    SS_ASSIGN_OR_RETURN(bool has_children, store_->HasChildren(key));
    if (has_children) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot remove snapshot ", key, ": it has children"));
    }
    SS_RETURN_IF_ERROR(store_->Delete(key));
    // The row goes first; a crash from here on leaves only an orphan dir, which Open removes.
    SS_RETURN_IF_ERROR(tx->Commit());
    CrashPoint("snapshot.remove.after_commit");
    labels = record.info.labels;
    // Renaming out of the id namespace makes the removal look atomic to Cleanup and to
    // readers of the directory listing; the slow recursive delete happens without the lock.
    doomed = absl::StrCat(snapshots_dir_, "/rm-", record.id);
    auto status = Rename(SnapshotDir(record.id), doomed);
    if (!status.ok()) {
      log::Warn("snapshot dir left for cleanup", {{"key", key}, {"error", status.ToString()}});
      doomed.clear();
    }
  }
  if (!doomed.empty()) {
    CrashPoint("snapshot.remove.renamed");
    auto status = RemoveAll(doomed);
    if (!status.ok()) {
      // The snapshot is gone from containerd's point of view; the next start retries.
      log::Warn("removing snapshot dir failed", {{"dir", doomed}, {"error", status.ToString()}});
    }
  }
  std::shared_ptr<RemoveObserver> observer;
  {
    absl::MutexLock lock(&observer_mu_);
    observer = remove_observer_;
  }
  if (observer != nullptr) (*observer)(key, labels);
  return absl::OkStatus();
}

absl::StatusOr<SnapshotInfo> OverlaySnapshotter::Stat(const std::string& key) {
  absl::MutexLock lock(&mu_);
  SS_ASSIGN_OR_RETURN(SnapshotRecord record, store_->Get(key));
  return record.info;
}

absl::StatusOr<std::string> OverlaySnapshotter::Dir(const std::string& key) {
  absl::MutexLock lock(&mu_);
  SS_ASSIGN_OR_RETURN(SnapshotRecord record, store_->Get(key));
  return SnapshotDir(record.id);
}

absl::StatusOr<SnapshotInfo> OverlaySnapshotter::Update(const SnapshotInfo& info,
                                                        const std::vector<std::string>& fieldpaths) {
  absl::MutexLock lock(&mu_);
  SS_ASSIGN_OR_RETURN(auto tx, store_->Begin());
  SS_ASSIGN_OR_RETURN(SnapshotRecord record, store_->Get(info.name));
  Labels labels = record.info.labels;
  if (fieldpaths.empty()) {
    // Labels are the only mutable field; name, parent, kind and times are ignored.
    labels = info.labels;
  }
  for (const std::string& path : fieldpaths) {
    if (path == "labels") {
      labels = info.labels;
    } else if (path.starts_with("labels.")) {
      std::string key = path.substr(7);
      auto it = info.labels.find(key);
      if (it == info.labels.end()) {
        labels.erase(key);
      } else {
        labels[key] = it->second;
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot update field \"", path, "\" of snapshot ", info.name));
    }
  }
  SS_RETURN_IF_ERROR(ValidateLabels(labels));
  absl::Time now = absl::Now();
  SS_RETURN_IF_ERROR(store_->SetLabels(info.name, labels, now));
  SS_RETURN_IF_ERROR(tx->Commit());
  record.info.labels = std::move(labels);
  record.info.updated = now;
  return record.info;
}

absl::StatusOr<std::vector<SnapshotInfo>> OverlaySnapshotter::List(const SnapshotFilter& filter) {
  std::vector<SnapshotRecord> records;
  {
    absl::MutexLock lock(&mu_);
    SS_ASSIGN_OR_RETURN(records, store_->List());
  }
  std::vector<SnapshotInfo> out;
  for (auto& record : records) {
    if (filter.Match(record.info)) out.push_back(std::move(record.info));
  }
  return out;
}

absl::StatusOr<SnapshotUsage> OverlaySnapshotter::Usage(const std::string& key) {
  SnapshotRecord record;
  {
    absl::MutexLock lock(&mu_);
    SS_ASSIGN_OR_RETURN(record, store_->Get(key));
  }
  if (record.info.kind != SnapshotKind::kActive) return record.usage;
  return DiskUsage(PathsOf(record.id).fs);
}

absl::StatusOr<int> OverlaySnapshotter::Cleanup() { return RemoveOrphans(/*all_temps=*/false); }

absl::StatusOr<int> OverlaySnapshotter::RemoveOrphans(bool all_temps) {
  std::vector<std::string> doomed;
  {
    absl::MutexLock lock(&mu_);
    SS_ASSIGN_OR_RETURN(std::set<int64_t> ids, store_->Ids());
    DIR* dir = ::opendir(snapshots_dir_.c_str());
    if (dir == nullptr) return LastErrnoStatus(absl::StrCat("opendir ", snapshots_dir_));
    std::vector<std::string> names;
    while (struct dirent* entry = ::readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    for (const std::string& name : names) {
      std::string path = absl::StrCat(snapshots_dir_, "/", name);
      int64_t id = 0;
      if (IsNumber(name) && absl::SimpleAtoi(name, &id)) {
        if (ids.contains(id)) continue;
        // Rename under the lock so no Prepare can be mid-way through using this id.
        std::string rm = absl::StrCat(snapshots_dir_, "/rm-", name);
        SS_RETURN_IF_ERROR(Rename(path, rm));
        doomed.push_back(std::move(rm));
      } else if (all_temps && (name.starts_with("new-") || name.starts_with("rm-"))) {
        // At runtime new-* may be a Prepare or a staged pull in progress and rm-* a Remove
        // deleting right now; only at startup are they certainly abandoned.
        doomed.push_back(std::move(path));
      }
    }
  }
  if (!doomed.empty()) CrashPoint(all_temps ? "snapshot.open.orphans_found" : "snapshot.cleanup.renamed");
  for (const std::string& path : doomed) SS_RETURN_IF_ERROR(RemoveAll(path));
  return static_cast<int>(doomed.size());
}

absl::Status OverlaySnapshotter::CommitStaged(const StagingDir& staging, const std::string& name,
                                              const std::string& parent, const Labels& labels) {
  if (name.empty()) return absl::InvalidArgumentError("snapshot name is empty");
  SS_RETURN_IF_ERROR(ValidateLabels(labels));
  SS_ASSIGN_OR_RETURN(SnapshotUsage usage, DiskUsage(staging.fs));
  SnapshotInfo info;
  info.name = name;
  info.parent = parent;
  info.kind = SnapshotKind::kCommitted;
  info.created = info.updated = absl::Now();
  info.labels = labels;

  absl::MutexLock lock(&mu_);
  SS_ASSIGN_OR_RETURN(auto tx, store_->Begin());
  SS_RETURN_IF_ERROR(CheckParent(parent));
  SS_ASSIGN_OR_RETURN(int64_t id, store_->Insert(info, usage));
  CrashPoint("snapshot.commit_staged.before_rename");
  SS_RETURN_IF_ERROR(Rename(staging.path, SnapshotDir(id)));
  CrashPoint("snapshot.commit_staged.after_rename");
  auto status = tx->Commit();
  CrashPoint("snapshot.commit_staged.after_commit");
  if (!status.ok()) {
    // Hand the content back to the caller, who still owns the staging dir.
    Rename(SnapshotDir(id), staging.path).IgnoreError();
  }
  return status;
}

}  // namespace slipstream::plugin
