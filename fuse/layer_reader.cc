// SPDX-License-Identifier: Apache-2.0
#include "fuse/layer_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"
#include "index/span_decoder.h"

namespace slipstream::fuse {
namespace {

std::atomic<uint64_t> next_cache_owner{1};

}  // namespace

// One fetch of one span in progress; readers that need the span meanwhile wait on it.
struct LayerReader::Flight {
  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::Status status ABSL_GUARDED_BY(mu);
  SpanCache::Span data ABSL_GUARDED_BY(mu);

  void Finish(const absl::Status& s, SpanCache::Span d) {
    absl::MutexLock lock(&mu);
    status = s;
    data = std::move(d);
    done = true;
  }

  absl::StatusOr<SpanCache::Span> Wait(absl::Duration timeout, int64_t span) {
    absl::MutexLock lock(&mu);
    if (!mu.AwaitWithTimeout(absl::Condition(&done), timeout)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "span ", span, " still being fetched by another reader after ",
          absl::FormatDuration(timeout)));
    }
    if (!status.ok()) return status;
    return data;
  }
};

std::shared_ptr<LayerReader> LayerReader::Create(std::shared_ptr<const index::Ztoc> ztoc,
                                                 std::unique_ptr<remote::BlobReader> blob,
                                                 SpanCache* cache, ReadAheadPool* pool,
                                                 LayerReaderOptions options) {
  return std::shared_ptr<LayerReader>(
      new LayerReader(std::move(ztoc), std::move(blob), cache, pool, options));
}

LayerReader::LayerReader(std::shared_ptr<const index::Ztoc> ztoc,
                         std::unique_ptr<remote::BlobReader> blob, SpanCache* cache,
                         ReadAheadPool* pool, LayerReaderOptions options)
    : ztoc_(std::move(ztoc)),
      blob_(std::move(blob)),
      cache_(cache),
      pool_(pool),
      options_(options),
      cache_owner_(next_cache_owner.fetch_add(1)) {
  fetched_.assign(static_cast<size_t>(ztoc_->SpanCount()), false);
}

LayerReader::~LayerReader() { cache_->EraseOwner(cache_owner_); }

absl::StatusOr<std::string> LayerReader::Read(int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) {
    ++counters_.read_errors;
    return absl::InvalidArgumentError(absl::StrCat("read of ", length, " bytes at ", offset));
  }
  const index::Ztoc& z = *ztoc_;
  std::string out;
  if (offset >= z.uncompressed_archive_size || length == 0) return out;
  const int64_t end = offset + std::min(length, z.uncompressed_archive_size - offset);
  const int64_t first = z.SpanForUncompressedOffset(offset);
  const int64_t last = z.SpanForUncompressedOffset(end - 1);
  absl::StatusOr<std::vector<SpanCache::Span>> spans = GetSpans(first, last, false);
  if (!spans.ok()) {
    ++counters_.read_errors;
    return spans.status();
  }
  out.reserve(static_cast<size_t>(end - offset));
  for (int64_t s = first; s <= last; ++s) {
    const std::string& data = *(*spans)[s - first];
    const int64_t start = z.SpanUncompressedStart(s);
    const int64_t from = std::max(offset, start) - start;
    const int64_t to = std::min<int64_t>(end - start, static_cast<int64_t>(data.size()));
    if (to > from) out.append(data, from, to - from);
  }
  return out;
}

absl::StatusOr<std::vector<SpanCache::Span>> LayerReader::GetSpans(int64_t first, int64_t last,
                                                                   bool readahead) {
  std::vector<SpanCache::Span> out(static_cast<size_t>(last - first + 1));
  std::vector<Claim> mine, waits;
  {
    absl::MutexLock lock(&mu_);
    for (int64_t s = first; s <= last; ++s) {
      if (auto it = flights_.find(s); it != flights_.end()) {
        waits.push_back({s, it->second});
      } else if (SpanCache::Span cached = cache_->Get(cache_owner_, s)) {
        out[s - first] = std::move(cached);
      } else {
        auto flight = std::make_shared<Flight>();
        flights_[s] = flight;
        mine.push_back({s, std::move(flight)});
      }
    }
  }
  const int64_t hits = static_cast<int64_t>(out.size() - mine.size() - waits.size());
  counters_.cache_hits += hits;
  counters_.cache_misses += static_cast<int64_t>(mine.size());
  counters_.shared_fetches += static_cast<int64_t>(waits.size());

  // Fetch our claims in runs of adjacent spans. After a failed run, the remaining claims
  // fail with the same error rather than each retrying the registry on their own.
  absl::Status error;
  const index::Ztoc& z = *ztoc_;
  for (size_t begin = 0; begin < mine.size();) {
    size_t end = begin + 1;
    while (end < mine.size() && mine[end].span == mine[end - 1].span + 1 &&
           z.SpanCompressedEnd(mine[end].span) - z.SpanCompressedStart(mine[begin].span) <=
               options_.max_fetch_bytes) {
      ++end;
    }
    if (error.ok()) {
      absl::Status s = FetchRun(mine, begin, end, readahead, &out, first);
      if (!s.ok()) error = s;
    } else {
      for (size_t i = begin; i < end; ++i) Complete(mine[i], error, nullptr);
    }
    begin = end;
  }
  for (const Claim& w : waits) {
    absl::StatusOr<SpanCache::Span> got = w.flight->Wait(options_.wait_timeout, w.span);
    if (!got.ok()) {
      if (error.ok()) error = got.status();
      continue;
    }
    out[w.span - first] = *std::move(got);
  }
  if (!error.ok()) return error;
  return out;
}

absl::Status LayerReader::FetchRun(const std::vector<Claim>& claims, size_t begin, size_t end,
                                   bool readahead, std::vector<SpanCache::Span>* out,
                                   int64_t first) {
  const index::Ztoc& z = *ztoc_;
  const int64_t first_span = claims[begin].span;
  const int64_t last_span = claims[end - 1].span;
  const int64_t base = z.SpanCompressedStart(first_span);
  const int64_t length = z.SpanCompressedEnd(last_span) - base;
  static metrics::Histogram& fetch_seconds = metrics::Global().AddHistogram(
      "slipstream_span_fetch_seconds",
      "Lazy mode: time to fetch one run of adjacent compressed spans (chunk cache or registry).",
      metrics::LatencyBuckets());
  const absl::Time started = absl::Now();
  absl::StatusOr<std::string> bytes = blob_->ReadAt(base, length);
  fetch_seconds.ObserveDuration(absl::Now() - started);
  ++counters_.fetches;
  absl::Status status;
  if (!bytes.ok()) {
    status = bytes.status();
  } else {
    counters_.compressed_bytes_fetched += static_cast<int64_t>(bytes->size());
    if (static_cast<int64_t>(bytes->size()) != length) {
      status = absl::DataLossError(
          absl::StrCat("got ", bytes->size(), " of ", length, " bytes at ", base));
    }
  }
  if (!status.ok()) {
    status = Annotate(status, absl::StrCat("fetch spans ", first_span, "-", last_span, " of ",
                                           blob_->digest().Short()));
    for (size_t i = begin; i < end; ++i) Complete(claims[i], status, nullptr);
    return status;
  }
  absl::Status first_error;
  bool corrupt = false;
  for (size_t i = begin; i < end; ++i) {
    const int64_t span = claims[i].span;
    std::string_view compressed = std::string_view(*bytes).substr(
        z.SpanCompressedStart(span) - base, z.SpanCompressedEnd(span) - z.SpanCompressedStart(span));
    absl::StatusOr<std::string> data = index::DecodeSpan(z, span, compressed);
    if (!data.ok()) {
      absl::Status s = Annotate(data.status(), absl::StrCat("layer ", blob_->digest().Short()));
      Complete(claims[i], s, nullptr);
      if (first_error.ok()) first_error = s;
      corrupt = true;
      continue;
    }
    auto shared = std::make_shared<const std::string>(*std::move(data));
    ++counters_.spans_fetched;
    if (readahead) ++counters_.readahead_spans;
    (*out)[span - first] = shared;
    Complete(claims[i], absl::OkStatus(), std::move(shared));
  }
  // A span that does not match its zTOC digest (or does not inflate) came corrupted from the
  // registry or the disk: drop the cached copy of the blob, so that the next read fetches it
  // afresh instead of failing on the same bytes forever.
  if (corrupt) blob_->ForgetCached();
  return first_error;
}

void LayerReader::Complete(const Claim& claim, const absl::Status& status, SpanCache::Span data) {
  {
    // The span enters the cache before its flight leaves the map, so a reader that finds
    // neither really has to fetch.
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      cache_->Insert(cache_owner_, claim.span, data);
      MarkFetchedLocked(claim.span);
    }
    auto it = flights_.find(claim.span);
    if (it != flights_.end() && it->second == claim.flight) flights_.erase(it);
  }
  claim.flight->Finish(status, std::move(data));
}

void LayerReader::MarkFetchedLocked(int64_t span) {
  if (fetched_[span]) return;
  fetched_[span] = true;
  ++fetched_count_;
  // Spans share boundary bytes and the first one skips the gzip header: count the blob as
  // partitioned at span ends, so a complete layer adds up to exactly the blob's size.
  const int64_t begin = span == 0 ? 0 : ztoc_->SpanCompressedEnd(span - 1);
  fetched_compressed_ += ztoc_->SpanCompressedEnd(span) - begin;
}

void LayerReader::ReadAhead(int64_t first, int64_t last, int64_t min_spans) {
  if (pool_ == nullptr) return;
  first = std::max<int64_t>(first, 0);
  last = std::min<int64_t>(last, ztoc_->SpanCount() - 1);
  std::vector<int64_t> spans;
  {
    absl::MutexLock lock(&mu_);
    for (int64_t s = first; s <= last; ++s) {
      if (flights_.contains(s) || queued_.contains(s) || cache_->Contains(cache_owner_, s)) {
        continue;
      }
      spans.push_back(s);
    }
    if (static_cast<int64_t>(spans.size()) < min_spans) return;
    queued_.insert(spans.begin(), spans.end());
  }
  if (spans.empty()) return;

  // Tasks of adjacent spans, each fetched with one ReadAt (a registry request costs far more
  // than its bytes: docker-registry spends ~5 ms of CPU per request, ~1 ms per MiB), then
  // verified and inflated on a pool thread. When the first span asked for is among them, a
  // reader is about to wait for it: the first tasks are small (1, then 2 spans) so that its
  // next spans arrive before the larger fetches behind them.
  const size_t per_task = static_cast<size_t>(std::max<int64_t>(options_.readahead_spans_per_fetch, 1));
  size_t size = spans.front() == first ? 1 : per_task;
  std::weak_ptr<LayerReader> weak = weak_from_this();
  for (size_t begin = 0; begin < spans.size(); begin += size, size = std::min(per_task, size * 2)) {
    std::vector<int64_t> share(spans.begin() + static_cast<std::ptrdiff_t>(begin),
                               spans.begin() + static_cast<std::ptrdiff_t>(
                                                   std::min(spans.size(), begin + size)));
    const std::vector<int64_t> dropped = share;
    bool scheduled = pool_->TrySchedule([weak, share = std::move(share)] {
      if (std::shared_ptr<LayerReader> self = weak.lock()) self->RunReadAhead(share);
    });
    if (!scheduled) {
      absl::MutexLock lock(&mu_);
      for (int64_t s : dropped) queued_.erase(s);
    }
  }
}

void LayerReader::RunReadAhead(const std::vector<int64_t>& spans) {
  {
    absl::MutexLock lock(&mu_);
    for (int64_t s : spans) queued_.erase(s);
  }
  for (size_t begin = 0; begin < spans.size();) {
    size_t end = begin + 1;
    while (end < spans.size() && spans[end] == spans[end - 1] + 1) ++end;
    absl::StatusOr<std::vector<SpanCache::Span>> got =
        GetSpans(spans[begin], spans[end - 1], /*readahead=*/true);
    if (!got.ok()) {
      // Nobody asked for these bytes yet: the reader that does will see (and report) the
      // error itself.
      log::Debug("read-ahead failed", {{"layer", blob_->digest().Short()},
                                       {"error", got.status().ToString()}});
      return;
    }
    begin = end;
  }
}

std::vector<int64_t> LayerReader::UnfetchedSpans() const {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> out;
  out.reserve(fetched_.size() - static_cast<size_t>(fetched_count_));
  for (size_t s = 0; s < fetched_.size(); ++s) {
    if (!fetched_[s]) out.push_back(static_cast<int64_t>(s));
  }
  return out;
}

absl::Status LayerReader::FeedSpan(int64_t span, std::string data) {
  const index::Ztoc& z = *ztoc_;
  if (span < 0 || span >= z.SpanCount()) {
    return absl::OutOfRangeError(absl::StrCat("span ", span, " of ", z.SpanCount()));
  }
  const int64_t size = z.SpanUncompressedEnd(span) - z.SpanUncompressedStart(span);
  if (static_cast<int64_t>(data.size()) != size) {
    return absl::InvalidArgumentError(
        absl::StrCat("span ", span, " has ", size, " bytes, got ", data.size()));
  }
  auto shared = std::make_shared<const std::string>(std::move(data));
  absl::MutexLock lock(&mu_);
  if (!cache_->Contains(cache_owner_, span)) {
    cache_->Insert(cache_owner_, span, std::move(shared), /*cold=*/true);
  }
  MarkFetchedLocked(span);
  ++counters_.spans_fed;
  return absl::OkStatus();
}

LayerProgress LayerReader::Progress() const {
  LayerProgress p;
  p.spans_total = ztoc_->SpanCount();
  p.compressed_bytes_total = blob_->size();
  p.uncompressed_bytes_total = ztoc_->uncompressed_archive_size;
  absl::MutexLock lock(&mu_);
  p.spans_fetched = fetched_count_;
  p.compressed_bytes_fetched = fetched_compressed_;
  return p;
}

LayerCounters LayerReader::Counters() const {
  LayerCounters c;
  c.fetches = counters_.fetches.load();
  c.compressed_bytes_fetched = counters_.compressed_bytes_fetched.load();
  c.spans_fetched = counters_.spans_fetched.load();
  c.cache_hits = counters_.cache_hits.load();
  c.cache_misses = counters_.cache_misses.load();
  c.shared_fetches = counters_.shared_fetches.load();
  c.read_errors = counters_.read_errors.load();
  c.readahead_spans = counters_.readahead_spans.load();
  c.spans_fed = counters_.spans_fed.load();
  return c;
}

}  // namespace slipstream::fuse
