// SPDX-License-Identifier: Apache-2.0
// PullJob: fetch threads fill sparse temp files chunk by chunk; unpack threads follow each
// layer's download frontier. Threads are per job and live until the job has settled.
#include "plugin/pull_engine.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/fd.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/strings.h"
#include "remote/download_frontier.h"
#include "remote/media_types.h"

namespace slipstream::plugin {

using remote::DownloadFrontier;
namespace {

constexpr size_t kReadPiece = 1 << 20;
// Consumed parts of a temp file are returned to the file system in steps of this size, so a
// multi-GB layer never needs its whole size on disk twice (blob + unpacked tree).
constexpr int64_t kPunchEvery = int64_t{32} << 20;

std::string ParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// An unlinked file in `dir`: it disappears with its descriptor, whatever happens.
absl::StatusOr<UniqueFd> OpenAnonymousFile(const std::string& dir, const Digest& digest) {
  std::string tmpl = absl::StrCat(dir, "/.slipstream-pull-", digest.Short(), "-XXXXXX");
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("create temp file ", tmpl));
  UniqueFd owned(fd);
  CrashPoint("pull.tempfile.created");
  if (::unlink(tmpl.c_str()) != 0) return LastErrnoStatus(absl::StrCat("unlink ", tmpl));
  return owned;
}

std::string LayerName(size_t i, const LayerRequest& r) {
  return absl::StrCat("layer ", i, " (", r.blob.digest.Short(), ")");
}

}  // namespace

struct PullJob::Layer {
  LayerRequest request;
  std::unique_ptr<DownloadFrontier> frontier;
  UniqueFd fd;  // the temp file; closed when the layer settles (or with the job)
  LayerProgress progress;
  // Settled state, guarded by the job's mu_.
  bool done = false;
  absl::StatusOr<LayerResult> result = absl::CancelledError("not settled");
};

// Random access for SpanInflater: waits on the frontier, then preads the temp file.
class PullJob::BlobView : public LayerBlobView {
 public:
  explicit BlobView(Layer* layer) : layer_(layer) {}
  int64_t size() const override { return layer_->request.blob.size; }
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override {
    SS_RETURN_IF_ERROR(layer_->frontier->WaitRange(offset, length));
    std::string out(static_cast<size_t>(length), '\0');
    SS_RETURN_IF_ERROR(PreadExact(layer_->fd.get(), out.data(), out.size(),
                                  static_cast<uint64_t>(offset)));
    return out;
  }

 private:
  Layer* layer_;
};

absl::StatusOr<std::unique_ptr<PullJob>> PullEngine::Start(std::vector<LayerRequest> layers,
                                                           PullOptions options) {
  std::vector<int64_t> sizes;
  std::set<std::string> dests;
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerRequest& r = layers[i];
    if (r.blob.size < 0) {
      return absl::InvalidArgumentError(absl::StrCat(LayerName(i, r), ": negative size"));
    }
    if (r.dest.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(LayerName(i, r), ": empty dest"));
    }
    if (!dests.insert(r.dest).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(LayerName(i, r), ": dest ", r.dest, " given twice"));
    }
    SS_RETURN_IF_ERROR(Annotate(remote::LayerCompression(r.blob.media_type).status(),
                                LayerName(i, r)));
    struct stat st;
    if (::lstat(r.dest.c_str(), &st) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat(LayerName(i, r), ": ", r.dest, " already exists"));
    }
    sizes.push_back(r.blob.size);
  }
  int cores = options.cores > 0 ? options.cores
                                : static_cast<int>(std::thread::hardware_concurrency());
  PullPlan plan = PlanPull(sizes, cores, options.tuning);
  std::unique_ptr<PullJob> job(new PullJob(source_, std::move(options), std::move(plan)));
  SS_RETURN_IF_ERROR(job->Prepare(std::move(layers)));
  job->Launch();
  return job;
}

PullJob::PullJob(RangeSource* source, PullOptions options, PullPlan plan)
    : source_(source), options_(std::move(options)), plan_(std::move(plan)), start_(absl::Now()) {}

absl::Status PullJob::Prepare(std::vector<LayerRequest> requests) {
  for (size_t i = 0; i < requests.size(); ++i) {
    auto layer = std::make_unique<Layer>();
    layer->request = std::move(requests[i]);
    const std::string dir =
        options_.temp_dir.empty() ? ParentDir(layer->request.dest) : options_.temp_dir;
    SS_ASSIGN_OR_RETURN(layer->fd, OpenAnonymousFile(dir, layer->request.blob.digest));
    // Sized up front so chunks can land anywhere; the file stays sparse until they do.
    if (::ftruncate(layer->fd.get(), layer->request.blob.size) != 0) {
      return LastErrnoStatus(absl::StrCat("size temp file for ", LayerName(i, layer->request)));
    }
    layer->frontier =
        std::make_unique<DownloadFrontier>(layer->request.blob.size, plan_.chunk_size);
    layers_.push_back(std::move(layer));
  }
  unpack_order_.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) unpack_order_[i] = i;
  std::stable_sort(unpack_order_.begin(), unpack_order_.end(), [this](size_t a, size_t b) {
    return layers_[a]->request.blob.size > layers_[b]->request.blob.size;
  });
  // Round-robin over layers so every layer's prefix grows from the start and all unpackers
  // get work early, rather than one layer downloading to the end before the next begins.
  int64_t max_chunks = 0;
  for (int64_t n : plan_.chunks_per_layer) max_chunks = std::max(max_chunks, n);
  for (int64_t c = 0; c < max_chunks; ++c) {
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (c < plan_.chunks_per_layer[i]) fetch_order_.emplace_back(i, c);
    }
  }
  return absl::OkStatus();
}

void PullJob::Launch() {
  absl::MutexLock lock(&join_mu_);
  for (int i = 0; i < plan_.requests && !fetch_order_.empty(); ++i) {
    threads_.emplace_back([this] { FetchLoop(); });
  }
  for (int i = 0; i < plan_.unpackers && !layers_.empty(); ++i) {
    threads_.emplace_back([this] { UnpackLoop(); });
  }
}

PullJob::~PullJob() {
  Cancel();
  JoinThreads();
}

void PullJob::JoinThreads() {
  absl::MutexLock lock(&join_mu_);
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  // Every thread is gone: no pwrite can race with closing the temp files.
  for (auto& layer : layers_) layer->fd.Reset();
}

const LayerRequest& PullJob::request(size_t i) const { return layers_.at(i)->request; }
const LayerProgress& PullJob::progress(size_t i) const { return layers_.at(i)->progress; }

void PullJob::FetchLoop() {
  while (!cancelled_.load()) {
    const size_t slot = next_fetch_.fetch_add(1);
    if (slot >= fetch_order_.size()) return;
    const auto [index, chunk] = fetch_order_[slot];
    Layer& layer = *layers_[index];
    DownloadFrontier& frontier = *layer.frontier;
    const int64_t start = frontier.ChunkOffset(chunk);
    const int64_t length = frontier.ChunkLength(chunk);
    int64_t written = 0;
    absl::Status st = source_->Read(
        layer.request.blob, start, length, [&](std::string_view bytes) -> absl::Status {
          // Checked per piece so a cancelled job stops its transfers within one read.
          if (cancelled_.load()) return absl::CancelledError("pull cancelled");
          if (written + static_cast<int64_t>(bytes.size()) > length) {
            return absl::DataLossError("source returned more bytes than asked for");
          }
          SS_RETURN_IF_ERROR(PwriteAll(layer.fd.get(), bytes, static_cast<uint64_t>(start + written)));
          written += static_cast<int64_t>(bytes.size());
          layer.progress.bytes_fetched.fetch_add(static_cast<int64_t>(bytes.size()),
                                                 std::memory_order_relaxed);
          frontier.Fill(chunk, written);
          CrashPoint("pull.chunk.written");
          return absl::OkStatus();
        });
    if (st.ok() && written != length) {
      st = absl::DataLossError(absl::StrCat("source returned ", written, " of ", length, " bytes"));
    }
    if (!st.ok()) {
      // A transfer stopped by our own cancellation is not a new error.
      if (cancelled_.load()) return;
      Fail(Annotate(st, absl::StrCat("fetch ", LayerName(index, layer.request), " bytes ", start,
                                     "-", start + length - 1)),
           static_cast<int>(index));
      return;
    }
  }
}

void PullJob::UnpackLoop() {
  while (true) {
    const size_t slot = next_unpack_.fetch_add(1);
    if (slot >= unpack_order_.size()) return;
    const size_t index = unpack_order_[slot];
    Layer& layer = *layers_[index];
    if (cancelled_.load()) {
      // Its own fetch error when this layer is the one that failed, else Cancelled.
      Settle(index, Stopped(layer));
      continue;
    }
    layer.progress.state.store(static_cast<int>(LayerState::kUnpacking));
    absl::StatusOr<unpack::LayerUnpackResult> r;
    const bool span_inflated = options_.span_inflater != nullptr &&
                               options_.span_inflater->CanInflate(layer.request);
    if (span_inflated) {
      BlobView view(&layer);
      r = options_.span_inflater->Unpack(layer.request, view, layer.progress, cancelled_);
    } else {
      r = UnpackSequential(layer);
    }
    if (!r.ok()) {
      // When the job was already stopping, the status came through the frontier (the fetch
      // error of this layer, already annotated, or Cancelled) and is passed on unchanged.
      absl::Status st = r.status();
      if (!cancelled_.load()) {
        st = Annotate(st, absl::StrCat("layer ", index));
        Fail(st, static_cast<int>(index));
      }
      Settle(index, st);
      continue;
    }
    CrashPoint("pull.layer.verified");
    layer.progress.bytes_decompressed.store(r->uncompressed_bytes);
    layer.progress.files_written.store(r->entries);
    Settle(index,
           LayerResult{layer.request.dest, *std::move(r), absl::Now() - start_, span_inflated});
  }
}

absl::Status PullJob::Stopped(const Layer& layer) {
  // Fail() aborts every frontier before it raises cancelled_, so this is the root cause for
  // the failing layer and a Cancelled naming it for the others.
  absl::Status st = layer.frontier->aborted();
  return st.ok() ? absl::CancelledError("pull cancelled") : st;
}

absl::StatusOr<unpack::LayerUnpackResult> PullJob::UnpackSequential(Layer& layer) {
  const LayerRequest& req = layer.request;
  unpack::LayerUnpackOptions options = options_.unpack;
  options.live_uncompressed_bytes = &layer.progress.bytes_decompressed;
  options.live_entries = &layer.progress.files_written;
  SS_ASSIGN_OR_RETURN(std::unique_ptr<unpack::LayerUnpacker> unpacker,
                      unpack::LayerUnpacker::Create(req.blob.media_type, req.blob.digest,
                                                    req.diff_id, req.dest, options));
  std::string buf(kReadPiece, '\0');
  int64_t consumed = 0;
  int64_t punched = 0;
  const int64_t size = req.blob.size;
  while (consumed < size) {
    SS_ASSIGN_OR_RETURN(int64_t prefix, layer.frontier->WaitBeyond(consumed));
    while (consumed < prefix) {
      // Between pieces, so a cancelled job stops unpacking within one piece; returning
      // destroys the unpacker, which removes its partial directory.
      if (cancelled_.load()) return Stopped(layer);
      const size_t n = static_cast<size_t>(std::min<int64_t>(kReadPiece, prefix - consumed));
      SS_RETURN_IF_ERROR(PreadExact(layer.fd.get(), buf.data(), n, static_cast<uint64_t>(consumed)));
      SS_RETURN_IF_ERROR(unpacker->Write(std::string_view(buf.data(), n)));
      consumed += static_cast<int64_t>(n);
      if (consumed >= size / 2 && consumed - static_cast<int64_t>(n) < size / 2) CrashPoint("pull.layer.unpack_half");
      layer.progress.bytes_unpacked.store(consumed, std::memory_order_relaxed);
      if (consumed - punched >= kPunchEvery) {
        // Best effort: a file system without hole punching just keeps the bytes longer.
        (void)::fallocate(layer.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, punched,
                          consumed - punched);
        punched = consumed;
      }
    }
  }
  if (cancelled_.load()) return Stopped(layer);
  return unpacker->Finish();
}

void PullJob::Fail(const absl::Status& status, int failing_layer) {
  {
    absl::MutexLock lock(&mu_);
    if (!error_.ok() || settled_ == layers_.size()) return;
    error_ = status;
  }
  log::Warn("pull failed; cancelling the other layers", {{"error", status.ToString()}});
  // The failing layer's unpacker reports the root cause; the others report why they stopped.
  const absl::Status stopped = absl::CancelledError(
      status.code() == absl::StatusCode::kCancelled
          ? std::string(status.message())
          : absl::StrCat("pull cancelled because of: ", status.message()));
  for (size_t i = 0; i < layers_.size(); ++i) {
    layers_[i]->frontier->Abort(static_cast<int>(i) == failing_layer ? status : stopped);
  }
  // Raised last: whoever sees it finds every frontier already aborted (see Stopped()).
  cancelled_.store(true);
}

void PullJob::Cancel() { Fail(absl::CancelledError("pull cancelled")); }

void PullJob::Settle(size_t i, absl::StatusOr<LayerResult> result) {
  Layer& layer = *layers_[i];
  layer.progress.state.store(
      static_cast<int>(result.ok() ? LayerState::kDone : LayerState::kFailed));
  // After a success every byte was delivered, so no fetch thread writes to the file again;
  // after a failure one still might, and the file is closed when the threads are joined.
  if (result.ok()) layer.fd.Reset();
  bool last = false;
  absl::Status job_status;
  {
    absl::MutexLock lock(&mu_);
    layer.result = result;
    layer.done = true;
    ++settled_;
    last = settled_ == layers_.size();
    job_status = error_;
  }
  // Before the callback, so whoever the callback wakes already sees the figures.
  RecordMetrics(result, last ? &job_status : nullptr);
  if (options_.on_layer_done) options_.on_layer_done(i, result);
}

void PullJob::RecordMetrics(const absl::StatusOr<LayerResult>& layer,
                            const absl::Status* job_status) {
  struct Metrics {
    metrics::Family<metrics::Histogram>& layer_seconds;
    metrics::Family<metrics::Histogram>& pull_seconds;
    metrics::Family<metrics::Counter>& bytes;
  };
  static Metrics* m = [] {
    metrics::Registry& r = metrics::Global();
    return new Metrics{
        r.AddHistogramFamily("slipstream_parallel_layer_seconds",
                             "Parallel mode: time from the start of a pull job until a layer "
                             "was unpacked and verified (or failed).",
                             {"outcome"}, metrics::LatencyBuckets()),
        r.AddHistogramFamily("slipstream_parallel_pull_seconds",
                             "Parallel mode: time from the start of a pull job until its last "
                             "layer settled.",
                             {"outcome"}, metrics::LatencyBuckets()),
        r.AddCounterFamily("slipstream_parallel_bytes_total",
                           "Parallel mode: bytes of the layers unpacked, compressed (as "
                           "fetched) and uncompressed (the tar streams).",
                           {"kind"}),
    };
  }();
  const absl::Duration elapsed = absl::Now() - start_;
  m->layer_seconds.With({layer.ok() ? "ok" : "error"}).ObserveDuration(elapsed);
  if (layer.ok()) {
    m->bytes.With({"compressed"}).Add(layer->unpack.compressed_bytes);
    m->bytes.With({"uncompressed"}).Add(layer->unpack.uncompressed_bytes);
  }
  if (job_status != nullptr) {
    m->pull_seconds.With({job_status->ok() ? "ok" : "error"}).ObserveDuration(elapsed);
  }
}

bool PullJob::LayerDone(size_t i) const {
  absl::MutexLock lock(&mu_);
  return i < layers_.size() && layers_[i]->done;
}

absl::StatusOr<LayerResult> PullJob::WaitLayer(size_t i) {
  if (i >= layers_.size()) {
    return absl::OutOfRangeError(absl::StrCat("layer ", i, " of ", layers_.size()));
  }
  Layer* layer = layers_[i].get();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&layer->done));
  return layer->result;
}

absl::Status PullJob::Wait() {
  {
    absl::MutexLock lock(&mu_);
    auto all = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return settled_ == layers_.size(); };
    mu_.Await(absl::Condition(&all));
  }
  JoinThreads();
  absl::MutexLock lock(&mu_);
  return error_;
}

}  // namespace slipstream::plugin
