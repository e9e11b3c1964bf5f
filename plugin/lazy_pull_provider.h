// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
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
#include "common/digest.h"
#include "fuse/layer_fs.h"
#include "index/soci_index.h"
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
};

// The lazy-mode RemoteLayerProvider. For a CRI-labelled Prepare it resolves the image once
// per manifest digest and looks for its SOCI index once (explicit → v2 annotation → v1
// referrers). Then, per layer:
//   - image without an index: the Prepare goes unchanged to `parallel`;
//   - layer with a zTOC: the zTOC is fetched (and kept under <root>/lazy/ztocs/<digest>), the
//     layer is added to the LayerFs as directory <chainID hex>, and a staging dir whose `fs`
//     is a symlink to <mount_dir>/<chainID hex> is committed as the chainID with the
//     Prepare's labels plus the kLazy* labels; background completion then fetches the rest;
//   - layer without a zTOC (small): pulled and unpacked locally by the PullEngine, committed.
// Answers kCommitted for both; errors name the image and the layer and leave nothing behind
// (staging dir discarded, FUSE layer removed).
//
// Restore() re-adds the layers of existing lazy snapshots after a restart. The provider is
// the snapshotter's remove observer: removing a lazy snapshot removes its FUSE layer.
//
// Owned by the daemon; borrows the snapshotter, client, LayerFs and parallel provider, which
// must outlive it. Thread-safe. Prepares run on two worker threads (never the caller's); a
// worker blocks for the image resolution and a small layer's pull. Background completion
// runs on its own threads at the lowest CPU priority. One mutex guards the queues and the
// image table; no I/O runs under it.
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
  absl::StatusOr<int> Restore();

  // Queued Prepares are answered Unavailable, later ones at once; background completion
  // stops after its current step. Idempotent.
  void Shutdown();

  // Called by the snapshotter after a Remove: drops the FUSE layer of a lazy snapshot.
  void OnSnapshotRemoved(const std::string& key, const Labels& labels);

  // The on-disk copy of a zTOC.
  std::string ZtocPath(const Digest& ztoc) const;

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
  void QueueBackground(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);
  // One step of completing layer `name`; false when it is complete or gone.
  bool CompleteStep(const std::string& name);
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
  std::set<std::string> busy_layers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<ImageEntry>> images_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
  std::vector<std::thread> background_threads_;
};

// The LayerFs directory name of chainID `chain`: its hex part.
std::string LazyLayerName(const std::string& chain);

}  // namespace slipstream::plugin
