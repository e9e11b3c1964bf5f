// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/digest.h"
#include "plugin/pull_engine.h"
#include "plugin/snapshot_overlay.h"
#include "plugin/snapshot_remote.h"
#include "plugin/ztoc_span_inflater.h"
#include "remote/platform.h"
#include "remote/registry_client.h"

namespace slipstream::plugin {

// The CRI labels containerd adds to a Prepare when the CRI plugin pulls an image
// (`disable_snapshot_annotations = false`).
inline constexpr char kCriImageRefLabel[] = "containerd.io/snapshot/cri.image-ref";
inline constexpr char kCriManifestDigestLabel[] = "containerd.io/snapshot/cri.manifest-digest";
inline constexpr char kCriLayerDigestLabel[] = "containerd.io/snapshot/cri.layer-digest";

// What the provider does when the engine fails for a layer.
enum class RemoteFailurePolicy {
  kFail,      // the Prepare fails with an error naming image and layer
  kFallback,  // the staging dir is dropped and containerd fetches the layer itself
};

struct RemotePullOptions {
  RemoteFailurePolicy on_failure = RemoteFailurePolicy::kFail;
  remote::Platform platform = remote::Platform::Host();
  PullTuning tuning;  // zero = automatic
  // Look for each image's SOCI index and inflate indexed layers span by span in parallel.
  bool use_soci_index = false;
};

// chainID of every layer from the image config's diff_ids: chain_0 = diff_0,
// chain_n = sha256(chain_{n-1} + " " + diff_n) (OCI image spec, "Layer ChainID").
std::vector<Digest> ChainIds(const std::vector<Digest>& diff_ids);

// The parallel-mode RemoteLayerProvider: takes over CRI pulls. The first Prepare of an image
// (keyed by the cri.manifest-digest label) resolves the image through the RegistryClient,
// creates one staging dir per layer whose chainID is not yet committed and starts ONE
// PullJob for all of them; later Prepares of the same image share that job. Each Prepare
// waits (without blocking the caller) until its layer settles, then the staged layer is
// committed as snapshot `<snapshot.ref>` on top of the Prepare's parent with the Prepare's
// labels and the provider answers kCommitted. Layers already committed (shared by another
// image) are answered at once. On an engine failure the configured policy applies.
//
// Owned by the daemon; borrows the snapshotter (and the client, unless it owns it), which
// must outlive it. Thread-safe. Resolution and commits run on the provider's two worker
// threads (never on the caller's); the engines' unpack threads only record results. One
// mutex guards the image table and the task queue; no I/O runs under it. Staging dirs of
// layers whose Prepare never comes stay until the snapshotter's next Open.
class RemotePullProvider final : public RemoteLayerProvider {
 public:
  RemotePullProvider(OverlaySnapshotter* snapshotter, remote::RegistryClient* client,
                     RemotePullOptions options);
  // The same, owning the client (the daemon's one registry client lives here).
  RemotePullProvider(OverlaySnapshotter* snapshotter,
                     std::unique_ptr<remote::RegistryClient> client, RemotePullOptions options);
  // Shutdown(), then joins the workers and destroys the jobs.
  ~RemotePullProvider() override;
  RemotePullProvider(const RemotePullProvider&) = delete;
  RemotePullProvider& operator=(const RemotePullProvider&) = delete;

  // Answers kNotHandled at once for a Prepare without the cri.* labels; otherwise queues it
  // (see the class comment). `done` is called exactly once, from a worker thread.
  void Prepare(const RemotePrepareRequest& request, Done done) override;

  // Cancels every running job, answers every waiting Prepare (Cancelled through the failure
  // policy, or Unavailable) and makes later Prepares answer Unavailable at once. Idempotent;
  // call before the server stops so no RPC waits for a download.
  void Shutdown();

  // How many PullJobs were started so far (for tests and metrics).
  int jobs_started() const;

  // One image this provider has seen a Prepare for (`slipstream status`).
  struct ImageState {
    std::string image_ref;  // the CRI image reference
    std::string manifest;   // the manifest digest it resolved to
    bool resolved = false;  // manifest read and the job (if any) started
    int layers = 0;         // layers of the image
    int pulled = 0;         // layers the engine pulls (the others were already committed)
    int done = 0;           // of those, unpacked and verified
    int failed = 0;         // of those, failed
  };
  // Every image, ordered by manifest digest. Takes the provider's lock briefly; no I/O.
  std::vector<ImageState> Images() const;

 private:
  struct Waiter {
    RemotePrepareRequest request;
    Done done;
  };
  struct LayerSlot {
    Digest chain_id;
    remote::Descriptor blob;
    std::optional<StagingDir> staging;  // set when this image's job pulls the layer
    bool settled = false;
    absl::Status result;
    bool finished = false;  // committed or discarded: the staging dir is gone
    std::vector<Waiter> waiters;
  };
  struct Image {
    std::string image_ref;
    bool resolved = false;
    std::vector<Waiter> unresolved;
    std::vector<LayerSlot> layers;
    std::vector<size_t> job_slots;  // job layer index -> slot
    size_t settled = 0;
    std::unique_ptr<RangeSource> source;
    std::unique_ptr<ZtocSpanInflater> inflater;  // null: no SOCI index; outlives job
    std::unique_ptr<PullJob> job;
  };

  void Enqueue(absl::AnyInvocable<void() &&> task) ABSL_LOCKS_EXCLUDED(mu_);
  void WorkerLoop();
  bool WorkReady() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exiting_ || !tasks_.empty(); }
  void Handle(Waiter waiter);
  void Resolve(const std::string& image_key, const std::string& image_ref);
  void FailImage(const std::string& image_key, const absl::Status& status);
  void OnLayerDone(const std::string& image_key, size_t job_index,
                   const absl::Status& status);
  void Finish(const std::string& image_key, size_t slot, Waiter waiter);
  void ReapJob(const std::string& image_key);
  // With kFail: marks finished and returns the staging dirs of unpacked layers above a failed
  // one of `image`, which no Prepare can claim any more (the caller discards them).
  std::vector<StagingDir> TakeOrphanedStagingLocked(Image& image)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers a waiter whose layer could not be pulled, by the failure policy.
  void AnswerFailure(Waiter waiter, const absl::Status& status);
  bool IsCommitted(const std::string& name);

  OverlaySnapshotter* const snapshotter_;
  const std::unique_ptr<remote::RegistryClient> owned_client_;  // null when borrowed
  remote::RegistryClient* const client_;
  const RemotePullOptions options_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // Set by the destructor after Shutdown: workers exit once the queue is empty. (Not at
  // Shutdown itself: cancelled jobs still queue the answers of their waiters then.)
  bool exiting_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<Image>> images_ ABSL_GUARDED_BY(mu_);
  std::deque<absl::AnyInvocable<void() &&>> tasks_ ABSL_GUARDED_BY(mu_);
  int jobs_started_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::thread> workers_;
};

}  // namespace slipstream::plugin
