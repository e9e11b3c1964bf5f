// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/fd.h"
#include "remote/chunk_cache_key.h"

namespace slipstream::remote {

struct ChunkCacheOptions {
  // Directory that holds the cache; created when missing. One live ChunkCache per directory.
  std::string dir;
  // Upper bound on the bytes of chunk files (headers included). Least recently used chunks
  // are evicted past it. A chunk being read at that moment is never evicted, so the total may
  // briefly exceed the bound.
  int64_t max_bytes = int64_t{10} << 30;
};

// Counters since Open(). Bytes are payload bytes unless said otherwise.
struct ChunkCacheStats {
  int64_t hits = 0;          // requests served from disk
  int64_t hit_bytes = 0;
  int64_t misses = 0;        // requests not served from disk (fetched or joined a fetch)
  int64_t miss_bytes = 0;    // bytes fetched into the cache (once per fetch, not per waiter)
  int64_t fetches = 0;       // fetches started: one per single-flight group
  int64_t joined = 0;        // misses that waited for another caller's fetch
  int64_t fetch_errors = 0;  // fetches that failed (their error is never cached)
  int64_t write_errors = 0;  // chunks that could not be stored (the data was still served)
  int64_t evictions = 0;     // chunk files removed to stay under max_bytes
  int64_t corrupt = 0;       // chunk files found torn or damaged, deleted and treated as misses
  int64_t stored_bytes = 0;  // current size of all chunk files, headers included
  int64_t stored_chunks = 0; // current number of chunk files
};

// An on-disk, content-addressed cache of blob byte ranges (chunks), keyed by ChunkKey.
// Shared by both pull modes and the CLI through CachedBlobReader. Each chunk is one file
// (layout and format in remote/chunk_cache_format.h) written to "<dir>/tmp" and renamed into
// place, carrying its key and CRC-32C checksums, so a crash leaves either no file or a file
// that is detected as damaged, deleted and fetched again. The index (sizes, LRU order) lives
// in memory and is rebuilt from the files by Open(), so chunks survive a restart.
//
// A miss is fetched once however many callers ask at the same time (single-flight): the
// first caller fetches, the others wait for its result. Errors reach every waiter and are
// not cached. No disk I/O happens under the index lock, and no descriptor stays open.
//
// Owned by the daemon (or the CLI process) through std::unique_ptr and shared by pointer
// with every reader; it must outlive them and every Fill it handed out. Thread-safe.
// The directory is locked (flock) for the cache's lifetime: a second ChunkCache on the same
// directory, in this or another process, fails to open.
class ChunkCache {
 public:
  // Opens (creating if needed) the cache in `options.dir`: locks it, deletes temp leftovers
  // of an earlier run, and rebuilds the index from the chunk files, ordered by their mtime
  // (the cache refreshes it on hits, at most once a minute per chunk). Files of the wrong
  // size are deleted and counted as corrupt; unknown files are left alone. Checksums are
  // verified on read, not here, so opening a large cache costs one stat per file.
  // InvalidArgument for an empty dir or max_bytes < 0; FailedPrecondition when another
  // ChunkCache holds the directory; I/O errors as ErrnoToStatus.
  static absl::StatusOr<std::unique_ptr<ChunkCache>> Open(ChunkCacheOptions options);

  ~ChunkCache();
  ChunkCache(const ChunkCache&) = delete;
  ChunkCache& operator=(const ChunkCache&) = delete;

  // The shared outcome of one fetch; defined in chunk_cache.cc.
  struct Flight;

  // The right and duty to fetch one missing chunk, handed to exactly one caller per key at a
  // time by Acquire(). Concurrent callers of that key wait for Complete or Fail. Destroying
  // a Fill that was neither completed nor failed fails the waiters with Aborted.
  // Move-only; not thread-safe (one owner).
  class Fill {
   public:
    Fill(ChunkCache* cache, ChunkKey key, std::shared_ptr<Flight> flight);
    ~Fill();
    Fill(Fill&&) noexcept = default;
    Fill& operator=(Fill&&) = delete;
    Fill(const Fill&) = delete;

    const ChunkKey& key() const { return key_; }
    // Hands `data` to every waiter, then stores it. `data.size()` must equal key().length;
    // otherwise the waiters get DataLoss, nothing is stored, and DataLoss is returned. A
    // failure to store is not an error here (the data is good): it is logged and counted
    // in write_errors. Call at most once, and not after Fail.
    absl::Status Complete(std::string_view data);
    // Hands `status` (not OK) to every waiter. Nothing is cached, so the next caller
    // fetches again. Call at most once, and not after Complete.
    void Fail(const absl::Status& status);

   private:
    ChunkCache* cache_;
    ChunkKey key_;
    std::shared_ptr<Flight> flight_;  // null once settled
  };

  // A chunk that another caller is fetching. Wait() blocks until that fetch settles and
  // returns its bytes or its error. Copyable; thread-safe.
  class Pending {
   public:
    explicit Pending(std::shared_ptr<Flight> flight) : flight_(std::move(flight)) {}
    absl::StatusOr<std::string> Wait() const;

   private:
    std::shared_ptr<Flight> flight_;
  };

  // What Acquire() found for one key: exactly one member is set.
  struct Acquired {
    std::optional<std::string> hit;  // the chunk, read from disk and verified
    std::optional<Fill> fill;        // a miss nobody is fetching: the caller fetches it
    std::optional<Pending> pending;  // a miss someone else is fetching: wait for it
  };

  // The building block of GetOrFetch, for callers that fetch several chunks in one request
  // (CachedBlobReader): returns the chunk if it is on disk, else a Fill or a Pending. A
  // caller holding Fills must settle all of them before it waits on any Pending; then two
  // callers can never wait on each other. InvalidArgument for an invalid key.
  absl::StatusOr<Acquired> Acquire(const ChunkKey& key) ABSL_LOCKS_EXCLUDED(mu_);

  // Produces the bytes of one chunk on a miss; must return exactly key.length bytes.
  using Fetcher = std::function<absl::StatusOr<std::string>()>;

  // Returns the chunk from disk if present and intact; otherwise calls `fetch` once across
  // all concurrent callers of the same key, stores the result and returns it. A fetch error
  // is returned (annotated with the key) to every waiter and not cached; a result of the
  // wrong length is DataLoss. InvalidArgument for an invalid key.
  absl::StatusOr<std::string> GetOrFetch(const ChunkKey& key, const Fetcher& fetch)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The chunk if it is on disk and intact (counted as a hit), else nullopt (a miss). Never
  // waits for a fetch in progress.
  std::optional<std::string> Lookup(const ChunkKey& key) ABSL_LOCKS_EXCLUDED(mu_);

  // Stores `data` as the chunk `key`, replacing any earlier copy, and evicts as needed.
  // InvalidArgument for an invalid key or when data.size() != key.length; I/O errors as
  // ErrnoToStatus (annotated with the key).
  absl::Status Put(const ChunkKey& key, std::string_view data) ABSL_LOCKS_EXCLUDED(mu_);

  // Forgets every stored chunk of `blob` and deletes their files: for a blob whose
  // assembled content failed its digest check, so a bad chunk is never served again.
  // Fetches in flight are not affected. Returns the number of chunks removed.
  int64_t EraseBlob(const Digest& blob) ABSL_LOCKS_EXCLUDED(mu_);

  ChunkCacheStats stats() const ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& dir() const { return options_.dir; }

 private:
  struct Entry {
    int64_t file_bytes = 0;
    uint64_t generation = 0;  // tells a re-inserted entry from the one a reader saw
    int pins = 0;             // readers reading the file right now: not evictable
    absl::Time touched;       // last mtime refresh (disk LRU order across restarts)
    std::list<ChunkKey>::iterator lru;
  };

  ChunkCache(ChunkCacheOptions options, UniqueFd lock_fd);
  absl::Status LoadIndex() ABSL_LOCKS_EXCLUDED(mu_);

  std::string PathOf(const ChunkKey& key) const;
  // Reads the chunk if indexed; drops damaged or vanished files from the index.
  std::optional<std::string> ReadIfPresent(const ChunkKey& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the chunk file (temp + rename). No locks held.
  absl::Status WriteFile(const ChunkKey& key, std::string_view data);
  // Adds or refreshes the entry and returns files to delete to respect max_bytes.
  std::vector<std::string> InsertLocked(const ChunkKey& key, int64_t file_bytes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<std::string> EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EraseLocked(const ChunkKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveFiles(const std::vector<std::string>& paths);
  // Called by Fill once it settles.
  void FinishFill(const ChunkKey& key, std::string_view data, bool ok) ABSL_LOCKS_EXCLUDED(mu_);

  const ChunkCacheOptions options_;
  const std::string tmp_dir_;
  UniqueFd lock_fd_;  // holds the flock on "<dir>/lock"
  std::atomic<uint64_t> next_temp_{0};  // temp file names

  mutable absl::Mutex mu_;
  absl::flat_hash_map<ChunkKey, Entry> index_ ABSL_GUARDED_BY(mu_);
  std::list<ChunkKey> lru_ ABSL_GUARDED_BY(mu_);  // front = most recently used
  absl::flat_hash_map<ChunkKey, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(mu_);
  uint64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  ChunkCacheStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::remote
