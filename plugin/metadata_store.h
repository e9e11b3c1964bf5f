// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "plugin/metadata_sqlite.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// One row of the snapshot table: the containerd-visible info plus the id naming its
// directory (`<root>/snapshots/<id>`) and, for committed snapshots, the usage measured at
// commit time.
struct SnapshotRecord {
  int64_t id = 0;
  SnapshotInfo info;
  SnapshotUsage usage;
};

// The snapshot metadata in one SQLite database in WAL mode. Keys are unique across kinds; a
// snapshot's parent is referenced by name. Ids come from AUTOINCREMENT, so an id whose row was
// ever committed is never handed out again (a directory left by a crash cannot be adopted by a
// new snapshot).
//
// Owned by OverlaySnapshotter. Not thread-safe: the owner serializes every call and wraps
// multi-step changes in a transaction (Begin()).
class MetadataStore {
 public:
  // Opens or creates the database at `path` and its schema.
  static absl::StatusOr<std::unique_ptr<MetadataStore>> Open(const std::string& path);

  // Starts a write transaction; dropping the result without Commit() rolls back.
  absl::StatusOr<std::unique_ptr<SqliteTransaction>> Begin();

  // The record for `key`; NotFound when absent.
  absl::StatusOr<SnapshotRecord> Get(const std::string& key);
  // Inserts `info` (with `usage`, meaningful for committed rows) and returns its new id;
  // AlreadyExists when the key is taken.
  absl::StatusOr<int64_t> Insert(const SnapshotInfo& info, SnapshotUsage usage = {});
  // Deletes `key`; NotFound when absent.
  absl::Status Delete(const std::string& key);
  // Overwrites labels and updated time of `key`; NotFound when absent.
  absl::Status SetLabels(const std::string& key, const Labels& labels, absl::Time updated);
  // Turns active snapshot `key` into committed `name` with `labels`, `usage` and both times
  // set to `now`. AlreadyExists when `name` is taken; NotFound when `key` is absent.
  absl::Status CommitActive(const std::string& key, const std::string& name, const Labels& labels,
                            SnapshotUsage usage, absl::Time now);
  // True when some snapshot names `key` as its parent.
  absl::StatusOr<bool> HasChildren(const std::string& key);
  // Ids of `key`'s ancestors, nearest first (parent, grandparent, ...). NotFound when one is
  // missing (a broken chain).
  absl::StatusOr<std::vector<int64_t>> AncestorIds(const std::string& key);
  // Every record, in id order.
  absl::StatusOr<std::vector<SnapshotRecord>> List();
  // Every id in use.
  absl::StatusOr<std::set<int64_t>> Ids();

 private:
  explicit MetadataStore(std::unique_ptr<SqliteDb> db) : db_(std::move(db)) {}
  std::unique_ptr<SqliteDb> db_;
};

}  // namespace slipstream::plugin
