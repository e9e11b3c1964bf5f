// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/digest.h"
#include "plugin/pull_plan.h"
#include "plugin/pull_source.h"
#include "remote/manifest.h"
#include "unpack/layer_unpacker.h"

namespace slipstream::plugin {

// One layer to pull: which blob, what it must decompress to, and where it goes.
struct LayerRequest {
  remote::Descriptor blob;  // media type, digest and size of the compressed blob
  Digest diff_id;           // sha256 of the uncompressed tar; empty = not checked
  std::string dest;         // directory to create; must not exist, its parent must
};

// What a successfully pulled layer turned out to be.
struct LayerResult {
  std::string dest;
  unpack::LayerUnpackResult unpack;
  absl::Duration elapsed;  // from the job's start to this layer's rename into place
  bool span_inflated = false;  // unpacked by the SpanInflater (spans in parallel)
};

enum class LayerState : int { kQueued = 0, kUnpacking = 1, kDone = 2, kFailed = 3 };

// Live counters of one layer, written by the job's threads and readable from any thread
// (relaxed atomics: a progress display needs no stronger ordering).
struct LayerProgress {
  std::atomic<int64_t> bytes_fetched{0};   // compressed bytes landed in the temp file
  std::atomic<int64_t> bytes_unpacked{0};  // compressed bytes fed to the unpacker
  std::atomic<int64_t> bytes_decompressed{0};  // tar bytes produced so far
  std::atomic<int64_t> files_written{0};       // tar entries written so far
  std::atomic<int> state{static_cast<int>(LayerState::kQueued)};
};

// Random access to a layer blob while it is still downloading: reads block until the range
// has arrived. Handed to a SpanInflater; valid only during its Unpack call. Thread-safe.
class LayerBlobView {
 public:
  virtual ~LayerBlobView() = default;
  virtual int64_t size() const = 0;
  // Waits for [offset, offset + length) and returns it. OutOfRange past the end; the pull's
  // error (Cancelled, or the fetch failure) when the pull stops first.
  virtual absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) = 0;
};

// Extension point for zTOC-indexed gzip layers: instead of inflating the blob from start to
// end on one thread, an inflater that holds the layer's index (span checkpoints) inflates
// its spans in parallel, each as soon as its compressed bytes have arrived. The index/ code
// provides the span decoder; the engine only asks and delegates.
//
// Owned by the caller of PullEngine::Start and borrowed by the job; must be thread-safe
// (several layers may unpack at once).
class SpanInflater {
 public:
  virtual ~SpanInflater() = default;
  // True when this layer has an index the inflater can use. Called once per layer on the
  // unpack thread, before anything is written.
  virtual bool CanInflate(const LayerRequest& layer) = 0;
  // Unpacks the layer into layer.dest with LayerUnpacker's contract: digest and diff_id
  // verified, `dest` appears only when complete, nothing left behind on error. Must return
  // promptly (Cancelled) once `cancelled` becomes true. May update `progress` (except state).
  virtual absl::StatusOr<unpack::LayerUnpackResult> Unpack(const LayerRequest& layer,
                                                           LayerBlobView& blob,
                                                           LayerProgress& progress,
                                                           const std::atomic<bool>& cancelled) = 0;
};

struct PullOptions {
  PullTuning tuning;  // chunk size, request budget, unpackers; zero = automatic
  // Where blobs are buffered while they download: unlinked sparse files, so nothing is left
  // behind even after a crash. Empty = the parent directory of each layer's dest.
  std::string temp_dir;
  SpanInflater* span_inflater = nullptr;  // null = always inflate sequentially
  unpack::LayerUnpackOptions unpack;
  // Called once per layer when it settles (success or failure), on the unpack thread that
  // settled it. Must not block for long and must not destroy the job.
  std::function<void(size_t index, const absl::StatusOr<LayerResult>& result)> on_layer_done;
  int cores = 0;  // 0 = std::thread::hardware_concurrency()
};

// One running pull of a set of layers (normally an image), made by PullEngine::Start.
//
// Every layer starts at once: its blob is split into chunks fetched by `plan().requests`
// fetch threads (the image's whole request budget), interleaved across layers, each chunk
// streamed straight into the layer's sparse temp file at its offset. `plan().unpackers`
// unpack threads each take a layer and feed LayerUnpacker from the temp file as far as the
// download frontier (the contiguous prefix) allows, so decompression and untar run while
// later chunks are still downloading. Memory per layer is one 1 MiB read buffer plus the
// unpacker's state, whatever the layer size; consumed parts of temp files are hole-punched.
//
// The first error of any layer (fetch or unpack) cancels the whole job: transfers stop at
// their next received bytes, unpackers stop at their next piece, partial directories and
// temp files are removed, layers not started settle with Cancelled. Layers that completed
// before stay in place (they are verified). Cancel() does the same from any thread.
//
// Owned by the caller. Thread-safe. Destroying it cancels what is still running and joins
// every thread (it may block for as long as a transfer takes to notice).
class PullJob {
 public:
  ~PullJob();
  PullJob(const PullJob&) = delete;
  PullJob& operator=(const PullJob&) = delete;

  size_t layer_count() const { return layers_.size(); }
  const PullPlan& plan() const { return plan_; }
  // When Start() began the job.
  absl::Time start_time() const { return start_; }
  const LayerRequest& request(size_t i) const;
  const LayerProgress& progress(size_t i) const;

  // Blocks until layer `i` settles and returns its result: the LayerUnpacker errors
  // (DataLoss for a corrupt blob or digest mismatch, InvalidArgument for a bad tar), the
  // fetch errors of RangeSource (NotFound, Unavailable, ...), annotated with the layer, or
  // Cancelled when another layer's failure or Cancel() stopped it. OutOfRange for a bad `i`.
  absl::StatusOr<LayerResult> WaitLayer(size_t i);
  // Blocks until every layer settled and the job's threads have exited. Returns the first
  // error (the root cause, not the Cancelled of the layers it stopped), or OK.
  absl::Status Wait();
  // True once layer `i` settled.
  bool LayerDone(size_t i) const;
  // Stops the job with Cancelled (unless it already failed or finished). Non-blocking.
  void Cancel();

 private:
  friend class PullEngine;
  struct Layer;
  class BlobView;

  PullJob(RangeSource* source, PullOptions options, PullPlan plan);
  absl::Status Prepare(std::vector<LayerRequest> requests);
  void Launch();
  void FetchLoop();
  void UnpackLoop();
  absl::StatusOr<unpack::LayerUnpackResult> UnpackSequential(Layer& layer);
  // What an unpacker returns once it notices the job stopped.
  static absl::Status Stopped(const Layer& layer);
  // Records the job's first error and stops everything; `failing_layer` (or -1) gets
  // `status` itself through its frontier, the others Cancelled.
  void Fail(const absl::Status& status, int failing_layer = -1) ABSL_LOCKS_EXCLUDED(mu_);
  void Settle(size_t i, absl::StatusOr<LayerResult> result) ABSL_LOCKS_EXCLUDED(mu_);
  // Counts a settled layer in the process's metrics, and the whole job when `job_status`
  // (its first error, or OK) is given: the last layer settled.
  void RecordMetrics(const absl::StatusOr<LayerResult>& layer, const absl::Status* job_status);
  void JoinThreads();

  RangeSource* const source_;
  const PullOptions options_;
  const PullPlan plan_;
  const absl::Time start_;
  std::vector<std::unique_ptr<Layer>> layers_;
  // (layer, chunk) in fetch order: chunk 0 of every layer, then chunk 1, ...
  std::vector<std::pair<size_t, int64_t>> fetch_order_;
  std::atomic<size_t> next_fetch_{0};
  std::atomic<size_t> next_unpack_{0};
  // Layer indexes, largest blob first: the biggest layer is the critical path, so it gets an
  // unpacker before small ones when there are more layers than unpackers.
  std::vector<size_t> unpack_order_;
  std::atomic<bool> cancelled_{false};

  mutable absl::Mutex mu_;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  size_t settled_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex join_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(join_mu_);
};

// Starts parallel pulls. Holds the RangeSource (shared client or cache) that every job
// reads through; one engine per daemon or CLI process. Thread-safe; the source must outlive
// the engine and every job it started.
class PullEngine {
 public:
  explicit PullEngine(RangeSource* source) : source_(source) {}

  // Validates `layers` and starts pulling them; returns at once. InvalidArgument for an
  // unsupported media type, a negative size, an empty or duplicated dest; AlreadyExists when
  // a dest exists; errors creating temp files. Nothing is fetched or created on error.
  absl::StatusOr<std::unique_ptr<PullJob>> Start(std::vector<LayerRequest> layers,
                                                 PullOptions options = {});

 private:
  RangeSource* const source_;
};

}  // namespace slipstream::plugin
