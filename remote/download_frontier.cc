// SPDX-License-Identifier: Apache-2.0
#include "remote/download_frontier.h"

#include <algorithm>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace slipstream::remote {

DownloadFrontier::DownloadFrontier(int64_t size, int64_t chunk_size)
    : size_(std::max<int64_t>(size, 0)), chunk_size_(std::max<int64_t>(chunk_size, 1)) {
  const int64_t n = (size_ + chunk_size_ - 1) / chunk_size_;
  filled_.assign(static_cast<size_t>(n), 0);
}

int64_t DownloadFrontier::ChunkLength(int64_t index) const {
  return std::min(chunk_size_, size_ - ChunkOffset(index));
}

void DownloadFrontier::Fill(int64_t index, int64_t filled) {
  absl::MutexLock lock(&mu_);
  if (index < 0 || index >= static_cast<int64_t>(filled_.size())) return;
  int64_t& slot = filled_[static_cast<size_t>(index)];
  slot = std::max(slot, std::min(filled, ChunkLength(index)));
  // The prefix only moves when the first incomplete chunk grows; then it may run over
  // chunks that completed earlier, out of order.
  while (first_incomplete_ < static_cast<int64_t>(filled_.size()) &&
         filled_[static_cast<size_t>(first_incomplete_)] == ChunkLength(first_incomplete_)) {
    ++first_incomplete_;
  }
  prefix_ = first_incomplete_ < static_cast<int64_t>(filled_.size())
                ? ChunkOffset(first_incomplete_) + filled_[static_cast<size_t>(first_incomplete_)]
                : size_;
  // Waiters use absl::Mutex::Await conditions, re-evaluated on unlock: no explicit notify.
}

void DownloadFrontier::Abort(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (aborted_.ok()) {
    aborted_ = status.ok() ? absl::CancelledError("download aborted") : status;
  }
}

absl::StatusOr<int64_t> DownloadFrontier::WaitBeyond(int64_t have) {
  absl::MutexLock lock(&mu_);
  auto ready = [this, have]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !aborted_.ok() || prefix_ > have || prefix_ == size_;
  };
  mu_.Await(absl::Condition(&ready));
  if (!aborted_.ok()) return aborted_;
  return prefix_;
}

bool DownloadFrontier::RangeFilledLocked(int64_t offset, int64_t length) const {
  if (length <= 0) return true;
  const int64_t end = offset + length;
  for (int64_t i = offset / chunk_size_; i < static_cast<int64_t>(filled_.size()); ++i) {
    const int64_t start = ChunkOffset(i);
    if (start >= end) break;
    // Bytes of this chunk the range needs, counted from the chunk's start.
    const int64_t need = std::min(end, start + ChunkLength(i)) - start;
    if (filled_[static_cast<size_t>(i)] < need) return false;
  }
  return true;
}

absl::Status DownloadFrontier::WaitRange(int64_t offset, int64_t length) {
  if (offset < 0 || length < 0 || offset + length > size_) {
    return absl::OutOfRangeError(absl::StrCat("range [", offset, ", +", length,
                                              ") is outside a blob of ", size_, " bytes"));
  }
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !aborted_.ok() || RangeFilledLocked(offset, length);
  };
  mu_.Await(absl::Condition(&ready));
  return aborted_;
}

absl::Status DownloadFrontier::aborted() const {
  absl::MutexLock lock(&mu_);
  return aborted_;
}

int64_t DownloadFrontier::prefix() const {
  absl::MutexLock lock(&mu_);
  return prefix_;
}

bool DownloadFrontier::complete() const {
  absl::MutexLock lock(&mu_);
  return prefix_ == size_;
}

}  // namespace slipstream::remote
