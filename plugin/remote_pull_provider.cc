// SPDX-License-Identifier: Apache-2.0
#include "plugin/remote_pull_provider.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::plugin {
namespace {

// Resolution and commits are short compared with downloads (which run on the jobs' own
// threads); two workers keep one slow resolve from holding up every commit.
constexpr int kWorkers = 2;

const std::string* FindLabel(const Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? nullptr : &it->second;
}

}  // namespace

std::vector<Digest> ChainIds(const std::vector<Digest>& diff_ids) {
  std::vector<Digest> out;
  out.reserve(diff_ids.size());
  for (const Digest& diff : diff_ids) {
    if (out.empty()) {
      out.push_back(diff);
    } else {
      out.push_back(Sha256Of(absl::StrCat(out.back().str(), " ", diff.str())));
    }
  }
  return out;
}

RemotePullProvider::RemotePullProvider(OverlaySnapshotter* snapshotter,
                                       remote::RegistryClient* client, RemotePullOptions options)
    : snapshotter_(snapshotter), client_(client), options_(std::move(options)) {
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

RemotePullProvider::RemotePullProvider(OverlaySnapshotter* snapshotter,
                                       std::unique_ptr<remote::RegistryClient> client,
                                       RemotePullOptions options)
    : snapshotter_(snapshotter),
      owned_client_(std::move(client)),
      client_(owned_client_.get()),
      options_(std::move(options)) {
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
}

RemotePullProvider::~RemotePullProvider() {
  Shutdown();
  {
    absl::MutexLock lock(&mu_);
    exiting_ = true;
  }
  // Workers drain the queue (answering whatever is still queued) before they exit.
  for (std::thread& t : workers_) t.join();
}

int RemotePullProvider::jobs_started() const {
  absl::MutexLock lock(&mu_);
  return jobs_started_;
}

std::vector<RemotePullProvider::ImageState> RemotePullProvider::Images() const {
  absl::MutexLock lock(&mu_);
  std::vector<ImageState> out;
  for (const auto& [manifest, image] : images_) {
    ImageState s{.image_ref = image->image_ref, .manifest = manifest,
                 .resolved = image->resolved, .layers = static_cast<int>(image->layers.size()),
                 .pulled = static_cast<int>(image->job_slots.size())};
    for (size_t slot : image->job_slots) {
      const LayerSlot& l = image->layers[slot];
      if (l.settled) ++(l.result.ok() ? s.done : s.failed);
    }
    out.push_back(std::move(s));
  }
  return out;
}

void RemotePullProvider::Prepare(const RemotePrepareRequest& request, Done done) {
  const std::string* ref = FindLabel(request.labels, kSnapshotRefLabel);
  const std::string* image = FindLabel(request.labels, kCriImageRefLabel);
  const std::string* manifest = FindLabel(request.labels, kCriManifestDigestLabel);
  // Without the CRI labels there is no image to resolve (ctr pulls, containerd 2.x transfer
  // without annotations): containerd's own fetch+apply is the only path.
  if (ref == nullptr || image == nullptr || manifest == nullptr) {
    std::move(done)(RemoteOutcome::kNotHandled);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      tasks_.push_back([this, w = Waiter{request, std::move(done)}]() mutable {
        Handle(std::move(w));
      });
      return;
    }
  }
  std::move(done)(absl::UnavailableError("slipstreamd is shutting down"));
}

void RemotePullProvider::Shutdown() {
  std::vector<std::unique_ptr<PullJob>> jobs;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (auto& [key, image] : images_) {
      if (image->job != nullptr) jobs.push_back(std::move(image->job));
    }
  }
  // Destroying a job cancels it and joins its threads; its layers settle with Cancelled
  // through OnLayerDone, which queues the answers for their waiters. Outside the lock, since
  // that callback takes it.
  jobs.clear();
  std::vector<Waiter> waiting;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [key, image] : images_) {
      for (Waiter& w : image->unresolved) waiting.push_back(std::move(w));
      image->unresolved.clear();
      for (LayerSlot& slot : image->layers) {
        for (Waiter& w : slot.waiters) waiting.push_back(std::move(w));
        slot.waiters.clear();
      }
    }
  }
  for (Waiter& w : waiting) std::move(w.done)(absl::UnavailableError("slipstreamd is shutting down"));
}

void RemotePullProvider::Enqueue(absl::AnyInvocable<void() &&> task) {
  absl::MutexLock lock(&mu_);
  tasks_.push_back(std::move(task));
}

void RemotePullProvider::WorkerLoop() {
  for (;;) {
    absl::AnyInvocable<void() &&> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(this, &RemotePullProvider::WorkReady));
      if (tasks_.empty()) return;  // exiting and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    std::move(task)();
  }
}

bool RemotePullProvider::IsCommitted(const std::string& name) {
  absl::StatusOr<SnapshotInfo> info = snapshotter_->Stat(name);
  return info.ok() && info->kind == SnapshotKind::kCommitted;
}

void RemotePullProvider::Handle(Waiter waiter) {
  // Copies: the waiter (and its labels) may move into a queue below.
  const Labels labels = waiter.request.labels;
  const std::string ref = labels.at(kSnapshotRefLabel);
  // A layer shared with an image pulled earlier: nothing to fetch.
  if (IsCommitted(ref)) {
    std::move(waiter.done)(RemoteOutcome::kCommitted);
    return;
  }
  const std::string key = labels.at(kCriManifestDigestLabel);
  enum class Action { kQueued, kResolve, kFinish, kNotInJob, kStopping } action;
  std::string image_ref;
  size_t slot_index = 0;
  // An earlier pull of this image whose job is over: destroyed (joining the job's exiting
  // threads) after the lock is released, since those threads take it.
  std::unique_ptr<Image> stale;
  {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<Image>& image = images_[key];
    if (stopping_) {
      action = Action::kStopping;
    } else if (image == nullptr || !image->resolved) {
      action = Action::kQueued;
      if (image == nullptr) {
        image = std::make_unique<Image>();
        image->image_ref = labels.at(kCriImageRefLabel);
        image_ref = image->image_ref;
        action = Action::kResolve;
      }
      image->unresolved.push_back(std::move(waiter));
    } else {
      action = Action::kNotInJob;
      bool again = false;
      for (size_t i = 0; i < image->layers.size(); ++i) {
        LayerSlot& slot = image->layers[i];
        if (slot.chain_id.str() != ref) continue;
        // Committed when the image resolved (by another image) or by this image's job, and
        // not committed now: removed since (`crictl rmi`, GC) and pulled again.
        again = !slot.staging.has_value() || slot.finished;
        if (again) break;
        slot_index = i;
        action = Action::kFinish;
        if (!slot.settled) {
          slot.waiters.push_back(std::move(waiter));
          action = Action::kQueued;
        }
        break;
      }
      // The image is resolved anew once its last job is over. Without this, containerd
      // fetched such layers itself, and a failed layer's error stuck to the image.
      if (again && image->settled == image->job_slots.size()) {
        stale = std::move(image);
        image = std::make_unique<Image>();
        image->image_ref = labels.at(kCriImageRefLabel);
        image_ref = image->image_ref;
        image->unresolved.push_back(std::move(waiter));
        action = Action::kResolve;
      }
    }
    if (image == nullptr) images_.erase(key);
  }
  if (stale != nullptr) {
    // Its layers that were unpacked but never asked for (their Prepare never came) are
    // dropped with it; its job is over, so nothing writes there.
    for (LayerSlot& slot : stale->layers) {
      if (slot.staging.has_value() && !slot.finished) {
        (void)snapshotter_->DiscardStaging(*slot.staging);
      }
    }
  }
  switch (action) {
    case Action::kQueued:
      return;
    case Action::kResolve:
      Resolve(key, image_ref);
      return;
    case Action::kFinish:
      Finish(key, slot_index, std::move(waiter));
      return;
    case Action::kNotInJob:
      // Not a layer this image's job pulls (an unknown chainID, or one removed since the
      // image resolved while its job still runs): containerd applies it.
      log::Info("remote pull: layer not in job, containerd applies it",
                {{"image", labels.at(kCriImageRefLabel)}, {"chain_id", ref}});
      std::move(waiter.done)(RemoteOutcome::kNotHandled);
      return;
    case Action::kStopping:
      std::move(waiter.done)(absl::UnavailableError("slipstreamd is shutting down"));
      return;
  }
}

void RemotePullProvider::Resolve(const std::string& image_key, const std::string& image_ref) {
  absl::StatusOr<remote::Reference> parsed = remote::Reference::Parse(image_ref);
  if (!parsed.ok()) {
    FailImage(image_key, Annotate(parsed.status(), "cri.image-ref label"));
    return;
  }
  absl::StatusOr<Digest> manifest_digest = Digest::Parse(image_key);
  if (!manifest_digest.ok()) {
    FailImage(image_key, Annotate(manifest_digest.status(), "cri.manifest-digest label"));
    return;
  }
  // Pinned to the digest containerd resolved, so a tag moved meanwhile cannot mix images.
  const remote::Reference pinned = parsed->WithDigest(manifest_digest->str());
  absl::StatusOr<remote::RegistryClient::ResolvedImage> img =
      client_->ResolveImage(pinned, options_.platform);
  if (!img.ok()) {
    FailImage(image_key, Annotate(img.status(), absl::StrCat("resolve ", pinned.String())));
    return;
  }
  const std::vector<remote::Descriptor>& blobs = img->manifest.layers;
  if (img->config.diff_ids.size() != blobs.size()) {
    FailImage(image_key, absl::InvalidArgumentError(absl::StrCat(
                             "image ", pinned.String(), ": config lists ",
                             img->config.diff_ids.size(), " diff_ids for ", blobs.size(),
                             " layers")));
    return;
  }
  const std::vector<Digest> chains = ChainIds(img->config.diff_ids);
  std::vector<LayerSlot> slots(blobs.size());
  std::vector<size_t> job_slots;
  std::vector<LayerRequest> requests;
  absl::Status status;
  for (size_t i = 0; i < blobs.size() && status.ok(); ++i) {
    slots[i].chain_id = chains[i];
    slots[i].blob = blobs[i];
    if (IsCommitted(chains[i].str())) continue;
    absl::StatusOr<StagingDir> staging = snapshotter_->CreateStaging();
    if (!staging.ok()) {
      status = staging.status();
      break;
    }
    slots[i].staging = *staging;
    // The engine creates the layer's directory itself and insists it does not exist yet.
    if (::rmdir(staging->fs.c_str()) != 0) {
      status = LastErrnoStatus(absl::StrCat("rmdir ", staging->fs));
      break;
    }
    job_slots.push_back(i);
    CrashPoint("remote.resolve.staged");
    requests.push_back({blobs[i], img->config.diff_ids[i], staging->fs});
  }
  auto discard_all = [&] {
    for (LayerSlot& slot : slots) {
      if (slot.staging.has_value()) (void)snapshotter_->DiscardStaging(*slot.staging);
    }
  };
  if (!status.ok()) {
    discard_all();
    FailImage(image_key, Annotate(status, absl::StrCat("stage ", pinned.String())));
    return;
  }
  auto source = std::make_unique<RegistryRangeSource>(client_, pinned);
  RangeSource* source_ptr = source.get();
  std::unique_ptr<ZtocSpanInflater> inflater;
  if (options_.use_soci_index && !requests.empty()) {
    inflater = LoadSpanInflater(*client_, pinned, options_.platform);
  }
  ZtocSpanInflater* inflater_ptr = inflater.get();
  {
    // Slots go in before the job starts: its first layer may settle before Start returns.
    absl::MutexLock lock(&mu_);
    Image& image = *images_.at(image_key);
    image.layers = std::move(slots);
    image.job_slots = job_slots;
    image.source = std::move(source);
    image.inflater = std::move(inflater);
  }
  std::unique_ptr<PullJob> job;
  if (!requests.empty()) {
    PullOptions popts;
    popts.tuning = options_.tuning;
    popts.span_inflater = inflater_ptr;
    popts.on_layer_done = [this, image_key](size_t index,
                                            const absl::StatusOr<LayerResult>& result) {
      OnLayerDone(image_key, index, result.status());
    };
    absl::StatusOr<std::unique_ptr<PullJob>> started =
        PullEngine(source_ptr).Start(std::move(requests), std::move(popts));
    if (!started.ok()) {
      std::vector<StagingDir> dirs;
      {
        absl::MutexLock lock(&mu_);
        for (LayerSlot& slot : images_.at(image_key)->layers) {
          if (slot.staging.has_value()) dirs.push_back(*slot.staging);
        }
      }
      for (const StagingDir& d : dirs) (void)snapshotter_->DiscardStaging(d);
      FailImage(image_key, Annotate(started.status(), absl::StrCat("pull ", pinned.String())));
      return;
    }
    job = *std::move(started);
    log::Info("remote pull started", {{"image", pinned.String()},
                                      {"layers", blobs.size()},
                                      {"pulled", job_slots.size()},
                                      {"requests", job->plan().requests}});
  }
  std::vector<Waiter> waiting;
  bool reap = false;
  {
    absl::MutexLock lock(&mu_);
    Image& image = *images_.at(image_key);
    image.resolved = true;
    waiting = std::move(image.unresolved);
    image.unresolved.clear();
    if (job != nullptr) {
      ++jobs_started_;
      if (!stopping_) {
        image.job = std::move(job);
        reap = image.settled == image.job_slots.size();
      }
    }
  }
  // Shutdown began while resolving: destroying the job here cancels it.
  job.reset();
  if (reap) Enqueue([this, image_key]() { ReapJob(image_key); });
  for (Waiter& w : waiting) Handle(std::move(w));
}

void RemotePullProvider::FailImage(const std::string& image_key, const absl::Status& status) {
  std::vector<Waiter> waiting;
  {
    absl::MutexLock lock(&mu_);
    auto it = images_.find(image_key);
    if (it != images_.end()) {
      waiting = std::move(it->second->unresolved);
      // Forgotten, so the next Prepare of this image tries again.
      images_.erase(it);
    }
  }
  log::Warn("remote pull: image failed", {{"manifest", image_key}, {"error", status.ToString()}});
  for (Waiter& w : waiting) AnswerFailure(std::move(w), status);
}

void RemotePullProvider::OnLayerDone(const std::string& image_key, size_t job_index,
                                     const absl::Status& status) {
  std::vector<Waiter> waiting;
  size_t slot_index = 0;
  bool all_settled = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = images_.find(image_key);
    if (it == images_.end() || job_index >= it->second->job_slots.size()) return;
    Image& image = *it->second;
    slot_index = image.job_slots[job_index];
    LayerSlot& slot = image.layers[slot_index];
    slot.settled = true;
    slot.result = status;
    waiting = std::move(slot.waiters);
    slot.waiters.clear();
    ++image.settled;
    all_settled = image.settled == image.job_slots.size();
  }
  // This runs on an unpack thread: commits (which measure disk usage) go to the workers.
  for (Waiter& w : waiting) {
    Enqueue([this, image_key, slot_index, w = std::move(w)]() mutable {
      Finish(image_key, slot_index, std::move(w));
    });
  }
  if (all_settled) Enqueue([this, image_key]() { ReapJob(image_key); });
}

void RemotePullProvider::ReapJob(const std::string& image_key) {
  std::unique_ptr<PullJob> job;
  std::vector<StagingDir> orphans;
  {
    absl::MutexLock lock(&mu_);
    auto it = images_.find(image_key);
    if (it == images_.end()) return;
    job = std::move(it->second->job);
    if (options_.on_failure == RemoteFailurePolicy::kFail) {
      orphans = TakeOrphanedStagingLocked(*it->second);
    }
  }
  // Every layer settled, so this only joins threads that are exiting.
  if (job != nullptr) (void)job->Wait();
  for (const StagingDir& d : orphans) (void)snapshotter_->DiscardStaging(d);
}

std::vector<StagingDir> RemotePullProvider::TakeOrphanedStagingLocked(Image& image) {
  // containerd applies an image's layers bottom up and stops at the first error, so with
  // kFail no Prepare ever comes for a layer above a failed one: its unpacked staging dir
  // would stay until the next restart (a later pull resolves the image anew).
  std::vector<StagingDir> orphans;
  bool failed_below = false;
  for (LayerSlot& slot : image.layers) {
    if (failed_below && slot.staging.has_value() && slot.settled && !slot.finished) {
      orphans.push_back(*slot.staging);
      slot.finished = true;
    }
    if (slot.settled && !slot.result.ok()) failed_below = true;
  }
  return orphans;
}

void RemotePullProvider::Finish(const std::string& image_key, size_t slot_index,
                                Waiter waiter) {
  const std::string& ref = waiter.request.labels.at(kSnapshotRefLabel);
  absl::Status result;
  std::optional<StagingDir> staging;
  std::string image_ref;
  std::string blob;
  bool finished = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = images_.find(image_key);
    if (it != images_.end() && slot_index < it->second->layers.size()) {
      LayerSlot& slot = it->second->layers[slot_index];
      result = slot.result;
      staging = slot.staging;
      finished = slot.finished;
      image_ref = it->second->image_ref;
      blob = slot.blob.digest.str();
      // A failed layer's staging dir is dropped by exactly one of its waiters.
      if (!result.ok()) slot.finished = true;
    } else {
      finished = true;
    }
  }
  if (!result.ok()) {
    if (!finished && staging.has_value()) (void)snapshotter_->DiscardStaging(*staging);
    AnswerFailure(std::move(waiter),
                  Annotate(result, absl::StrCat("pull ", image_ref, " layer ", blob)));
    return;
  }
  if (!finished && staging.has_value()) {
    absl::Status st = snapshotter_->CommitStaged(*staging, ref, waiter.request.parent,
                                                 waiter.request.labels);
    if (st.ok()) {
      absl::MutexLock lock(&mu_);
      auto it = images_.find(image_key);
      if (it != images_.end()) it->second->layers[slot_index].finished = true;
    } else if (!IsCommitted(ref)) {
      std::move(waiter.done)(
          Annotate(st, absl::StrCat("commit ", image_ref, " layer ", blob, " as ", ref)));
      return;
    }
    std::move(waiter.done)(RemoteOutcome::kCommitted);
    CrashPoint("remote.layer.answered");
    return;
  }
  // Another Prepare of the same layer committed it first (or it is gone again).
  if (IsCommitted(ref)) {
    std::move(waiter.done)(RemoteOutcome::kCommitted);
  } else {
    std::move(waiter.done)(RemoteOutcome::kNotHandled);
  }
}

void RemotePullProvider::AnswerFailure(Waiter waiter, const absl::Status& status) {
  if (options_.on_failure == RemoteFailurePolicy::kFallback) {
    log::Warn("remote pull failed, containerd fetches the layer",
              {{"key", waiter.request.key}, {"error", status.ToString()}});
    std::move(waiter.done)(RemoteOutcome::kNotHandled);
  } else {
    std::move(waiter.done)(status);
  }
}

}  // namespace slipstream::plugin
