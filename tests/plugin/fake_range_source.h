// SPDX-License-Identifier: Apache-2.0
// An in-memory RangeSource for engine tests: delivers blobs in small pieces and can reorder
// chunks, fail, corrupt, or hold a transfer until the engine cancels it.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "plugin/pull_source.h"

namespace slipstream::plugin::testing {

struct FakeBlob {
  std::string bytes;
  // Requests starting at offset 0 wait until another request of this blob has completed,
  // so chunks land out of order (needs at least two requests in flight).
  bool first_chunk_last = false;
  // Fail requests covering this offset with `error` once they reach it.
  int64_t fail_at = -1;
  absl::Status error = absl::UnavailableError("injected failure");
  // Flip the byte at this offset.
  int64_t corrupt_at = -1;
  // Hold every request until the engine's sink refuses bytes (i.e. the job was cancelled).
  bool hang = false;
  // Requests whose range contains the last byte wait until this returns true.
  std::function<bool()> release_last;
};

class FakeRangeSource : public RangeSource {
 public:
  void Add(const Digest& digest, FakeBlob blob) { blobs_[digest.str()] = std::move(blob); }

  absl::Status Read(const remote::Descriptor& desc, int64_t offset, int64_t length,
                    const remote::BodySink& sink) override {
    auto it = blobs_.find(desc.digest.str());
    if (it == blobs_.end()) return absl::NotFoundError("no such blob");
    FakeBlob& blob = it->second;
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    if (blob.hang) {
      // An empty piece still runs the engine's cancellation check.
      while (absl::Now() < deadline) {
        absl::Status st = sink(std::string_view());
        if (!st.ok()) return st;
        absl::SleepFor(absl::Milliseconds(1));
      }
      return absl::DeadlineExceededError("fake source: never cancelled");
    }
    if (blob.first_chunk_last && offset == 0) {
      absl::MutexLock lock(&mu_);
      const std::string key = desc.digest.str();
      auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return completed_[key] > 0; };
      mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
    }
    if (blob.release_last && offset + length == static_cast<int64_t>(blob.bytes.size())) {
      while (!blob.release_last()) {
        if (absl::Now() > deadline) return absl::DeadlineExceededError("fake: never released");
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
    constexpr int64_t kPiece = 1000;  // odd size: pieces never align with chunks
    for (int64_t pos = offset; pos < offset + length;) {
      const int64_t n = std::min(kPiece, offset + length - pos);
      if (blob.fail_at >= pos && blob.fail_at < pos + n) return blob.error;
      std::string piece = blob.bytes.substr(static_cast<size_t>(pos), static_cast<size_t>(n));
      if (blob.corrupt_at >= pos && blob.corrupt_at < pos + n) {
        piece[static_cast<size_t>(blob.corrupt_at - pos)] ^= 0x40;
      }
      absl::Status st = sink(piece);
      if (!st.ok()) return st;
      pos += n;
    }
    absl::MutexLock lock(&mu_);
    ++completed_[desc.digest.str()];
    order_.push_back(offset);
    return absl::OkStatus();
  }

  // Offsets of completed requests, in completion order (all blobs).
  std::vector<int64_t> order() const {
    absl::MutexLock lock(&mu_);
    return order_;
  }

 private:
  std::map<std::string, FakeBlob> blobs_;  // filled before the pull starts
  mutable absl::Mutex mu_;
  std::map<std::string, int> completed_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> order_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::plugin::testing
