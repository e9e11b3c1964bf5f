// SPDX-License-Identifier: Apache-2.0
// RegistryClient::DownloadBlob: concurrent Range GETs written at their offsets while the
// calling thread hashes the contiguous prefix of the file as it grows.
//
// Threads: DownloadBlob starts plan.concurrency short-lived worker threads and joins them
// before returning; the caller hashes meanwhile. Each worker blocks in the transport while
// libcurl's single loop thread moves the bytes; the pwrite happens on the worker.
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
#include "remote/download_frontier.h"
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
  DownloadFrontier frontier(blob.size, plan.chunk_size);
  std::atomic<int64_t> next_chunk{0};
  absl::Mutex mu;
  int64_t done_bytes = 0;  // guarded by mu

  auto fetch_chunk = [&](int64_t i) -> absl::Status {
    const int64_t start = frontier.ChunkOffset(i);
    const int64_t len = frontier.ChunkLength(i);
    int64_t filled = 0;
    auto write = [&](std::string_view bytes) -> absl::Status {
      SS_RETURN_IF_ERROR(frontier.aborted());
      SS_RETURN_IF_ERROR(PwriteAll(fd, bytes, static_cast<uint64_t>(start + filled)));
      filled += static_cast<int64_t>(bytes.size());
      frontier.Fill(i, filled);
      if (opts.progress) {
        // Serialized so the callback sees a monotonically growing total.
        absl::MutexLock lock(&mu);
        done_bytes += static_cast<int64_t>(bytes.size());
        opts.progress(done_bytes);
      }
      return absl::OkStatus();
    };
    if (opts.cache == nullptr) return ReadBlobRange(repo, blob.digest, start, len, write);
    absl::StatusOr<std::string> chunk = opts.cache->GetOrFetch(
        ChunkKey{blob.digest, start, len}, [&]() -> absl::StatusOr<std::string> {
          std::string buf;
          buf.reserve(static_cast<size_t>(len));
          SS_RETURN_IF_ERROR(ReadBlobRange(repo, blob.digest, start, len,
                                           [&](std::string_view bytes) -> absl::Status {
            SS_RETURN_IF_ERROR(frontier.aborted());
            buf.append(bytes.data(), bytes.size());
            return absl::OkStatus();
          }));
          return buf;
        });
    return chunk.ok() ? write(*chunk) : chunk.status();
  };
  auto worker = [&] {
    while (frontier.aborted().ok()) {
      const int64_t i = next_chunk.fetch_add(1);
      if (i >= plan.chunks) return;
      absl::Status st = fetch_chunk(i);
      if (!st.ok()) {
        frontier.Abort(st);  // the first error wins; the others stop at their next bytes
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(plan.concurrency));
  for (int i = 0; i < plan.concurrency; ++i) threads.emplace_back(worker);

  // The calling thread hashes the contiguous prefix while later chunks still arrive, so
  // verification costs no second pass after the download. It hashes what is on disk, not
  // what the fetchers meant to write: a short pwrite or a concurrent writer is caught too.
  Sha256Hasher hasher;
  absl::Status hashed;
  std::string buf;
  for (int64_t off = 0; off < blob.size;) {
    absl::StatusOr<int64_t> prefix = frontier.WaitBeyond(off);
    if (!prefix.ok()) {
      hashed = prefix.status();
      break;
    }
    while (off < *prefix) {
      const size_t n = static_cast<size_t>(std::min<int64_t>(4 << 20, *prefix - off));
      buf.resize(n);
      hashed = PreadExact(fd, buf.data(), n, static_cast<uint64_t>(off));
      if (!hashed.ok()) break;
      hasher.Update(buf);
      off += static_cast<int64_t>(n);
    }
    if (!hashed.ok()) {
      frontier.Abort(hashed);
      break;
    }
  }
  for (std::thread& t : threads) t.join();
  SS_RETURN_IF_ERROR(frontier.aborted());
  SS_RETURN_IF_ERROR(hashed);

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
