// SPDX-License-Identifier: Apache-2.0
// Parallel span inflate for the pull engine: workers decode spans out of order, the calling
// thread re-sequences them into the tar stream.
#include "plugin/ztoc_span_inflater.h"

#include <algorithm>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/log.h"
#include "common/status.h"
#include "index/soci_index.h"
#include "index/span_decoder.h"
#include "remote/media_types.h"
#include "unpack/layer_unpacker.h"

namespace slipstream::plugin {
namespace {

constexpr int64_t kHashPiece = 1 << 20;

// The spans of one layer being decoded: a window of claimed spans ahead of the consumer.
class SpanWindow {
 public:
  SpanWindow(int64_t spans, int64_t max_ahead) : spans_(spans), max_ahead_(max_ahead) {}

  // The next span a worker should decode, once the window has room; -1 when there is none
  // left or the layer stopped.
  int64_t Claim() {
    absl::MutexLock lock(&mu_);
    auto room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !error_.ok() || next_claim_ >= spans_ || next_claim_ < consumed_ + max_ahead_;
    };
    mu_.Await(absl::Condition(&room));
    if (!error_.ok() || next_claim_ >= spans_) return -1;
    return next_claim_++;
  }

  void Put(int64_t span, std::string bytes) {
    absl::MutexLock lock(&mu_);
    done_.emplace(span, std::move(bytes));
  }

  void Fail(absl::Status s) {
    absl::MutexLock lock(&mu_);
    if (error_.ok()) error_ = std::move(s);
  }

  // Waits for span `span` (the consumer's next one) and takes it; the first worker error
  // instead. Wakes at least every `poll` so the caller can notice a cancellation.
  absl::StatusOr<std::string> Take(int64_t span, absl::Duration poll) {
    absl::MutexLock lock(&mu_);
    auto ready = [this, span]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return !error_.ok() || done_.count(span) > 0;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), poll)) {
      return absl::DeadlineExceededError("span not ready yet");
    }
    if (!error_.ok()) return error_;
    auto it = done_.find(span);
    std::string bytes = std::move(it->second);
    done_.erase(it);
    consumed_ = span + 1;
    return bytes;
  }

 private:
  const int64_t spans_;
  const int64_t max_ahead_;
  absl::Mutex mu_;
  int64_t next_claim_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t consumed_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int64_t, std::string> done_ ABSL_GUARDED_BY(mu_);
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

ZtocSpanInflater::ZtocSpanInflater(ZtocSpanInflaterOptions options) : options_(std::move(options)) {}

void ZtocSpanInflater::Add(const Digest& blob, std::shared_ptr<const index::Ztoc> ztoc) {
  absl::MutexLock lock(&mu_);
  ztocs_[blob.str()] = std::move(ztoc);
}

size_t ZtocSpanInflater::size() const {
  absl::MutexLock lock(&mu_);
  return ztocs_.size();
}

std::shared_ptr<const index::Ztoc> ZtocSpanInflater::Find(const Digest& blob) const {
  absl::MutexLock lock(&mu_);
  auto it = ztocs_.find(blob.str());
  return it == ztocs_.end() ? nullptr : it->second;
}

bool ZtocSpanInflater::CanInflate(const LayerRequest& layer) {
  std::shared_ptr<const index::Ztoc> ztoc = Find(layer.blob.digest);
  if (ztoc == nullptr) return false;
  auto compression = remote::LayerCompression(layer.blob.media_type);
  return compression.ok() && *compression == remote::Compression::kGzip &&
         ztoc->compression == index::CompressionAlgorithm::kGzip &&
         ztoc->compressed_archive_size == layer.blob.size && ztoc->SpanCount() > 0 &&
         static_cast<int64_t>(ztoc->checkpoints.size()) == ztoc->SpanCount();
}

absl::StatusOr<unpack::LayerUnpackResult> ZtocSpanInflater::Unpack(
    const LayerRequest& layer, LayerBlobView& blob, LayerProgress& progress,
    const std::atomic<bool>& cancelled) {
  std::shared_ptr<const index::Ztoc> ztoc = Find(layer.blob.digest);
  if (ztoc == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no zTOC for layer ", layer.blob.digest.Short()));
  }
  const int64_t spans = ztoc->SpanCount();
  const int threads = std::max(
      1, options_.threads > 0 ? options_.threads
                              : static_cast<int>(std::thread::hardware_concurrency()));
  const int64_t ahead = options_.max_spans_ahead > 0 ? options_.max_spans_ahead : 2 * threads + 2;

  unpack::LayerUnpackOptions uopts = options_.unpack;
  uopts.hash_input = false;  // spans are verified one by one, the blob by the hash below
  uopts.live_uncompressed_bytes = &progress.bytes_decompressed;
  uopts.live_entries = &progress.files_written;
  SS_ASSIGN_OR_RETURN(std::unique_ptr<unpack::LayerUnpacker> unpacker,
                      unpack::LayerUnpacker::Create(remote::kOciLayer, Digest(), layer.diff_id,
                                                    layer.dest, uopts));

  SpanWindow window(spans, ahead);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads && t < spans; ++t) {
    workers.emplace_back([&] {
      for (int64_t span = window.Claim(); span >= 0; span = window.Claim()) {
        if (cancelled.load()) {
          window.Fail(absl::CancelledError("pull cancelled"));
          return;
        }
        const int64_t start = ztoc->SpanCompressedStart(span);
        absl::StatusOr<std::string> compressed =
            blob.ReadAt(start, ztoc->SpanCompressedEnd(span) - start);
        absl::StatusOr<std::string> decoded =
            compressed.ok() ? index::DecodeSpan(*ztoc, span, *compressed) : compressed.status();
        if (!decoded.ok()) {
          window.Fail(Annotate(decoded.status(), absl::StrCat("span ", span)));
          return;
        }
        window.Put(span, *std::move(decoded));
      }
    });
  }
  auto join = [&] {
    for (std::thread& w : workers) w.join();
    workers.clear();
  };
  auto stop = [&](absl::Status s) {
    window.Fail(s);
    join();
    return s;
  };

  Sha256Hasher blob_hash;
  int64_t hashed = 0;
  // Hashes the compressed blob up to `end`, reading it back from the temp file (page cache).
  auto hash_to = [&](int64_t end) -> absl::Status {
    while (hashed < end) {
      const int64_t n = std::min(kHashPiece, end - hashed);
      SS_ASSIGN_OR_RETURN(std::string piece, blob.ReadAt(hashed, n));
      blob_hash.Update(piece);
      hashed += n;
    }
    return absl::OkStatus();
  };

  int64_t produced = 0;
  for (int64_t span = 0; span < spans;) {
    if (cancelled.load()) return stop(absl::CancelledError("pull cancelled"));
    absl::StatusOr<std::string> bytes = window.Take(span, absl::Milliseconds(100));
    if (absl::IsDeadlineExceeded(bytes.status())) continue;
    if (!bytes.ok()) return stop(bytes.status());
    if (static_cast<int64_t>(bytes->size()) !=
        ztoc->SpanUncompressedEnd(span) - ztoc->SpanUncompressedStart(span)) {
      return stop(absl::DataLossError(absl::StrCat("span ", span, " inflated to ",
                                                   bytes->size(), " bytes, not as indexed")));
    }
    produced += static_cast<int64_t>(bytes->size());
    absl::Status s = unpacker->Write(*bytes);
    if (s.ok()) s = hash_to(ztoc->SpanCompressedEnd(span));
    if (!s.ok()) return stop(s);
    progress.bytes_unpacked.store(hashed, std::memory_order_relaxed);
    ++span;
  }
  join();
  SS_RETURN_IF_ERROR(hash_to(layer.blob.size));
  if (produced != ztoc->uncompressed_archive_size) {
    return absl::DataLossError(absl::StrCat("spans inflated to ", produced, " bytes, the zTOC says ",
                                            ztoc->uncompressed_archive_size));
  }
  // Checked before Finish moves the directory into place: a wrong blob leaves nothing.
  const Digest digest = blob_hash.Finish();
  if (digest != layer.blob.digest) {
    return absl::DataLossError(absl::StrCat("layer digest mismatch: expected ",
                                            layer.blob.digest.str(), ", got ", digest.str()));
  }
  SS_ASSIGN_OR_RETURN(unpack::LayerUnpackResult result, unpacker->Finish());
  result.digest = digest;
  result.compression = remote::Compression::kGzip;
  result.compressed_bytes = layer.blob.size;
  return result;
}

std::unique_ptr<ZtocSpanInflater> LoadSpanInflater(remote::RegistryClient& client,
                                                   const remote::Reference& image,
                                                   const remote::Platform& platform,
                                                   ZtocSpanInflaterOptions options) {
  absl::StatusOr<index::DiscoveredIndex> found =
      index::DiscoverSociIndex(client, image, platform);
  if (!found.ok()) {
    if (!absl::IsNotFound(found.status())) {
      log::Warn("SOCI index lookup failed; inflating layers sequentially",
                {{"image", image.String()}, {"error", found.status().ToString()}});
    }
    return nullptr;
  }
  auto inflater = std::make_unique<ZtocSpanInflater>(std::move(options));
  for (const remote::Descriptor& layer : found->image.manifest.layers) {
    const remote::Descriptor* desc = found->ZtocFor(layer.digest);
    if (desc == nullptr) continue;  // small layers have none
    absl::StatusOr<index::Ztoc> ztoc = index::FetchZtoc(client, image, *desc);
    if (!ztoc.ok()) {
      log::Warn("zTOC unreadable; that layer inflates sequentially",
                {{"layer", layer.digest.str()}, {"error", ztoc.status().ToString()}});
      continue;
    }
    inflater->Add(layer.digest, std::make_shared<const index::Ztoc>(*std::move(ztoc)));
  }
  log::Info("SOCI index found: spans inflate in parallel",
            {{"image", image.String()}, {"index", found->digest.str()},
             {"source", found->source}, {"ztocs", absl::StrCat(inflater->size())}});
  return inflater;
}

}  // namespace slipstream::plugin
