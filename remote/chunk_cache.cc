// SPDX-License-Identifier: Apache-2.0
#include "remote/chunk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crash_point.h"
#include "common/log.h"
#include "common/status.h"
#include "remote/chunk_cache_format.h"
#include "remote/remote_metrics.h"

namespace slipstream::remote {

// The outcome of one fetch, shared by the fetcher (Fill) and its waiters (Pending). It has
// its own mutex so that waiters block without holding, or contending on, the index lock.
struct ChunkCache::Flight {
  void Publish(absl::StatusOr<std::string> result) {
    absl::MutexLock lock(&mu);
    outcome = std::move(result);
    done = true;
  }
  absl::StatusOr<std::string> Wait() {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&done));
    return outcome;
  }

  absl::Mutex mu;
  bool done ABSL_GUARDED_BY(mu) = false;
  absl::StatusOr<std::string> outcome ABSL_GUARDED_BY(mu);
};

// ---- Fill / Pending ----

ChunkCache::Fill::Fill(ChunkCache* cache, ChunkKey key, std::shared_ptr<Flight> flight)
    : cache_(cache), key_(std::move(key)), flight_(std::move(flight)) {}

ChunkCache::Fill::~Fill() {
  // A fetcher that returns early (an error path, an exception in user code) must not leave
  // its waiters blocked forever.
  if (flight_ != nullptr) {
    Fail(absl::AbortedError(absl::StrCat("fetch of chunk ", key_.ToString(), " abandoned")));
  }
}

absl::Status ChunkCache::Fill::Complete(std::string_view data) {
  if (flight_ == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("chunk ", key_.ToString(), ": fill already settled"));
  }
  if (static_cast<int64_t>(data.size()) != key_.length) {
    absl::Status status = absl::DataLossError(absl::StrCat(
        "chunk ", key_.ToString(), ": fetched ", data.size(), " bytes, want ", key_.length));
    Fail(status);
    return status;
  }
  // Waiters get the bytes before the disk write: they should not pay for our I/O. The
  // flight stays registered until the chunk is indexed, so a caller arriving in between
  // joins this (already finished) flight instead of fetching again.
  std::shared_ptr<Flight> flight = std::move(flight_);
  flight_ = nullptr;
  flight->Publish(std::string(data));
  cache_->FinishFill(key_, data, /*ok=*/true);
  return absl::OkStatus();
}

void ChunkCache::Fill::Fail(const absl::Status& status) {
  if (flight_ == nullptr) return;
  std::shared_ptr<Flight> flight = std::move(flight_);
  flight_ = nullptr;
  // Unregister first: a caller arriving after this point starts a fresh fetch rather than
  // inheriting an error from a fetch that began before it asked.
  cache_->FinishFill(key_, {}, /*ok=*/false);
  flight->Publish(status.ok() ? absl::InternalError("fetch failed without an error") : status);
}

absl::StatusOr<std::string> ChunkCache::Pending::Wait() const { return flight_->Wait(); }

// ---- ChunkCache ----

ChunkCache::ChunkCache(ChunkCacheOptions options, UniqueFd lock_fd)
    : options_(std::move(options)),
      tmp_dir_(options_.dir + "/tmp"),
      lock_fd_(std::move(lock_fd)) {}

ChunkCache::~ChunkCache() = default;

std::string ChunkCache::PathOf(const ChunkKey& key) const {
  return absl::StrCat(options_.dir, "/", ChunkRelativePath(key));
}

absl::StatusOr<ChunkCache::Acquired> ChunkCache::Acquire(const ChunkKey& key) {
  SS_RETURN_IF_ERROR(ValidateChunkKey(key));
  for (int attempt = 0;; ++attempt) {
    if (std::optional<std::string> data = ReadIfPresent(key)) {
      Acquired out;
      out.hit = std::move(data);
      return out;
    }
    absl::MutexLock lock(&mu_);
    // Another caller may have stored the chunk between our failed read and this lock; read
    // it rather than fetching again. Bounded, since a damaged file is dropped on each try.
    if (attempt < 2 && index_.contains(key)) continue;
    ++stats_.misses;
    Acquired out;
    if (auto it = flights_.find(key); it != flights_.end()) {
      ++stats_.joined;
      out.pending.emplace(it->second);
      return out;
    }
    auto flight = std::make_shared<Flight>();
    flights_.emplace(key, flight);
    ++stats_.fetches;
    Metrics().cache_misses.Add();
    out.fill.emplace(this, key, std::move(flight));
    return out;
  }
}

absl::StatusOr<std::string> ChunkCache::GetOrFetch(const ChunkKey& key, const Fetcher& fetch) {
  SS_ASSIGN_OR_RETURN(Acquired acquired, Acquire(key));
  if (acquired.hit) return std::move(*acquired.hit);
  if (acquired.pending) return acquired.pending->Wait();
  Fill& fill = *acquired.fill;
  absl::StatusOr<std::string> data = fetch();
  if (!data.ok()) {
    absl::Status status = Annotate(data.status(), absl::StrCat("fetch chunk ", key.ToString()));
    fill.Fail(status);
    return status;
  }
  SS_RETURN_IF_ERROR(fill.Complete(*data));
  return data;
}

std::optional<std::string> ChunkCache::Lookup(const ChunkKey& key) {
  if (!ValidateChunkKey(key).ok()) return std::nullopt;
  std::optional<std::string> data = ReadIfPresent(key);
  if (!data) {
    absl::MutexLock lock(&mu_);
    ++stats_.misses;
  }
  return data;
}

absl::Status ChunkCache::Put(const ChunkKey& key, std::string_view data) {
  SS_RETURN_IF_ERROR(ValidateChunkKey(key));
  if (static_cast<int64_t>(data.size()) != key.length) {
    return absl::InvalidArgumentError(absl::StrCat("put chunk ", key.ToString(), ": got ",
                                                   data.size(), " bytes"));
  }
  SS_RETURN_IF_ERROR(WriteFile(key, data));
  std::vector<std::string> doomed;
  {
    absl::MutexLock lock(&mu_);
    doomed = InsertLocked(key, ChunkFileBytes(key));
  }
  RemoveFiles(doomed);
  return absl::OkStatus();
}

ChunkCacheStats ChunkCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

std::optional<std::string> ChunkCache::ReadIfPresent(const ChunkKey& key) {
  const std::string path = PathOf(key);
  uint64_t generation = 0;
  bool touch = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    Entry& entry = it->second;
    // Pinned while we read so that eviction leaves the file alone.
    ++entry.pins;
    generation = entry.generation;
    lru_.splice(lru_.begin(), lru_, entry.lru);
    // The mtime carries LRU order across restarts. Refreshing it at most once a minute
    // keeps a hot chunk from costing a metadata write on every read.
    absl::Time now = absl::Now();
    if (now - entry.touched > absl::Minutes(1)) {
      entry.touched = now;
      touch = true;
    }
  }
  if (touch) utimensat(AT_FDCWD, path.c_str(), nullptr, 0);  // best effort: order only

  absl::StatusOr<std::string> data = ReadChunkFile(path, key);
  std::vector<std::string> doomed;
  bool dropped = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = index_.find(key);
    // The entry can have been dropped (by a reader that found it damaged) and re-created
    // since we pinned it; the generation tells whether it is still the one we read.
    const bool same = it != index_.end() && it->second.generation == generation;
    if (same) --it->second.pins;
    if (data.ok()) {
      ++stats_.hits;
      stats_.hit_bytes += key.length;
      Metrics().cache_hits.Add();
      // Our pin may have held back an eviction.
      doomed = EvictLocked();
    } else if (same) {
      EraseLocked(key);
      // A vanished file is no damage (someone removed it); anything else is.
      if (!absl::IsNotFound(data.status())) {
        ++stats_.corrupt;
        doomed.push_back(path);
        dropped = true;
      }
    }
  }
  if (dropped) {
    log::Warn("chunk cache: dropping damaged chunk",
              {{"chunk", key.ToString()}, {"error", data.status().ToString()}});
  }
  RemoveFiles(doomed);
  if (!data.ok()) return std::nullopt;
  return *std::move(data);
}

absl::Status ChunkCache::WriteFile(const ChunkKey& key, std::string_view data) {
  // The directory is ours alone (flock), so pid + counter is unique; O_EXCL makes sure.
  const std::string tmp =
      absl::StrCat(tmp_dir_, "/", getpid(), "-", next_temp_.fetch_add(1));
  const std::string path = PathOf(key);
  auto write = [&]() -> absl::Status {
    SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL, 0644));
    SS_RETURN_IF_ERROR(WriteAll(fd.get(), EncodeChunkHeader(key, data)));
    SS_RETURN_IF_ERROR(WriteAll(fd.get(), data));
    // No fsync: this is a cache. After a power loss the rename may be durable before the
    // data; the file then fails its size or checksum test, is deleted and fetched again.
    // An fsync per chunk would cost far more throughput on the pull path than that.
    if (close(fd.Release()) != 0) return LastErrnoStatus(absl::StrCat("close ", tmp));
    CrashPoint("chunk_cache.write.before_rename");
    if (rename(tmp.c_str(), path.c_str()) == 0) return absl::OkStatus();
    if (errno != ENOENT) return LastErrnoStatus(absl::StrCat("rename to ", path));
    // First chunk of this blob: create its directory only now, so a hot path of writes to
    // existing blobs costs no mkdir calls.
    SS_RETURN_IF_ERROR(MakeDirs(path.substr(0, path.rfind('/'))));
    if (rename(tmp.c_str(), path.c_str()) != 0) {
      return LastErrnoStatus(absl::StrCat("rename to ", path));
    }
    return absl::OkStatus();
  };
  absl::Status status = write();
  if (!status.ok()) {
    unlink(tmp.c_str());
    return Annotate(status, absl::StrCat("store chunk ", key.ToString()));
  }
  return absl::OkStatus();
}

void ChunkCache::FinishFill(const ChunkKey& key, std::string_view data, bool ok) {
  absl::Status written = ok ? WriteFile(key, data) : absl::OkStatus();
  std::vector<std::string> doomed;
  int64_t write_errors = 0;
  {
    absl::MutexLock lock(&mu_);
    // Index before unregistering, in one critical section: a new caller sees either the
    // flight or the entry, never neither, so it cannot start a second fetch.
    if (!ok) {
      ++stats_.fetch_errors;
    } else {
      stats_.miss_bytes += key.length;
      if (written.ok()) {
        doomed = InsertLocked(key, ChunkFileBytes(key));
      } else {
        write_errors = ++stats_.write_errors;
      }
    }
    flights_.erase(key);
  }
  // A full disk fails every write; log the first few and then every 1024th.
  if (write_errors > 0 && (write_errors <= 3 || write_errors % 1024 == 0)) {
    log::Warn("chunk cache: cannot store chunk",
              {{"error", written.ToString()}, {"write_errors", write_errors}});
  }
  RemoveFiles(doomed);
}

std::vector<std::string> ChunkCache::InsertLocked(const ChunkKey& key, int64_t file_bytes) {
  auto [it, inserted] = index_.try_emplace(key);
  Entry& entry = it->second;
  if (inserted) {
    lru_.push_front(key);
    entry.lru = lru_.begin();
    entry.generation = next_generation_++;
    ++stats_.stored_chunks;
  } else {
    stats_.stored_bytes -= entry.file_bytes;
    lru_.splice(lru_.begin(), lru_, entry.lru);
  }
  entry.file_bytes = file_bytes;
  entry.touched = absl::Now();
  stats_.stored_bytes += file_bytes;
  return EvictLocked();
}

std::vector<std::string> ChunkCache::EvictLocked() {
  std::vector<std::string> doomed;
  auto it = lru_.end();
  while (stats_.stored_bytes > options_.max_bytes && it != lru_.begin()) {
    auto victim = std::prev(it);
    auto entry = index_.find(*victim);
    if (entry->second.pins > 0) {
      it = victim;  // being read: skip it, try the next older one
      continue;
    }
    doomed.push_back(PathOf(*victim));
    ++stats_.evictions;
    EraseLocked(*victim);
  }
  return doomed;
}

int64_t ChunkCache::EraseBlob(const Digest& blob) {
  std::vector<std::string> paths;
  {
    absl::MutexLock lock(&mu_);
    std::vector<ChunkKey> keys;
    for (const auto& [key, entry] : index_) {
      if (key.blob == blob) keys.push_back(key);
    }
    for (const ChunkKey& key : keys) {
      paths.push_back(PathOf(key));
      EraseLocked(key);
    }
  }
  // Files go after the lock is released (no I/O under mu_); a reader that already opened
  // one keeps reading it, which is harmless: its caller re-checks the assembled digest.
  RemoveFiles(paths);
  return static_cast<int64_t>(paths.size());
}

void ChunkCache::EraseLocked(const ChunkKey& key) {
  auto it = index_.find(key);
  if (it == index_.end()) return;
  stats_.stored_bytes -= it->second.file_bytes;
  --stats_.stored_chunks;
  auto lru = it->second.lru;
  // `key` may live in the list node: erase the index entry before the node.
  index_.erase(it);
  lru_.erase(lru);
}

void ChunkCache::RemoveFiles(const std::vector<std::string>& paths) {
  for (const std::string& path : paths) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      absl::Status status = LastErrnoStatus(absl::StrCat("unlink ", path));
      log::Warn("chunk cache: cannot remove chunk file", {{"error", status.ToString()}});
    }
  }
}

}  // namespace slipstream::remote
