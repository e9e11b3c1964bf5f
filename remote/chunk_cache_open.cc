// SPDX-License-Identifier: Apache-2.0
// ChunkCache::Open: locking the directory and rebuilding the index from the chunk files.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "remote/chunk_cache.h"
#include "remote/chunk_cache_format.h"

namespace slipstream::remote {
namespace {

// Names in `path`, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(path.c_str()), closedir);
  if (dir == nullptr) return LastErrnoStatus(absl::StrCat("opendir ", path));
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* entry = readdir(dir.get())) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  if (errno != 0) return LastErrnoStatus(absl::StrCat("readdir ", path));
  return names;
}

// One chunk file found on disk.
struct Found {
  ChunkKey key;
  int64_t file_bytes = 0;
  timespec mtime{};
};

struct ScanResult {
  std::vector<Found> chunks;
  int64_t corrupt = 0;
};

bool IsAlgorithmDir(std::string_view name) { return name == "sha256" || name == "sha512"; }

// Lists "<algorithm>/<prefix>/<hex>/" and keeps the well-formed chunk files of the right
// size. A damaged subdirectory or a foreign file is skipped with a warning rather than
// failing Open: one stray entry should not disable the whole cache.
void ScanBlobDir(const std::string& root, const std::string& algorithm,
                 const std::string& prefix, const std::string& hex, ScanResult* out) {
  const std::string blob_dir = absl::StrCat(root, "/", algorithm, "/", prefix, "/", hex);
  auto names = ListDir(blob_dir);
  if (!names.ok()) {
    log::Warn("chunk cache: skipping directory", {{"error", names.status().ToString()}});
    return;
  }
  for (const std::string& name : *names) {
    const std::string path = absl::StrCat(blob_dir, "/", name);
    auto key = ParseChunkRelativePath(algorithm, prefix, hex, name);
    struct stat st;
    if (!key.ok() || lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      log::Warn("chunk cache: ignoring unknown file", {{"path", path}});
      continue;
    }
    if (st.st_size != ChunkFileBytes(*key)) {
      // A torn write that survived a crash (the rename was durable, the data was not).
      log::Warn("chunk cache: deleting torn chunk file",
                {{"path", path}, {"bytes", static_cast<int64_t>(st.st_size)}});
      unlink(path.c_str());
      ++out->corrupt;
      continue;
    }
    out->chunks.push_back(Found{*std::move(key), static_cast<int64_t>(st.st_size), st.st_mtim});
  }
}

absl::StatusOr<ScanResult> ScanChunks(const std::string& root) {
  ScanResult out;
  SS_ASSIGN_OR_RETURN(std::vector<std::string> algorithms, ListDir(root));
  for (const std::string& algorithm : algorithms) {
    // "lock", "tmp" and anything else we did not write.
    if (!IsAlgorithmDir(algorithm)) continue;
    auto prefixes = ListDir(absl::StrCat(root, "/", algorithm));
    if (!prefixes.ok()) {
      log::Warn("chunk cache: skipping directory", {{"error", prefixes.status().ToString()}});
      continue;
    }
    for (const std::string& prefix : *prefixes) {
      auto blobs = ListDir(absl::StrCat(root, "/", algorithm, "/", prefix));
      if (!blobs.ok()) {
        log::Warn("chunk cache: skipping directory", {{"error", blobs.status().ToString()}});
        continue;
      }
      for (const std::string& hex : *blobs) ScanBlobDir(root, algorithm, prefix, hex, &out);
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ChunkCache>> ChunkCache::Open(ChunkCacheOptions options) {
  if (options.dir.empty()) return absl::InvalidArgumentError("chunk cache: empty directory");
  if (options.max_bytes < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk cache ", options.dir, ": negative max_bytes"));
  }
  while (options.dir.size() > 1 && options.dir.back() == '/') options.dir.pop_back();
  const std::string context = absl::StrCat("open chunk cache ", options.dir);

  SS_RETURN_IF_ERROR(Annotate(MakeDirs(options.dir), context));
  auto lock_fd = OpenFile(options.dir + "/lock", O_RDWR | O_CREAT, 0644);
  if (!lock_fd.ok()) return Annotate(lock_fd.status(), context);
  // flock belongs to the open file description, so this also refuses a second ChunkCache
  // in the same process. Two indexes over one directory would each evict blind to the
  // other's files, and each would delete the other's temp files on open.
  if (flock(lock_fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat(context, ": in use by another process or ChunkCache"));
    }
    return LastErrnoStatus(absl::StrCat(context, ": flock"));
  }
  // Temp files left by a crash are chunks nobody will finish writing.
  const std::string tmp = options.dir + "/tmp";
  SS_RETURN_IF_ERROR(Annotate(RemoveAll(tmp), context));
  SS_RETURN_IF_ERROR(Annotate(MakeDirs(tmp), context));

  std::unique_ptr<ChunkCache> cache =
      absl::WrapUnique(new ChunkCache(std::move(options), *std::move(lock_fd)));
  SS_RETURN_IF_ERROR(Annotate(cache->LoadIndex(), context));
  ChunkCacheStats stats = cache->stats();
  log::Info("chunk cache opened", {{"dir", cache->dir()},
                                   {"chunks", stats.stored_chunks},
                                   {"bytes", stats.stored_bytes},
                                   {"corrupt", stats.corrupt},
                                   {"evicted", stats.evictions}});
  return cache;
}

absl::Status ChunkCache::LoadIndex() {
  SS_ASSIGN_OR_RETURN(ScanResult scan, ScanChunks(options_.dir));
  // Oldest first, so that pushing each to the front leaves the newest there.
  std::sort(scan.chunks.begin(), scan.chunks.end(), [](const Found& a, const Found& b) {
    return std::tie(a.mtime.tv_sec, a.mtime.tv_nsec) < std::tie(b.mtime.tv_sec, b.mtime.tv_nsec);
  });
  std::vector<std::string> doomed;
  {
    absl::MutexLock lock(&mu_);
    stats_.corrupt += scan.corrupt;
    for (Found& found : scan.chunks) {
      auto [it, inserted] = index_.try_emplace(found.key);
      if (!inserted) continue;  // cannot happen: one file per key
      Entry& entry = it->second;
      lru_.push_front(found.key);
      entry.lru = lru_.begin();
      entry.generation = next_generation_++;
      entry.file_bytes = found.file_bytes;
      entry.touched = absl::TimeFromTimespec(found.mtime);
      stats_.stored_bytes += found.file_bytes;
      ++stats_.stored_chunks;
    }
    // The bound may have shrunk since the last run.
    doomed = EvictLocked();
  }
  RemoveFiles(doomed);
  return absl::OkStatus();
}

}  // namespace slipstream::remote
