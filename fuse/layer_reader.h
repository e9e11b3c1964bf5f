// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fuse/read_ahead_pool.h"
#include "fuse/span_cache.h"
#include "index/ztoc.h"
#include "remote/blob_reader.h"

namespace slipstream::fuse {

struct LayerReaderOptions {
  // Adjacent missing spans are fetched with one BlobReader::ReadAt of at most this many
  // compressed bytes (at least one span per fetch).
  int64_t max_fetch_bytes = int64_t{16} << 20;
  // Read-ahead fetches at most this many adjacent spans with one ReadAt (and inflates them
  // on one pool thread).
  int64_t readahead_spans_per_fetch = 4;
  // Longest wait for a span another reader is fetching. The fetcher itself is bounded by the
  // BlobReader's retry policy; this only guards against a fetch that never ends.
  absl::Duration wait_timeout = absl::Minutes(5);
};

// What reading a layer cost so far; cumulative, for metrics and tests.
struct LayerCounters {
  int64_t fetches = 0;                   // BlobReader::ReadAt calls
  int64_t compressed_bytes_fetched = 0;
  int64_t spans_fetched = 0;             // spans fetched, verified and inflated
  int64_t cache_hits = 0;                // spans served from the span cache
  int64_t cache_misses = 0;              // spans this reader had to fetch itself
  int64_t shared_fetches = 0;            // spans awaited from another reader's fetch
  int64_t read_errors = 0;               // Read calls that failed
  int64_t readahead_spans = 0;           // spans fetched by read-ahead
  int64_t spans_fed = 0;                 // spans handed in through FeedSpan
};

// How much of a layer has been fetched (for `slipstream status` and background completion).
// A span counts once it was fetched and verified, or fed in, even if the in-memory cache has
// dropped it since.
struct LayerProgress {
  int64_t spans_total = 0;
  int64_t spans_fetched = 0;
  int64_t compressed_bytes_total = 0;    // the layer blob's size
  int64_t compressed_bytes_fetched = 0;  // blob bytes of the fetched spans (the blob cut at
                                         // span ends: a complete layer is the blob size)
  int64_t uncompressed_bytes_total = 0;
  bool complete() const { return spans_fetched == spans_total; }
};

// Random access to the uncompressed tar stream of one layer through its zTOC, for LayerFs:
// a read fetches only the spans covering it, each run of adjacent missing spans with one
// ReadAt, verifies each span's sha256 and inflates it from its checkpoint
// (index::DecodeSpan), and keeps inflated spans in the shared SpanCache. Concurrent readers
// of one span fetch it once (single-flight): later ones wait for the first, for at most
// `wait_timeout`. Sequential readers ask for read-ahead, which fetches the next spans on
// the ReadAheadPool.
//
// Hooks for background completion: UnfetchedSpans() says what is still remote, FeedSpan()
// hands in spans fetched elsewhere, Progress() reports both.
//
// Created through Create() (read-ahead tasks keep it alive with shared_from_this). Owns the
// BlobReader; borrows the cache and the pool, which must outlive it. Thread-safe. Lock order:
// mu_ before the SpanCache's mutex; no I/O under mu_.
class LayerReader : public std::enable_shared_from_this<LayerReader> {
 public:
  // `ztoc` must be validated and describe `blob`. `pool` may be null (no read-ahead).
  static std::shared_ptr<LayerReader> Create(std::shared_ptr<const index::Ztoc> ztoc,
                                             std::unique_ptr<remote::BlobReader> blob,
                                             SpanCache* cache, ReadAheadPool* pool,
                                             LayerReaderOptions options = {});
  ~LayerReader();
  LayerReader(const LayerReader&) = delete;
  LayerReader& operator=(const LayerReader&) = delete;

  const index::Ztoc& ztoc() const { return *ztoc_; }
  const remote::BlobReader& blob() const { return *blob_; }

  // Up to `length` bytes of the uncompressed tar stream at `offset` (fewer at its end, empty
  // past it). InvalidArgument for negative arguments; the BlobReader's errors (annotated with
  // the spans and the blob; Unavailable after its retries, NotFound, ...); DataLoss when a
  // span does not match its digest or does not inflate; DeadlineExceeded when another
  // reader's fetch of a needed span outlasts wait_timeout.
  absl::StatusOr<std::string> Read(int64_t offset, int64_t length);

  // Asks for spans [first, last] (clamped to the layer) to be fetched in the background,
  // skipping those cached, being fetched or already queued; nothing when fewer than
  // `min_spans` are left after that (a sequential reader then asks again a few reads later,
  // for a batch: a registry request costs far more than its bytes). Best effort: silently
  // does nothing when the pool is busy or absent.
  void ReadAhead(int64_t first, int64_t last, int64_t min_spans = 1);

  // Spans never fetched nor fed, in increasing order.
  std::vector<int64_t> UnfetchedSpans() const;

  // Hands in span `span`'s inflated bytes, already verified by the caller (e.g. the output
  // of index::InflateAllSpans): they go into the cache as least recently used and the span
  // counts as fetched. OutOfRange for a bad span; InvalidArgument when the size is not the
  // span's uncompressed size.
  absl::Status FeedSpan(int64_t span, std::string data);

  LayerProgress Progress() const;
  LayerCounters Counters() const;

 private:
  struct Flight;
  struct Claim {
    int64_t span;
    std::shared_ptr<Flight> flight;
  };
  struct AtomicCounters {
    std::atomic<int64_t> fetches{0}, compressed_bytes_fetched{0}, spans_fetched{0},
        cache_hits{0}, cache_misses{0}, shared_fetches{0}, read_errors{0}, readahead_spans{0},
        spans_fed{0};
  };

  LayerReader(std::shared_ptr<const index::Ztoc> ztoc, std::unique_ptr<remote::BlobReader> blob,
              SpanCache* cache, ReadAheadPool* pool, LayerReaderOptions options);

  // The inflated spans [first, last], from the cache, another reader's fetch or a fetch of
  // their own.
  absl::StatusOr<std::vector<SpanCache::Span>> GetSpans(int64_t first, int64_t last,
                                                        bool readahead);
  // Fetches claims[begin, end) (adjacent spans) with one ReadAt, decodes them, publishes them
  // and completes their flights. Returns the first error.
  absl::Status FetchRun(const std::vector<Claim>& claims, size_t begin, size_t end,
                        bool readahead, std::vector<SpanCache::Span>* out, int64_t first);
  // Publishes a span's outcome: cache and progress on success, then wakes its waiters.
  void Complete(const Claim& claim, const absl::Status& status, SpanCache::Span data);
  void MarkFetchedLocked(int64_t span) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunReadAhead(const std::vector<int64_t>& spans);

  const std::shared_ptr<const index::Ztoc> ztoc_;
  const std::unique_ptr<remote::BlobReader> blob_;
  SpanCache* const cache_;
  ReadAheadPool* const pool_;
  const LayerReaderOptions options_;
  const uint64_t cache_owner_;  // this reader's key space in the shared cache

  mutable absl::Mutex mu_;
  absl::flat_hash_map<int64_t, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<int64_t> queued_ ABSL_GUARDED_BY(mu_);  // read-ahead waiting in the pool
  std::vector<bool> fetched_ ABSL_GUARDED_BY(mu_);
  int64_t fetched_count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t fetched_compressed_ ABSL_GUARDED_BY(mu_) = 0;

  AtomicCounters counters_;
};

}  // namespace slipstream::fuse
