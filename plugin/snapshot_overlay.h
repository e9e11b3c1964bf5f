// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "plugin/metadata_store.h"
#include "plugin/mounts_overlay.h"
#include "plugin/snapshot_filter.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// A directory under the snapshotter root where a layer is being built before it becomes a
// committed snapshot (CommitStaged). `fs` is where the content goes. Removed by the next
// startup if never committed.
struct StagingDir {
  std::string path;  // <root>/snapshots/new-XXXXXX
  std::string fs;    // <path>/fs
};

// A local overlayfs snapshotter with containerd's snapshot semantics: what the Snapshots gRPC
// service (SnapshotsService) calls, and what the remote-pull engine uses to put finished layers
// in place (CreateStaging + CommitStaged).
//
// On disk, under `root`:
//   metadata.db          SQLite (WAL) rows, one per snapshot (MetadataStore)
//   snapshots/<id>/fs    layer content / upper dir
//   snapshots/<id>/work  overlayfs workdir
//   snapshots/new-*      directories being created (staging), never referenced by a row
//   snapshots/rm-*       directories being deleted, never referenced by a row
// Crash safety: a directory is complete and renamed to snapshots/<id> inside the metadata
// transaction before the row commits, and a row is deleted (committed) before its directory
// goes, so after a SIGKILL at any moment every row has its complete directory; Open() removes
// directories without rows and every new-*/rm-* leftover.
//
// Thread-safe. Metadata operations are serialized by one mutex, held across the SQLite
// transaction and the local mkdir/rename that must be atomic with it (never network I/O);
// the slow parts (du for Usage/Commit, recursive deletes, building staged content) run
// outside it. Keys are opaque strings (containerd sends "<namespace>/<n>/<name>").
class OverlaySnapshotter {
 public:
  struct Options {
    // Add "index=off" to overlay mounts; default: when the kernel supports it.
    bool index_off = KernelSupportsOverlayIndexOff();
  };

  // Opens (creating) the store at `root` and removes leftovers of interrupted operations.
  static absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> Open(const std::string& root,
                                                                 Options options);
  static absl::StatusOr<std::unique_ptr<OverlaySnapshotter>> Open(const std::string& root) {
    return Open(root, Options());
  }

  // Creates active snapshot `key` on top of committed `parent` ("" for none) and returns the
  // mounts of its root. InvalidArgument: empty key, bad labels, parent not committed;
  // NotFound: parent missing; AlreadyExists: key taken.
  absl::StatusOr<std::vector<MountSpec>> Prepare(const std::string& key, const std::string& parent,
                                                 const Labels& labels);
  // Same as Prepare for a read-only view snapshot.
  absl::StatusOr<std::vector<MountSpec>> View(const std::string& key, const std::string& parent,
                                              const Labels& labels);
  // The mounts of active or view snapshot `key`. NotFound; FailedPrecondition when committed.
  absl::StatusOr<std::vector<MountSpec>> Mounts(const std::string& key);
  // Commits active snapshot `key` as `name` with `labels`, recording its disk usage; `key`
  // disappears. NotFound: no key; FailedPrecondition: key not active; AlreadyExists: name taken.
  absl::Status Commit(const std::string& name, const std::string& key, const Labels& labels);
  // Removes snapshot `key` and its directory. NotFound; FailedPrecondition while it has
  // children.
  absl::Status Remove(const std::string& key);
  // Info of `key`. NotFound.
  absl::StatusOr<SnapshotInfo> Stat(const std::string& key);
  // The directory of snapshot `key` (<root>/snapshots/<id>, holding `fs` and `work`). The
  // path is valid until the snapshot is removed. NotFound.
  absl::StatusOr<std::string> Dir(const std::string& key);
  // Updates mutable fields (labels) of `info.name`: with no `fieldpaths` all labels are
  // replaced; "labels" replaces all; "labels.<k>" sets k from info.labels or deletes it.
  // Returns the stored info. NotFound; InvalidArgument for other paths or bad labels.
  absl::StatusOr<SnapshotInfo> Update(const SnapshotInfo& info,
                                      const std::vector<std::string>& fieldpaths);
  // Snapshots matching `filter`, in creation order.
  absl::StatusOr<std::vector<SnapshotInfo>> List(const SnapshotFilter& filter);
  // Disk usage: measured now for an active snapshot, as stored at commit otherwise. NotFound.
  absl::StatusOr<SnapshotUsage> Usage(const std::string& key);
  // Removes directories no row refers to (and leftovers of removals). Returns how many.
  absl::StatusOr<int> Cleanup();

  // Creates an empty staging directory on the same filesystem as the snapshots, for content
  // that becomes a committed snapshot with CommitStaged. The caller fills `fs`.
  absl::StatusOr<StagingDir> CreateStaging();
  // Moves `staging` into place as committed snapshot `name` on top of committed `parent`,
  // recording its disk usage. On error the staging dir is left to the caller (DiscardStaging).
  // AlreadyExists: name taken (the staging dir is kept); NotFound/InvalidArgument as Prepare.
  absl::Status CommitStaged(const StagingDir& staging, const std::string& name,
                            const std::string& parent, const Labels& labels);
  // Deletes a staging dir that will not be committed.
  absl::Status DiscardStaging(const StagingDir& staging);

  // Called after each successful Remove with the removed snapshot's key and labels (e.g. so
  // the lazy provider can drop the FUSE layer behind it). Runs on the removing thread,
  // outside the snapshotter's lock; it must not call Remove. Replaces the previous observer;
  // nullptr clears it.
  using RemoveObserver = std::function<void(const std::string& key, const Labels& labels)>;
  void SetRemoveObserver(RemoveObserver observer);

  const std::string& root() const { return root_; }

 private:
  OverlaySnapshotter(std::string root, Options options, std::unique_ptr<MetadataStore> store);

  absl::StatusOr<std::vector<MountSpec>> CreateSnapshot(SnapshotKind kind, const std::string& key,
                                                        const std::string& parent,
                                                        const Labels& labels);
  // Checks `parent` is empty or committed. Requires mu_ held and a transaction open.
  absl::Status CheckParent(const std::string& parent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<MountSpec>> MountsFor(const SnapshotRecord& record)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes directories in snapshots/ that no row names; with `all_temps` also new-* (only
  // safe when nothing can be staging: at Open).
  absl::StatusOr<int> RemoveOrphans(bool all_temps);

  std::string SnapshotDir(int64_t id) const;
  OverlayPaths PathsOf(int64_t id) const;

  const std::string root_;
  const std::string snapshots_dir_;
  const Options options_;
  absl::Mutex mu_;
  std::unique_ptr<MetadataStore> store_ ABSL_GUARDED_BY(mu_);
  absl::Mutex observer_mu_;
  std::shared_ptr<RemoveObserver> remove_observer_ ABSL_GUARDED_BY(observer_mu_);
};

}  // namespace slipstream::plugin
