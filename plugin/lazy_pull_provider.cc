// SPDX-License-Identifier: Apache-2.0
#include "plugin/lazy_pull_provider.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cctype>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"
#include "index/ztoc_format.h"
#include "plugin/pull_engine.h"
#include "plugin/pull_source.h"
#include "plugin/remote_pull_provider.h"
#include "plugin/snapshot_filter.h"
#include "remote/cached_blob_reader.h"
#include "remote/http_blob_reader.h"

namespace slipstream::plugin {
namespace {

// Resolution, zTOC fetches and small-layer pulls; two keep one slow image from holding up
// every other Prepare.
constexpr int kWorkers = 2;
// Layer ids tried after the preferred one before AddLayer's AlreadyExists is final.
constexpr int kIdProbes = 64;

const std::string* FindLabel(const Labels& labels, const char* key) {
  auto it = labels.find(key);
  return it == labels.end() ? nullptr : &it->second;
}

// A stable id for `chain`: its first 32 bits, never 0.
uint32_t PreferredLayerId(const Digest& chain) {
  uint32_t id = 0;
  const std::string hex(chain.hex().substr(0, 8));
  for (char c : hex) id = id * 16 + static_cast<uint32_t>(std::isdigit(c) ? c - '0' : c - 'a' + 10);
  return id == 0 ? 1 : id;
}

std::string BlobLabel(const remote::Descriptor& blob) {
  return absl::StrCat(blob.digest.str(), ":", blob.size, ":", blob.media_type);
}

absl::StatusOr<remote::Descriptor> ParseBlobLabel(const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(value, absl::MaxSplits(':', 3));
  int64_t size = 0;
  if (parts.size() != 4 || !absl::SimpleAtoi(parts[2], &size) || size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("bad ", kLazyBlobLabel, " \"", value, "\""));
  }
  remote::Descriptor blob;
  SS_ASSIGN_OR_RETURN(blob.digest, Digest::Parse(absl::StrCat(parts[0], ":", parts[1])));
  blob.size = size;
  blob.media_type = parts[3];
  return blob;
}

}  // namespace

std::string LazyLayerName(const std::string& chain) {
  std::string name = chain;
  if (name.rfind("sha256:", 0) == 0) return name.substr(7);
  for (char& c : name) {
    if (c == ':' || c == '/') c = '-';
  }
  return name;
}

LazyPullProvider::LazyPullProvider(OverlaySnapshotter* snapshotter,
                                   remote::RegistryClient* client, fuse::LayerFs* fs,
                                   RemoteLayerProvider* parallel, LazyPullOptions options)
    : snapshotter_(snapshotter),
      client_(client),
      fs_(fs),
      parallel_(parallel),
      options_(std::move(options)) {
  snapshotter_->SetRemoveObserver(
      [this](const std::string& key, const Labels& labels) { OnSnapshotRemoved(key, labels); });
  fs_->SetRetireObserver(
      [this](const std::string& name, uint32_t layer_id) { OnFuseRetired(name, layer_id); });
  for (int i = 0; i < kWorkers; ++i) workers_.emplace_back([this] { WorkerLoop(); });
  for (int i = 0; i < options_.background_threads; ++i) {
    background_threads_.emplace_back([this] { BackgroundLoop(); });
  }
  ztoc_store_thread_ = std::thread([this] { ZtocStoreLoop(); });
}

LazyPullProvider::~LazyPullProvider() {
  Shutdown();
  {
    absl::MutexLock lock(&mu_);
    exiting_ = true;
  }
  for (std::thread& t : workers_) t.join();
  for (std::thread& t : background_threads_) t.join();
  ztoc_store_thread_.join();
  snapshotter_->SetRemoveObserver(nullptr);
  fs_->SetRetireObserver(nullptr);
}

std::string LazyPullProvider::ZtocPath(const Digest& ztoc) const {
  return absl::StrCat(snapshotter_->root(), "/lazy/ztocs/", ztoc.str());
}

void LazyPullProvider::Prepare(const RemotePrepareRequest& request, Done done) {
  if (FindLabel(request.labels, kSnapshotRefLabel) == nullptr ||
      FindLabel(request.labels, kCriImageRefLabel) == nullptr ||
      FindLabel(request.labels, kCriManifestDigestLabel) == nullptr) {
    std::move(done)(RemoteOutcome::kNotHandled);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      queue_.push_back(Waiter{request, std::move(done)});
      return;
    }
  }
  std::move(done)(absl::UnavailableError("slipstreamd is shutting down"));
}

void LazyPullProvider::Shutdown() {
  std::deque<Waiter> waiting;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    waiting.swap(queue_);
    background_.clear();
  }
  for (Waiter& w : waiting) std::move(w.done)(absl::UnavailableError("slipstreamd is shutting down"));
}

void LazyPullProvider::WorkerLoop() {
  for (;;) {
    std::optional<Waiter> waiter;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](LazyPullProvider* p) ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return p->exiting_ || !p->queue_.empty();
          },
          this));
      if (queue_.empty()) return;  // exiting and drained
      waiter.emplace(std::move(queue_.front()));
      queue_.pop_front();
    }
    Handle(*std::move(waiter));
  }
}

void LazyPullProvider::LockLayer(const std::string& ref) {
  absl::MutexLock lock(&mu_);
  auto free = [this, &ref]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return busy_layers_.count(ref) == 0;
  };
  mu_.Await(absl::Condition(&free));
  busy_layers_.insert(ref);
}

void LazyPullProvider::UnlockLayer(const std::string& ref) {
  absl::MutexLock lock(&mu_);
  busy_layers_.erase(ref);
}

bool LazyPullProvider::IsCommitted(const std::string& name) {
  absl::StatusOr<SnapshotInfo> info = snapshotter_->Stat(name);
  return info.ok() && info->kind == SnapshotKind::kCommitted;
}

void LazyPullProvider::Handle(Waiter waiter) {
  const RemotePrepareRequest& request = waiter.request;
  const std::string ref = request.labels.at(kSnapshotRefLabel);
  const std::string image_ref = request.labels.at(kCriImageRefLabel);
  // Two Prepares of one chainID (two images sharing a layer) are handled one after the other:
  // the second finds it committed.
  LockLayer(ref);
  absl::Cleanup unlock = [this, &ref] { UnlockLayer(ref); };
  if (IsCommitted(ref)) {
    std::move(waiter.done)(RemoteOutcome::kCommitted);
    return;
  }
  absl::StatusOr<std::shared_ptr<const ResolvedImage>> image = ImageFor(request.labels);
  if (!image.ok()) {
    std::move(waiter.done)(Annotate(image.status(), absl::StrCat("lazy pull ", image_ref)));
    return;
  }
  if (!(*image)->soci.has_value()) {
    std::move(unlock).Invoke();
    if (parallel_ == nullptr) {
      std::move(waiter.done)(RemoteOutcome::kNotHandled);
    } else {
      parallel_->Prepare(request, std::move(waiter.done));
    }
    return;
  }
  const ResolvedImage& img = **image;
  size_t layer = img.chains.size();
  for (size_t i = 0; i < img.chains.size(); ++i) {
    if (img.chains[i].str() == ref) layer = i;
  }
  if (layer == img.chains.size()) {
    log::Info("lazy pull: layer not in image, containerd applies it",
              {{"image", image_ref}, {"chain_id", ref}});
    std::move(waiter.done)(RemoteOutcome::kNotHandled);
    return;
  }
  const remote::Descriptor* ztoc = img.soci->ZtocFor(img.blobs[layer].digest);
  absl::Status status = ztoc != nullptr ? AddLazyLayer(img, layer, *ztoc, request)
                                        : PullLocalLayer(img, layer, request);
  if (status.ok() || IsCommitted(ref)) {
    std::move(waiter.done)(RemoteOutcome::kCommitted);
    return;
  }
  log::Warn("lazy pull failed", {{"image", image_ref}, {"error", status.ToString()}});
  std::move(waiter.done)(Annotate(
      status, absl::StrCat("lazy pull ", image_ref, " layer ", img.blobs[layer].digest.str())));
}

absl::StatusOr<std::shared_ptr<const LazyPullProvider::ResolvedImage>> LazyPullProvider::ImageFor(
    const Labels& labels) {
  const std::string& key = labels.at(kCriManifestDigestLabel);
  std::shared_ptr<ImageEntry> entry;
  {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<ImageEntry>& slot = images_[key];
    if (slot == nullptr) slot = std::make_shared<ImageEntry>();
    entry = slot;
  }
  // Held while resolving: other Prepares of the image wait for the first one's answer.
  absl::MutexLock entry_lock(&entry->mu);
  if (entry->resolved) return entry->image;
  absl::StatusOr<ResolvedImage> resolved = ResolveImage(labels.at(kCriImageRefLabel), key);
  if (!resolved.ok()) {
    // Not remembered: the next Prepare of this image tries again.
    absl::MutexLock lock(&mu_);
    auto it = images_.find(key);
    if (it != images_.end() && it->second == entry) images_.erase(it);
    return resolved.status();
  }
  entry->image = std::make_shared<const ResolvedImage>(*std::move(resolved));
  entry->resolved = true;
  return entry->image;
}

absl::StatusOr<LazyPullProvider::ResolvedImage> LazyPullProvider::ResolveImage(
    const std::string& image_ref, const std::string& manifest) {
  absl::StatusOr<remote::Reference> parsed = remote::Reference::Parse(image_ref);
  if (!parsed.ok()) return Annotate(parsed.status(), "cri.image-ref label");
  absl::StatusOr<Digest> digest = Digest::Parse(manifest);
  if (!digest.ok()) return Annotate(digest.status(), "cri.manifest-digest label");
  ResolvedImage out;
  // Pinned to the digest containerd resolved, so a moved tag cannot mix images.
  out.pinned = parsed->WithDigest(digest->str());
  absl::StatusOr<remote::RegistryClient::ResolvedImage> img =
      client_->ResolveImage(out.pinned, options_.platform);
  if (!img.ok()) return Annotate(img.status(), absl::StrCat("resolve ", out.pinned.String()));
  out.blobs = img->manifest.layers;
  out.diff_ids = img->config.diff_ids;
  if (out.diff_ids.size() != out.blobs.size()) {
    return absl::InvalidArgumentError(absl::StrCat("image ", out.pinned.String(), ": config lists ",
                                                   out.diff_ids.size(), " diff_ids for ",
                                                   out.blobs.size(), " layers"));
  }
  out.chains = ChainIds(out.diff_ids);
  absl::StatusOr<index::DiscoveredIndex> soci =
      index::DiscoverSociIndex(*client_, out.pinned, options_.platform);
  if (soci.ok()) {
    log::Info("lazy pull: SOCI index found", {{"image", out.pinned.String()},
                                              {"index", soci->digest.str()},
                                              {"source", soci->source},
                                              {"ztocs", soci->Ztocs().size()}});
    out.soci = *std::move(soci);
  } else if (absl::IsNotFound(soci.status())) {
    log::Info("lazy pull: no SOCI index, pulling in parallel", {{"image", out.pinned.String()}});
  } else {
    log::Warn("lazy pull: SOCI index lookup failed, pulling in parallel",
              {{"image", out.pinned.String()}, {"error", soci.status().ToString()}});
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const index::Ztoc>> LazyPullProvider::LoadZtoc(
    const remote::Reference& repo, const remote::Descriptor& desc) {
  const std::string path = ZtocPath(desc.digest);
  absl::StatusOr<std::string> bytes = ReadFileToString(path);
  absl::Status stored = bytes.status();
  if (bytes.ok()) {
    // Not fsynced when written: a power cut may have left it empty or short.
    const Digest got = Sha256Of(*bytes);
    absl::StatusOr<index::Ztoc> parsed =
        got == desc.digest ? index::ParseZtoc(*bytes)
                           : absl::DataLossError(absl::StrCat("its digest is ", got.str()));
    if (parsed.ok()) return std::make_shared<const index::Ztoc>(*std::move(parsed));
    stored = Annotate(parsed.status(), absl::StrCat("stored zTOC ", path));
  }
  if (desc.size < 0) return stored;  // no size to fetch it with
  if (!absl::IsNotFound(stored)) {
    log::Warn("stored zTOC unusable, fetching it again", {{"error", stored.ToString()}});
  }
  std::string raw;
  absl::StatusOr<index::Ztoc> fetched = index::FetchZtoc(*client_, repo, desc, &raw);
  if (!fetched.ok()) {
    return Annotate(fetched.status(), absl::StrCat("fetch zTOC ", desc.digest.str()));
  }
  // Stored as fetched (digest-verified) for Restore, by the store thread: writing 19 MiB for
  // a 2 GB layer took 80-180 ms of PullImage here (130 ms more with an fsync). A copy that a
  // crash or a power loss destroys is fetched again by Restore (kLazyZtocSizeLabel).
  {
    absl::MutexLock lock(&mu_);
    ztoc_stores_.emplace_back(path, std::move(raw));
  }
  return std::make_shared<const index::Ztoc>(*std::move(fetched));
}

void LazyPullProvider::ZtocStoreLoop() {
  for (;;) {
    std::pair<std::string, std::string> store;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return exiting_ || !ztoc_stores_.empty();
      };
      mu_.Await(absl::Condition(&ready));
      if (ztoc_stores_.empty()) return;  // exiting, nothing left to write
      store = std::move(ztoc_stores_.front());
      ztoc_stores_.pop_front();
      ++ztoc_stores_writing_;
    }
    absl::Status written = MakeDirs(absl::StrCat(snapshotter_->root(), "/lazy/ztocs"));
    if (written.ok()) {
      written = WriteFileAtomic(store.first, store.second, 0644, Durability::kProcessCrash);
    }
    if (!written.ok()) {
      log::Warn("cannot keep a zTOC on disk; a restart fetches it again",
                {{"error", written.ToString()}});
    }
    absl::MutexLock lock(&mu_);
    --ztoc_stores_writing_;
  }
}

void LazyPullProvider::WaitForZtocStores() const {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return ztoc_stores_.empty() && ztoc_stores_writing_ == 0;
  };
  mu_.Await(absl::Condition(&idle));
}

absl::StatusOr<uint32_t> LazyPullProvider::AddToFs(const std::string& name, uint32_t preferred,
                                                   bool exact,
                                                   std::shared_ptr<const index::Ztoc> ztoc,
                                                   const remote::Reference& repo,
                                                   const remote::Descriptor& blob) {
  if (fs_->Status(name).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("FUSE layer ", name, " already exists"));
  }
  uint32_t id = preferred == 0 ? 1 : preferred;
  absl::Status status;
  for (int probe = 0; probe < (exact ? 1 : kIdProbes); ++probe) {
    std::unique_ptr<remote::BlobReader> reader =
        std::make_unique<remote::HttpBlobReader>(client_, repo, blob);
    if (options_.chunk_cache != nullptr) {
      reader = std::make_unique<remote::CachedBlobReader>(std::move(reader), options_.chunk_cache);
    }
    status = fs_->AddLayer(name, id, ztoc, std::move(reader));
    if (status.ok()) return id;
    if (!absl::IsAlreadyExists(status)) break;
    id = id == UINT32_MAX ? 1 : id + 1;
  }
  return Annotate(status, absl::StrCat("add FUSE layer ", name));
}

absl::Status LazyPullProvider::AddLazyLayer(const ResolvedImage& image, size_t layer,
                                            const remote::Descriptor& ztoc_desc,
                                            const RemotePrepareRequest& request) {
  const std::string& ref = request.labels.at(kSnapshotRefLabel);
  const std::string name = LazyLayerName(ref);
  const absl::Time started = absl::Now();
  SS_ASSIGN_OR_RETURN(std::shared_ptr<const index::Ztoc> ztoc, LoadZtoc(image.pinned, ztoc_desc));
  const absl::Time ztoc_loaded = absl::Now();
  SS_ASSIGN_OR_RETURN(StagingDir staging, snapshotter_->CreateStaging());
  bool committed = false;
  bool added = false;
  absl::Cleanup undo = [&] {
    if (committed) return;
    if (added) (void)fs_->RemoveLayer(name);
    (void)snapshotter_->DiscardStaging(staging);
  };
  // The content is the FUSE layer: overlayfs lowerdirs and bind mounts follow the symlink.
  const std::string target = absl::StrCat(options_.mount_dir, "/", name);
  if (::rmdir(staging.fs.c_str()) != 0) return LastErrnoStatus(absl::StrCat("rmdir ", staging.fs));
  if (::symlink(target.c_str(), staging.fs.c_str()) != 0) {
    return LastErrnoStatus(absl::StrCat("symlink ", staging.fs, " -> ", target));
  }
  SS_ASSIGN_OR_RETURN(uint32_t id, AddToFs(name, PreferredLayerId(image.chains[layer]), false,
                                           ztoc, image.pinned, image.blobs[layer]));
  added = true;
  Labels labels = request.labels;
  labels[kModeLabel] = "lazy";
  labels[kLazyLayerIdLabel] = absl::StrCat(id);
  labels[kLazyBlobLabel] = BlobLabel(image.blobs[layer]);
  labels[kLazyZtocLabel] = ztoc_desc.digest.str();
  labels[kLazyZtocSizeLabel] = absl::StrCat(ztoc_desc.size);
  labels[kLazyImageLabel] = image.pinned.String();
  SS_RETURN_IF_ERROR(snapshotter_->CommitStaged(staging, ref, request.parent, labels));
  committed = true;
  last_prepare_ns_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  log::Info("lazy layer mounted", {{"chain_id", ref},
                                   {"layer_id", static_cast<int64_t>(id)},
                                   {"blob", image.blobs[layer].digest.str()},
                                   {"spans", ztoc->SpanCount()},
                                   {"ztoc_ms", absl::ToInt64Milliseconds(ztoc_loaded - started)},
                                   {"mount_ms", absl::ToInt64Milliseconds(absl::Now() - ztoc_loaded)}});
  absl::StatusOr<std::string> dir = snapshotter_->Dir(ref);
  if (!dir.ok()) return absl::OkStatus();  // removed already: nothing to complete
  LayerEntry entry;
  entry.snapshot = ref;
  entry.parent = request.parent;
  entry.dir = *dir;
  entry.blob = image.blobs[layer].digest.str();
  entry.layer_id = id;
  Track(name, std::move(entry));
  QueueBackground(name);
  return absl::OkStatus();
}

absl::Status LazyPullProvider::PullLocalLayer(const ResolvedImage& image, size_t layer,
                                              const RemotePrepareRequest& request) {
  SS_ASSIGN_OR_RETURN(StagingDir staging, snapshotter_->CreateStaging());
  bool committed = false;
  absl::Cleanup undo = [&] {
    if (!committed) (void)snapshotter_->DiscardStaging(staging);
  };
  // The engine creates the layer's directory itself and insists it does not exist yet.
  if (::rmdir(staging.fs.c_str()) != 0) return LastErrnoStatus(absl::StrCat("rmdir ", staging.fs));
  RegistryRangeSource source(client_, image.pinned);
  std::vector<LayerRequest> requests = {{image.blobs[layer], image.diff_ids[layer], staging.fs}};
  SS_ASSIGN_OR_RETURN(std::unique_ptr<PullJob> job, PullEngine(&source).Start(std::move(requests)));
  SS_RETURN_IF_ERROR(job->Wait());
  job.reset();
  SS_RETURN_IF_ERROR(snapshotter_->CommitStaged(staging, request.labels.at(kSnapshotRefLabel),
                                                request.parent, request.labels));
  committed = true;
  return absl::OkStatus();
}

absl::StatusOr<int> LazyPullProvider::Restore() {
  SS_ASSIGN_OR_RETURN(SnapshotFilter filter, SnapshotFilter::Parse({absl::StrCat(
                                                 "labels.\"", kModeLabel, "\"==lazy")}));
  SS_ASSIGN_OR_RETURN(std::vector<SnapshotInfo> snapshots, snapshotter_->List(filter));
  int restored = 0;
  absl::Status first_error;
  for (const SnapshotInfo& info : snapshots) {
    if (info.kind != SnapshotKind::kCommitted) continue;
    auto restore_one = [&]() -> absl::Status {
      auto label = [&](const char* key) -> absl::StatusOr<std::string> {
        const std::string* v = FindLabel(info.labels, key);
        if (v == nullptr) return absl::InvalidArgumentError(absl::StrCat("no label ", key));
        return *v;
      };
      SS_ASSIGN_OR_RETURN(std::string id_text, label(kLazyLayerIdLabel));
      uint32_t id = 0;
      if (!absl::SimpleAtoi(id_text, &id) || id == 0) {
        return absl::InvalidArgumentError(absl::StrCat("bad ", kLazyLayerIdLabel, " ", id_text));
      }
      SS_ASSIGN_OR_RETURN(std::string blob_text, label(kLazyBlobLabel));
      SS_ASSIGN_OR_RETURN(remote::Descriptor blob, ParseBlobLabel(blob_text));
      const std::string name = LazyLayerName(info.name);
      SS_ASSIGN_OR_RETURN(std::string dir, snapshotter_->Dir(info.name));
      LayerEntry entry;
      entry.snapshot = info.name;
      entry.parent = info.parent;
      entry.dir = dir;
      entry.blob = blob.digest.str();
      entry.layer_id = id;
      entry.kernel_refs_unknown = true;
      SS_ASSIGN_OR_RETURN(LazyLayerPlace place, RecoverLocalLayer(dir));
      if (place == LazyLayerPlace::kLocal && FuseReleased(dir)) {
        // Served from disk; nothing refers to its FUSE copy any more.
        entry.state = LayerState::kLocal;
        Track(name, std::move(entry));
        return absl::OkStatus();
      }
      SS_ASSIGN_OR_RETURN(std::string ztoc_text, label(kLazyZtocLabel));
      SS_ASSIGN_OR_RETURN(Digest ztoc_digest, Digest::Parse(ztoc_text));
      SS_ASSIGN_OR_RETURN(std::string image_text, label(kLazyImageLabel));
      SS_ASSIGN_OR_RETURN(remote::Reference repo, remote::Reference::Parse(image_text));
      // The stored copy, or (lost in a power cut: it is not fsynced) the registry's.
      remote::Descriptor ztoc_desc;
      ztoc_desc.digest = ztoc_digest;
      ztoc_desc.size = -1;  // snapshots from before the size label: the stored copy only
      if (auto it = info.labels.find(kLazyZtocSizeLabel); it != info.labels.end() &&
                                                          !absl::SimpleAtoi(it->second, &ztoc_desc.size)) {
        return absl::InvalidArgumentError(
            absl::StrCat("label ", kLazyZtocSizeLabel, " is not a size: ", it->second));
      }
      SS_ASSIGN_OR_RETURN(std::shared_ptr<const index::Ztoc> ztoc, LoadZtoc(repo, ztoc_desc));
      SS_RETURN_IF_ERROR(AddToFs(name, id, /*exact=*/true, ztoc, repo, blob).status());
      if (place == LazyLayerPlace::kLocal) {
        // Local, but mounts made before the restart may still hold inodes of the FUSE copy
        // (a resumed connection): served again, and kept, since this process cannot know
        // the kernel's lookup counts from before it started.
        entry.state = LayerState::kLocalFuseInUse;
        Track(name, std::move(entry));
        return absl::OkStatus();
      }
      Track(name, std::move(entry));
      QueueBackground(name);
      return absl::OkStatus();
    };
    absl::Status status = restore_one();
    if (status.ok()) {
      ++restored;
      continue;
    }
    log::Warn("lazy snapshot not restored", {{"snapshot", info.name}, {"error", status.ToString()}});
    if (first_error.ok()) first_error = Annotate(status, absl::StrCat("restore ", info.name));
  }
  log::Info("lazy layers restored", {{"layers", restored}});
  if (restored == 0 && !first_error.ok()) return first_error;
  return restored;
}

void LazyPullProvider::OnSnapshotRemoved(const std::string& key, const Labels& labels) {
  const std::string* mode = FindLabel(labels, kModeLabel);
  if (mode == nullptr || *mode != "lazy") return;
  const std::string name = LazyLayerName(key);
  std::unique_ptr<LocalLayerBuilder> builder;  // destroyed outside the lock
  {
    absl::MutexLock lock(&mu_);
    auto it = layers_.find(name);
    if (it != layers_.end()) {
      builder = std::move(it->second.builder);
      layers_.erase(it);
    }
    release_pending_.erase(name);
  }
  absl::Status status = fs_->RemoveLayer(name);
  if (!status.ok() && !absl::IsNotFound(status)) {
    // Files still open through it: the layer stays served until the next restart.
    log::Warn("FUSE layer of a removed snapshot kept", {{"snapshot", key},
                                                        {"error", status.ToString()}});
  }
}

void LazyPullProvider::Track(const std::string& name, LayerEntry entry) {
  std::unique_ptr<LocalLayerBuilder> old;
  absl::MutexLock lock(&mu_);
  LayerEntry& slot = layers_[name];
  old = std::move(slot.builder);
  slot = std::move(entry);
}

void LazyPullProvider::SetState(const std::string& name, LayerState state, std::string error) {
  absl::MutexLock lock(&mu_);
  auto it = layers_.find(name);
  if (it == layers_.end()) return;
  it->second.state = state;
  it->second.error = std::move(error);
}

std::vector<LazyLayerInfo> LazyPullProvider::Layers() const {
  absl::MutexLock lock(&mu_);
  std::vector<LazyLayerInfo> out;
  out.reserve(layers_.size());
  for (const auto& [name, e] : layers_) {
    LazyLayerInfo info;
    info.name = name;
    info.snapshot = e.snapshot;
    info.blob = e.blob;
    info.layer_id = e.layer_id;
    info.error = e.error;
    switch (e.state) {
      case LayerState::kRemote: info.state = "remote"; break;
      case LayerState::kCompleting: info.state = "completing"; break;
      case LayerState::kLocal: info.state = "local"; break;
      case LayerState::kLocalFuseInUse: info.state = "local, FUSE in use"; break;
      case LayerState::kStopped: info.state = "stopped"; break;
    }
    if (e.state == LayerState::kLocal || e.state == LayerState::kLocalFuseInUse) {
      info.local_dir = absl::StrCat(e.dir, "/", kLocalDirName);
    }
    out.push_back(std::move(info));
  }
  return out;
}

void LazyPullProvider::QueueBackground(const std::string& name) {
  if (options_.background_threads <= 0) return;
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  background_.push_back(name);
  auto it = layers_.find(name);
  if (it != layers_.end()) it->second.state = LayerState::kCompleting;
}

void LazyPullProvider::BackgroundLoop() {
  // Lowest CPU priority: container reads (FUSE threads) come first. Linux applies the nice
  // value to this thread only.
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 19);
  for (;;) {
    std::string name;
    std::vector<std::string> release;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return stopping_ || exiting_ || !background_.empty();
      };
      auto ready_or_release = [&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return ready() || !release_pending_.empty();
      };
      // Local layers whose FUSE copy had open files are retried every release_retry. The
      // untimed wait also ends when one is added (TryRelease from another thread), or that
      // layer would wait for the next background work, maybe forever.
      mu_.Await(absl::Condition(&ready_or_release));
      if (!ready()) mu_.AwaitWithTimeout(absl::Condition(&ready), options_.release_retry);
      if (stopping_ || exiting_) return;
      if (background_.empty()) {
        release.assign(release_pending_.begin(), release_pending_.end());
      } else {
        name = std::move(background_.front());
        background_.pop_front();
      }
    }
    for (const std::string& r : release) TryRelease(r);
    if (name.empty()) continue;
    if (CompleteStep(name)) {
      // Round robin: every layer advances, none waits for a big one to finish.
      absl::MutexLock lock(&mu_);
      if (!stopping_) background_.push_back(name);
    }
  }
}

bool LazyPullProvider::CompleteStep(const std::string& name) {
  std::shared_ptr<fuse::LayerReader> reader = fs_->Reader(name);
  if (reader == nullptr) return false;  // removed meanwhile
  std::unique_ptr<LocalLayerBuilder> builder;
  std::string dir, snapshot, parent;
  {
    absl::MutexLock lock(&mu_);
    auto it = layers_.find(name);
    if (it == layers_.end()) return false;
    builder = std::move(it->second.builder);
    dir = it->second.dir;
    snapshot = it->second.snapshot;
    parent = it->second.parent;
  }
  auto stop = [&](const absl::Status& status) {
    log::Warn("background completion stopped", {{"layer", name},
                                                 {"error", status.ToString()}});
    SetState(name, LayerState::kStopped, status.ToString());
    return false;
  };
  if (!YieldToReads()) {
    // Stopping: the builder goes (its partial output with it); the next start redoes it.
    return false;
  }
  if (builder == nullptr) {
    absl::StatusOr<Digest> chain = Digest::Parse(snapshot);
    if (!chain.ok()) return stop(chain.status());
    absl::StatusOr<std::unique_ptr<LocalLayerBuilder>> created =
        LocalLayerBuilder::Create(dir, *chain, parent);
    if (!created.ok()) return stop(created.status());
    builder = *std::move(created);
  }
  // Reading through the layer's reader fetches, verifies and records the spans exactly as a
  // container read would (and shares a fetch already in flight).
  absl::StatusOr<bool> done = builder->Step(*reader, options_.background_step_bytes);
  if (!done.ok()) return stop(done.status());
  if (!*done) {
    absl::MutexLock lock(&mu_);
    auto it = layers_.find(name);
    if (it == layers_.end()) return false;  // removed meanwhile: the builder cleans up
    it->second.builder = std::move(builder);
    return true;
  }
  absl::StatusOr<Digest> diff_id = builder->Finish();
  if (!diff_id.ok()) return stop(diff_id.status());
  log::Info("lazy layer complete, now on local disk",
            {{"layer", name}, {"diff_id", diff_id->str()}, {"dir", dir}});
  TryRelease(name);
  return false;
}

void LazyPullProvider::OnMounted(bool resumed) {
  if (resumed) return;
  std::vector<std::string> local;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, entry] : layers_) {
      entry.kernel_refs_unknown = false;
      if (entry.state == LayerState::kLocalFuseInUse) local.push_back(name);
    }
  }
  for (const std::string& name : local) TryRelease(name);
}

bool LazyPullProvider::YieldToReads() {
  const absl::Time until = absl::Now() + options_.max_yield;
  // Container reads (on FUSE threads) compete for the same cores, the registry and the span
  // cache; nice 19 alone does not keep the registry and the network stack from serving
  // completion first.
  auto busy = [this] {
    const absl::Time now = absl::Now();
    return now - fs_->LastRead() < options_.yield_window ||
           now - absl::FromUnixNanos(last_prepare_ns_.load(std::memory_order_relaxed)) <
               options_.prepare_quiet;
  };
  while (busy() && absl::Now() < until) {
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stopping_ || exiting_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.yield_window)) return false;
  }
  absl::MutexLock lock(&mu_);
  return !stopping_ && !exiting_;
}

void LazyPullProvider::TryRelease(const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    auto it = layers_.find(name);
    if (it == layers_.end()) return;
    // Before RemoveLayer: it may retire the layer (OnFuseRetired) before it returns.
    it->second.state = LayerState::kLocalFuseInUse;
    // Removing it would forget inodes a running container may still use: kept.
    if (it->second.kernel_refs_unknown) return;
  }
  absl::Status status = fs_->RemoveLayer(name);
  absl::MutexLock lock(&mu_);
  if (status.ok() || absl::IsNotFound(status)) {
    release_pending_.erase(name);
  } else if (layers_.contains(name)) {
    // Open files (FailedPrecondition): retried after release_retry.
    release_pending_.insert(name);
  }
}

void LazyPullProvider::OnFuseRetired(const std::string& name, uint32_t layer_id) {
  std::string dir;
  {
    absl::MutexLock lock(&mu_);
    auto it = layers_.find(name);
    if (it == layers_.end() || it->second.layer_id != layer_id ||
        it->second.state != LayerState::kLocalFuseInUse) {
      return;  // a removed snapshot's layer, or a failed Prepare's
    }
    dir = it->second.dir;
  }
  // A later start need not serve the FUSE copy again. Written before the state says "local",
  // so whoever sees "local" finds the marker.
  absl::Status status = MarkFuseReleased(dir);
  if (!status.ok()) {
    log::Warn("fuse-released marker not written", {{"layer", name},
                                                   {"error", status.ToString()}});
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = layers_.find(name);
    if (it != layers_.end() && it->second.layer_id == layer_id) {
      it->second.state = LayerState::kLocal;
    }
  }
  log::Info("FUSE copy of a local layer dropped", {{"layer", name}});
}

}  // namespace slipstream::plugin
