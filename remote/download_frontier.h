// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace slipstream::remote {

// The download frontier of one blob fetched in fixed-size chunks, out of order, into a
// file. Fetchers report bytes as they land (each chunk's bytes arrive in order, chunks in
// any order); readers wait for the contiguous prefix [0, prefix) to grow (a sequential
// consumer: an unpacker, or the hasher of RegistryClient::DownloadBlob) or for any range to
// be complete (random access, e.g. a zTOC span inflater). The frontier counts bytes only;
// it never touches the file.
//
// Shared by the blob's fetchers and its consumer; owned by whoever runs the download (a
// DownloadBlob call, a pull job). Thread-safe.
class DownloadFrontier {
 public:
  // A blob of `size` bytes split into chunks of `chunk_size` (the last one shorter).
  DownloadFrontier(int64_t size, int64_t chunk_size);

  int64_t size() const { return size_; }
  int64_t chunk_size() const { return chunk_size_; }
  int64_t chunks() const { return static_cast<int64_t>(filled_.size()); }
  // [offset, offset + length) of chunk `index`.
  int64_t ChunkOffset(int64_t index) const { return index * chunk_size_; }
  int64_t ChunkLength(int64_t index) const;

  // Records that chunk `index` now holds its first `filled` bytes (monotonic; a smaller
  // value than before is ignored). Wakes waiters when the prefix or a chunk completes.
  void Fill(int64_t index, int64_t filled) ABSL_LOCKS_EXCLUDED(mu_);

  // Ends the frontier with `status` (not OK): every waiter returns it now and later.
  // The first status wins.
  void Abort(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until the contiguous prefix exceeds `have` (or the blob is complete and `have`
  // equals its size) and returns the new prefix length. Returns the abort status if the
  // frontier was aborted.
  absl::StatusOr<int64_t> WaitBeyond(int64_t have) ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until every byte of [offset, offset + length) has arrived. OutOfRange past the
  // end; the abort status if aborted.
  absl::Status WaitRange(int64_t offset, int64_t length) ABSL_LOCKS_EXCLUDED(mu_);

  // The abort status, or OK while the frontier runs.
  absl::Status aborted() const ABSL_LOCKS_EXCLUDED(mu_);

  // The current contiguous prefix (bytes from 0 that have all arrived).
  int64_t prefix() const ABSL_LOCKS_EXCLUDED(mu_);
  bool complete() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  bool RangeFilledLocked(int64_t offset, int64_t length) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const int64_t size_;
  const int64_t chunk_size_;
  mutable absl::Mutex mu_;
  std::vector<int64_t> filled_ ABSL_GUARDED_BY(mu_);  // bytes present at each chunk's start
  int64_t first_incomplete_ ABSL_GUARDED_BY(mu_) = 0;  // chunk index
  int64_t prefix_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status aborted_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::remote
