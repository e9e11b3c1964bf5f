// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "remote/blob_reader.h"
#include "remote/chunk_cache.h"

namespace slipstream::remote {

// A BlobReader that serves reads through a ChunkCache, in fixed chunks aligned to multiples
// of `chunk_size` from the start of the blob (the last chunk is shorter). Chunks found in
// the cache are read from disk; the missing ones are fetched from the inner reader, one
// inner ReadAt per run of adjacent missing chunks (coalescing, at most `max_run_bytes` per
// read), then split into cache entries. Concurrent reads of the same chunk, through this
// reader or any other on the same cache, fetch it once.
//
// Owns the inner reader; borrows the cache, which must outlive it. Thread-safe: many
// threads may call ReadAt at once.
class CachedBlobReader : public BlobReader {
 public:
  static constexpr int64_t kDefaultChunkSize = int64_t{1} << 20;
  static constexpr int64_t kDefaultMaxRunBytes = int64_t{64} << 20;

  // `chunk_size` < 1 means kDefaultChunkSize; `max_run_bytes` is rounded down to whole
  // chunks, and at least one chunk is always fetched per inner read.
  CachedBlobReader(std::unique_ptr<BlobReader> inner, ChunkCache* cache,
                   int64_t chunk_size = kDefaultChunkSize,
                   int64_t max_run_bytes = kDefaultMaxRunBytes);

  const Digest& digest() const override { return inner_->digest(); }
  int64_t size() const override { return size_; }

  // As BlobReader::ReadAt. Also InvalidArgument for a negative offset or length, DataLoss
  // when the inner reader returns fewer bytes than the blob's size promises, and the inner
  // reader's errors (annotated with the blob and range), which are not cached.
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override;

  // Erases every cached chunk of the blob (ChunkCache::EraseBlob), then forwards to the inner
  // reader. Fetches in flight still complete into the cache.
  void ForgetCached() override;

  int64_t chunk_size() const { return chunk_size_; }

 private:
  ChunkKey KeyOf(int64_t chunk_index) const;

  std::unique_ptr<BlobReader> inner_;
  ChunkCache* cache_;
  const int64_t size_;
  const int64_t chunk_size_;
  const int64_t max_run_chunks_;
};

}  // namespace slipstream::remote
