// SPDX-License-Identifier: Apache-2.0
#include "remote/cached_blob_reader.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace slipstream::remote {

CachedBlobReader::CachedBlobReader(std::unique_ptr<BlobReader> inner, ChunkCache* cache,
                                   int64_t chunk_size, int64_t max_run_bytes)
    : inner_(std::move(inner)),
      cache_(cache),
      size_(std::max<int64_t>(0, inner_->size())),
      chunk_size_(chunk_size < 1 ? kDefaultChunkSize : chunk_size),
      max_run_chunks_(std::max<int64_t>(1, max_run_bytes / chunk_size_)) {}

ChunkKey CachedBlobReader::KeyOf(int64_t chunk_index) const {
  const int64_t offset = chunk_index * chunk_size_;
  return ChunkKey{inner_->digest(), offset, std::min(chunk_size_, size_ - offset)};
}

void CachedBlobReader::ForgetCached() {
  // The whole blob: which chunk held the bad bytes is not known here, and corruption is rare.
  cache_->EraseBlob(digest());
  inner_->ForgetCached();
}

absl::StatusOr<std::string> CachedBlobReader::ReadAt(int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) {
    return absl::InvalidArgumentError(absl::StrCat("read ", digest().Short(), " at ", offset,
                                                   "+", length, ": negative offset or length"));
  }
  if (offset > size_) {
    return absl::OutOfRangeError(absl::StrCat("read ", digest().Short(), " at ", offset,
                                              ": blob has ", size_, " bytes"));
  }
  const int64_t end = offset + std::min(length, size_ - offset);
  if (end == offset) return std::string();
  const int64_t first = offset / chunk_size_;
  const int64_t count = (end - 1) / chunk_size_ - first + 1;

  // Per chunk of the read, exactly one of: its bytes (a hit, or fetched by us), a Fill we
  // must fetch, or a Pending another reader is fetching.
  std::vector<std::string> owned(count);
  std::vector<std::string_view> bytes(count);
  std::vector<std::optional<ChunkCache::Fill>> fills(count);
  std::vector<std::optional<ChunkCache::Pending>> pending(count);
  for (int64_t i = 0; i < count; ++i) {
    SS_ASSIGN_OR_RETURN(ChunkCache::Acquired acquired, cache_->Acquire(KeyOf(first + i)));
    if (acquired.hit) {
      owned[i] = std::move(*acquired.hit);
      bytes[i] = owned[i];
    } else if (acquired.fill) {
      fills[i].emplace(std::move(*acquired.fill));
    } else {
      pending[i] = std::move(acquired.pending);
    }
  }

  // Fetch our misses, one inner read per run of adjacent ones. All our Fills are settled
  // before we wait on anyone else's, so two readers can never wait on each other.
  std::deque<std::string> runs;  // run buffers; `bytes` points into them
  absl::Status error;
  for (int64_t i = 0; i < count;) {
    if (!fills[i]) {
      ++i;
      continue;
    }
    int64_t j = i + 1;
    while (j < count && fills[j] && j - i < max_run_chunks_) ++j;
    const int64_t run_offset = (first + i) * chunk_size_;
    const int64_t run_end = std::min((first + j) * chunk_size_, size_);
    if (error.ok()) {
      absl::StatusOr<std::string> data = inner_->ReadAt(run_offset, run_end - run_offset);
      if (!data.ok()) {
        error = Annotate(data.status(), absl::StrCat("read ", digest().Short(), " at ",
                                                     run_offset, "+", run_end - run_offset));
      } else if (static_cast<int64_t>(data->size()) != run_end - run_offset) {
        // The blob is shorter than its size says: the registry or the manifest is wrong.
        error = absl::DataLossError(absl::StrCat("read ", digest().Short(), " at ", run_offset,
                                                 "+", run_end - run_offset, ": got ",
                                                 data->size(), " bytes"));
      } else {
        std::string_view run = runs.emplace_back(*std::move(data));
        for (int64_t k = i; k < j; ++k) {
          bytes[k] = run.substr((k - i) * chunk_size_, fills[k]->key().length);
          // Lengths match by construction, so Complete cannot fail here.
          fills[k]->Complete(bytes[k]).IgnoreError();
          fills[k].reset();
        }
      }
    }
    // After one failed run the read as a whole fails: hand the same error to whoever waits
    // on the remaining chunks instead of fetching data nobody will get.
    for (int64_t k = i; k < j; ++k) {
      if (fills[k]) fills[k]->Fail(error);
    }
    i = j;
  }
  if (!error.ok()) return error;

  for (int64_t i = 0; i < count; ++i) {
    if (!pending[i]) continue;
    SS_ASSIGN_OR_RETURN(owned[i], pending[i]->Wait());
    bytes[i] = owned[i];
  }

  std::string out;
  out.reserve(static_cast<size_t>(end - offset));
  for (int64_t i = 0; i < count; ++i) {
    const int64_t chunk_start = (first + i) * chunk_size_;
    const int64_t from = std::max(offset, chunk_start) - chunk_start;
    const int64_t to = std::min(end, chunk_start + static_cast<int64_t>(bytes[i].size())) -
                       chunk_start;
    out.append(bytes[i].substr(from, to - from));
  }
  return out;
}

}  // namespace slipstream::remote
