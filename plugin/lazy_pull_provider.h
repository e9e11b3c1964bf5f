// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/digest.h"
#include "fuse/layer_fs.h"
#include "index/soci_index.h"
#include "plugin/lazy_local_layer.h"
#include "plugin/snapshot_overlay.h"
#include "plugin/snapshot_remote.h"
#include "remote/chunk_cache.h"
#include "remote/platform.h"
#include "remote/registry_client.h"

namespace slipstream::plugin {

// Labels a lazily served layer's committed snapshot carries, recording what Restore() needs
// to serve it again after a restart without asking the registry.
inline constexpr char kModeLabel[] = "slipstream.io/mode";  // "lazy"
inline constexpr char kLazyLayerIdLabel[] = "slipstream.io/lazy.layer-id";  // decimal
inline constexpr char kLazyBlobLabel[] = "slipstream.io/lazy.blob";  // digest:size:mediatype
inline constexpr char kLazyZtocLabel[] = "slipstream.io/lazy.ztoc";  // zTOC blob digest
inline constexpr char kLazyZtocSizeLabel[] = "slipstream.io/lazy.ztoc-size";  // its bytes
inline constexpr char kLazyImageLabel[] = "slipstream.io/lazy.image";  // image ref (repo)

struct LazyPullOptions {
  // Where the FUSE server mounts the LayerFs; a lazy snapshot's fs is a symlink to
  // <mount_dir>/<name>.
  std::string mount_dir;
  remote::Platform platform = remote::Platform::Host();
  // Chunk cache in front of the registry reads of lazy layers (borrowed; null: none).
  remote::ChunkCache* chunk_cache = nullptr;
  // Background completion: threads fetching the spans nobody read yet (0 disables it), and
  // how many uncompressed bytes one step reads (the unit between cancellation checks).
  int background_threads = 2;
  int64_t background_step_bytes = int64_t{4} << 20;
  // How often a completed layer whose FUSE copy still has open files tries again to drop it.
  absl::Duration release_retry = absl::Seconds(2);
  // Background completion yields to container reads: before a step it waits while the
  // LayerFs served a read in the last `yield_window`, for at most `max_yield` per step (so a
  // layer read all the time still completes, one step per max_yield).
  absl::Duration yield_window = absl::Milliseconds(100);
  absl::Duration max_yield = absl::Seconds(2);
  // It also waits (within the same max_yield) until no lazy layer was prepared for this
  // long: a pull is followed by the pod's sandbox and container start, which need the same
  // cores, and its next layers' zTOCs come from the same registry.
  absl::Duration prepare_quiet = absl::Seconds(1);
};

// One lazy layer as `slipstream status` shows it.
struct LazyLayerInfo {
  std::string name;      // LayerFs directory (chainID hex)
  std::string snapshot;  // the committed snapshot (chainID)
  std::string blob;      // layer blob digest
  uint32_t layer_id = 0;
  // "remote" (served through FUSE, not completing), "completing" (background completion
  // fetching and unpacking it), "local" (served from local_dir; the FUSE copy is gone),
  // "local, FUSE in use" (new mounts use local_dir; the FUSE copy stays while the kernel or
  // open files still refer to it), "stopped" (completion failed; error says why; retried at
  // the next start).
  std::string state;
  std::string local_dir;  // set once local
  std::string error;
};

// The lazy-mode RemoteLayerProvider. For a CRI-labelled Prepare it resolves the image once
// per manifest digest and looks for its SOCI index once (explicit → v2 annotation → v1
// referrers). Then, per layer:
//   - image without an index: the Prepare goes unchanged to `parallel`;
//   - layer with a zTOC: the zTOC is fetched (and kept under <root>/lazy/ztocs/<digest>, written
//     by a thread of its own after the Prepare: Restore fetches it again if it was lost), the
//     layer is added to the LayerFs as directory <chainID hex>, and a staging dir whose `fs`
//     is a symlink to <mount_dir>/<chainID hex> is committed as the chainID with the
//     Prepare's labels plus the kLazy* labels; background completion then fetches the rest;
//   - layer without a zTOC (small): pulled and unpacked locally by the PullEngine, committed.
// Answers kCommitted for both; errors name the image and the layer and leave nothing behind
// (staging dir discarded, FUSE layer removed).
//
// Background completion reads every lazy layer's tar stream in order through its LayerReader
// (fetching and verifying what no container read yet) and unpacks it next to the snapshot
// (LocalLayerBuilder): once verified, the snapshot's `fs` symlink is switched to the local
// copy, so every later mount uses local disk, and the FUSE copy is removed from the LayerFs
// as soon as no file of it is open (its inodes stay valid for mounts made before until the
// kernel forgets them; then a marker tells later starts not to serve it again).
//
// Restore() re-adds the layers of existing lazy snapshots after a restart. The provider is
// the snapshotter's remove observer: removing a lazy snapshot removes its FUSE layer (its
// local copy goes with the snapshot directory).
//
// Owned by the daemon; borrows the snapshotter, client, LayerFs and parallel provider, which
// must outlive it. Thread-safe. Prepares run on two worker threads (never the caller's); a
// worker blocks for the image resolution and a small layer's pull. Background completion
// runs on its own threads at the lowest CPU priority. The constructor makes the provider the
// LayerFs's retire observer. One mutex guards the queues, the image and layer tables; no I/O
// runs under it.
class LazyPullProvider final : public RemoteLayerProvider {
 public:
  LazyPullProvider(OverlaySnapshotter* snapshotter, remote::RegistryClient* client,
                   fuse::LayerFs* fs, RemoteLayerProvider* parallel, LazyPullOptions options);
  // Shutdown(), joins every thread, stops observing the snapshotter.
  ~LazyPullProvider() override;
  LazyPullProvider(const LazyPullProvider&) = delete;
  LazyPullProvider& operator=(const LazyPullProvider&) = delete;

  // kNotHandled at once without the CRI labels; otherwise queued for a worker (see the class
  // comment). `done` is called exactly once, from a worker (or from the parallel provider).
  void Prepare(const RemotePrepareRequest& request, Done done) override;

  // Re-adds to the LayerFs every committed snapshot labelled slipstream.io/mode=lazy, from its
  // on-disk zTOC and with its recorded layer id, and queues its background completion. Call
  // once at start, before serving. Returns how many layers were restored; a snapshot that
  // cannot be restored is logged and skipped (the first such error is returned only when no
  // layer at all could be restored and some failed).
  // A snapshot already on local disk (RecoverLocalLayer, which also finishes a switch a
  // crash interrupted) gets no FUSE layer, unless its FUSE copy may still be referenced by
  // mounts made before the restart (no fuse-released marker): then that copy is served
  // again under its id, without completion, until OnMounted(false) or the snapshot's removal.
  // Restored layers that complete later keep their FUSE copy the same way.
  absl::StatusOr<int> Restore();

  // Queued Prepares are answered Unavailable, later ones at once; background completion
  // stops after its current step. Idempotent.
  void Shutdown();

  // Called by the snapshotter after a Remove: drops the FUSE layer of a lazy snapshot.
  void OnSnapshotRemoved(const std::string& key, const Labels& labels);

  // Tells the provider whether the FUSE connection was resumed from before the restart
  // (DurableMount::resumed()). When it was not, no mount can refer to a restored layer's
  // FUSE copy, so those of local layers are dropped now and completed ones later. Call
  // after Restore() and the mount; until then (and for ever after a resumed connection)
  // restored layers keep their FUSE copy.
  void OnMounted(bool resumed) ABSL_LOCKS_EXCLUDED(mu_);

  // Every lazy layer this provider serves (added or restored, not removed), by name.
  std::vector<LazyLayerInfo> Layers() const ABSL_LOCKS_EXCLUDED(mu_);

  // The on-disk copy of a zTOC.
  std::string ZtocPath(const Digest& ztoc) const;
  // Waits until every fetched zTOC queued for writing is on disk (or failed to be).
  void WaitForZtocStores() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Waiter {
    RemotePrepareRequest request;
    Done done;
  };
  // One image as resolved for the first Prepare naming its manifest digest.
  struct ResolvedImage {
    remote::Reference pinned;
    std::vector<remote::Descriptor> blobs;
    std::vector<Digest> diff_ids;
    std::vector<Digest> chains;
    std::optional<index::DiscoveredIndex> soci;  // nullopt: no SOCI index
  };
  enum class LayerState { kRemote, kCompleting, kLocal, kLocalFuseInUse, kStopped };
  // A lazy layer's local-disk progress.
  struct LayerEntry {
    std::string snapshot;
    std::string parent;
    std::string dir;  // the snapshot's directory
    std::string blob;
    uint32_t layer_id = 0;
    LayerState state = LayerState::kRemote;
    std::string error;
    // While completing; moved out by the thread running a step.
    std::unique_ptr<LocalLayerBuilder> builder;
    // Restored at start: the kernel may hold inodes of it from before the restart (a
    // resumed connection) that this process never counted, so its FUSE copy must stay.
    bool kernel_refs_unknown = false;
  };
  struct ImageEntry {
    absl::Mutex mu;  // held by the worker resolving it
    bool resolved ABSL_GUARDED_BY(mu) = false;
    std::shared_ptr<const ResolvedImage> image ABSL_GUARDED_BY(mu);
  };

  void WorkerLoop();
  void BackgroundLoop();
  void Handle(Waiter waiter);
  // The image of the Prepare's labels, resolving it when first seen; errors are not cached.
  absl::StatusOr<std::shared_ptr<const ResolvedImage>> ImageFor(const Labels& labels);
  absl::StatusOr<ResolvedImage> ResolveImage(const std::string& image_ref,
                                             const std::string& manifest);
  absl::Status AddLazyLayer(const ResolvedImage& image, size_t layer,
                            const remote::Descriptor& ztoc_desc,
                            const RemotePrepareRequest& request);
  absl::Status PullLocalLayer(const ResolvedImage& image, size_t layer,
                              const RemotePrepareRequest& request);
  // The zTOC from disk, or fetched from `repo` and written to disk.
  absl::StatusOr<std::shared_ptr<const index::Ztoc>> LoadZtoc(const remote::Reference& repo,
                                                              const remote::Descriptor& desc);
  // Adds layer `name` with the first free id from `preferred` on (or exactly `preferred`
  // when `exact`). Returns the id used.
  absl::StatusOr<uint32_t> AddToFs(const std::string& name, uint32_t preferred, bool exact,
                                   std::shared_ptr<const index::Ztoc> ztoc,
                                   const remote::Reference& repo, const remote::Descriptor& blob);
  // Records layer `name` (replacing an earlier entry).
  void Track(const std::string& name, LayerEntry entry) ABSL_LOCKS_EXCLUDED(mu_);
  void QueueBackground(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // One step of completing and unpacking layer `name`; false when it is done or gone.
  bool CompleteStep(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  void SetState(const std::string& name, LayerState state, std::string error = "")
      ABSL_LOCKS_EXCLUDED(mu_);
  // Drops the FUSE copy of local layer `name` unless files of it are open (then retried
  // every release_retry).
  void TryRelease(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the queued zTOCs, in order; on exit, after the queue is empty.
  void ZtocStoreLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Waits while containers read (see LazyPullOptions::yield_window); false when stopping.
  bool YieldToReads() ABSL_LOCKS_EXCLUDED(mu_);
  // The LayerFs retired a removed layer: a local one's FUSE copy is gone for good.
  void OnFuseRetired(const std::string& name, uint32_t layer_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Marks chainID `ref` busy (waiting while another worker handles it).
  void LockLayer(const std::string& ref) ABSL_LOCKS_EXCLUDED(mu_);
  void UnlockLayer(const std::string& ref) ABSL_LOCKS_EXCLUDED(mu_);
  bool IsCommitted(const std::string& name);

  OverlaySnapshotter* const snapshotter_;
  remote::RegistryClient* const client_;
  fuse::LayerFs* const fs_;
  RemoteLayerProvider* const parallel_;
  const LazyPullOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool exiting_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<Waiter> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> background_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, LayerEntry> layers_ ABSL_GUARDED_BY(mu_);  // by LayerFs name
  std::set<std::string> release_pending_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> busy_layers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<ImageEntry>> images_ ABSL_GUARDED_BY(mu_);
  // Fetched zTOCs to write to disk (path, bytes), and how many are being written.
  std::deque<std::pair<std::string, std::string>> ztoc_stores_ ABSL_GUARDED_BY(mu_);
  int ztoc_stores_writing_ ABSL_GUARDED_BY(mu_) = 0;
  // When the last lazy layer was added (Unix ns), for LazyPullOptions::prepare_quiet.
  std::atomic<int64_t> last_prepare_ns_{0};
  std::vector<std::thread> workers_;
  std::vector<std::thread> background_threads_;
  std::thread ztoc_store_thread_;
};

// The LayerFs directory name of chainID `chain`: its hex part.
std::string LazyLayerName(const std::string& chain);

}  // namespace slipstream::plugin
