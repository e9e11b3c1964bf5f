// SPDX-License-Identifier: Apache-2.0
// RegistryClient::DownloadBlob: concurrent Range GETs written at their offsets, then one
// sequential sha256 pass over the file.
//
// Threads: DownloadBlob starts plan.concurrency - 1 short-lived worker threads (the caller is
// the last worker) and joins them before returning. Each worker blocks in the transport
// while libcurl's single loop thread moves the bytes; the pwrite happens on the worker.
#include "remote/parallel_fetch.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/fd.h"
#include "common/status.h"
#include "remote/chunk_cache.h"
#include "remote/registry_client_internal.h"

namespace slipstream::remote {

ParallelPlan PlanParallelFetch(int64_t size, const ParallelFetchOptions& opts) {
  ParallelPlan plan;
  plan.chunk_size = opts.chunk_size > 0 ? opts.chunk_size : kDefaultFetchChunk;
  plan.chunks = size <= 0 ? 0 : (size + plan.chunk_size - 1) / plan.chunk_size;
  int64_t want = opts.concurrency > 0 ? std::min(opts.concurrency, 64) : kMaxFetchConcurrency;
  plan.concurrency = static_cast<int>(std::max<int64_t>(1, std::min(want, plan.chunks)));
  return plan;
}

absl::Status RegistryClient::DownloadBlob(const Reference& repo, const Descriptor& blob, int fd,
                                          const ParallelFetchOptions& opts) {
  if (blob.size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("blob ", blob.digest.str(), ": negative size"));
  }
  const ParallelPlan plan = PlanParallelFetch(blob.size, opts);
  std::atomic<int64_t> next_chunk{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status first_error;  // guarded by mu
  int64_t done_bytes = 0;    // guarded by mu

  auto record_error = [&](absl::Status st) {
    absl::MutexLock lock(&mu);
    if (first_error.ok()) first_error = std::move(st);
    failed = true;
  };
  auto worker = [&] {
    while (!failed) {
      const int64_t i = next_chunk.fetch_add(1);
      if (i >= plan.chunks) return;
      const int64_t start = i * plan.chunk_size;
      const int64_t len = std::min(plan.chunk_size, blob.size - start);
      int64_t pos = start;
      auto write = [&](std::string_view bytes) -> absl::Status {
        if (failed) return absl::CancelledError("another chunk failed");
        SS_RETURN_IF_ERROR(PwriteAll(fd, bytes, static_cast<uint64_t>(pos)));
        pos += static_cast<int64_t>(bytes.size());
        if (opts.progress) {
          // Serialized so the callback sees a monotonically growing total.
          absl::MutexLock lock(&mu);
          done_bytes += static_cast<int64_t>(bytes.size());
          opts.progress(done_bytes);
        }
        return absl::OkStatus();
      };
      absl::Status st;
      if (opts.cache == nullptr) {
        st = ReadBlobRange(repo, blob.digest, start, len, write);
      } else {
        absl::StatusOr<std::string> chunk = opts.cache->GetOrFetch(
            ChunkKey{blob.digest, start, len}, [&]() -> absl::StatusOr<std::string> {
              std::string buf;
              buf.reserve(static_cast<size_t>(len));
              SS_RETURN_IF_ERROR(ReadBlobRange(repo, blob.digest, start, len,
                                               [&](std::string_view bytes) -> absl::Status {
                if (failed) return absl::CancelledError("another chunk failed");
                buf.append(bytes.data(), bytes.size());
                return absl::OkStatus();
              }));
              return buf;
            });
        st = chunk.ok() ? write(*chunk) : chunk.status();
      }
      if (!st.ok()) {
        record_error(std::move(st));
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < plan.concurrency; ++i) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  {
    absl::MutexLock lock(&mu);
    if (!first_error.ok()) return first_error;
  }

  // Verify what is on disk, not what we think we wrote: also catches a short pwrite or a
  // concurrent writer. The file was just written, so this reads from the page cache.
  Sha256Hasher hasher;
  std::string buf(std::min<int64_t>(blob.size, 4 << 20), '\0');
  for (int64_t off = 0; off < blob.size;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(buf.size(), blob.size - off));
    SS_RETURN_IF_ERROR(PreadExact(fd, buf.data(), n, static_cast<uint64_t>(off)));
    hasher.Update(std::string_view(buf.data(), n));
    off += static_cast<int64_t>(n);
  }
  Digest got = hasher.Finish();
  if (got != blob.digest) {
    // Some chunk was bad; whichever it was must not be served from the cache again.
    if (opts.cache != nullptr) opts.cache->EraseBlob(blob.digest);
    return absl::DataLossError(absl::StrCat("GET ", repo.registry, "/", repo.repository, " blob ",
                                            internal::ShortDigest(blob.digest),
                                            ": downloaded content hashes to ", got.str()));
  }
  return absl::OkStatus();
}

}  // namespace slipstream::remote
