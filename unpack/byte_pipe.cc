// SPDX-License-Identifier: Apache-2.0
#include "unpack/byte_pipe.h"

#include <utility>

namespace slipstream::unpack {

BytePipe::BytePipe(ByteSink sink, size_t block_size, size_t max_blocks)
    : sink_(std::move(sink)),
      block_size_(block_size > 0 ? block_size : 1),
      max_blocks_(max_blocks >= 2 ? max_blocks : 2) {
  filling_.reserve(block_size_);
  {
    absl::MutexLock lock(&mu_);
    allocated_ = 1;  // filling_
  }
  consumer_ = std::thread([this] { Consume(); });
}

BytePipe::~BytePipe() {
  if (!joined_) Stop(/*drop=*/true);
}

void BytePipe::Consume() {
  std::string block;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (!block.empty() || block.capacity() > 0) {
        block.clear();
        free_.push_back(std::move(block));
        block = std::string();
      }
      auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return drop_ || !queue_.empty() || closed_;
      };
      mu_.Await(absl::Condition(&ready));
      if (drop_ || (queue_.empty() && closed_)) return;
      block = std::move(queue_.front());
      queue_.pop_front();
    }
    // The sink runs without the lock: the producer keeps filling blocks meanwhile.
    absl::Status s = sink_(block);
    if (!s.ok()) {
      absl::MutexLock lock(&mu_);
      if (error_.ok()) error_ = std::move(s);
      failed_.store(true);
      drop_ = true;
      queue_.clear();
      return;
    }
  }
}

absl::Status BytePipe::Flush() {
  if (filling_.empty()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return error_;
  queue_.push_back(std::move(filling_));
  filling_ = std::string();
  // Reuse a consumed block, or make a new one while under the bound; otherwise wait for the
  // consumer to hand one back (or fail).
  auto block_available = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !free_.empty() || allocated_ < max_blocks_ || !error_.ok();
  };
  mu_.Await(absl::Condition(&block_available));
  if (!error_.ok()) return error_;
  if (!free_.empty()) {
    filling_ = std::move(free_.back());
    free_.pop_back();
  } else {
    ++allocated_;
    filling_.reserve(block_size_);
  }
  return absl::OkStatus();
}

absl::Status BytePipe::Write(std::string_view bytes) {
  if (joined_) return absl::FailedPreconditionError("byte pipe already finished");
  if (failed_.load(std::memory_order_relaxed)) {
    absl::MutexLock lock(&mu_);
    return error_;
  }
  while (!bytes.empty()) {
    const size_t room = block_size_ - filling_.size();
    const size_t n = bytes.size() < room ? bytes.size() : room;
    filling_.append(bytes.data(), n);
    bytes.remove_prefix(n);
    if (filling_.size() == block_size_) {
      absl::Status s = Flush();
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status BytePipe::Finish() {
  if (joined_) return absl::FailedPreconditionError("byte pipe already finished");
  absl::Status flushed = Flush();
  Stop(/*drop=*/!flushed.ok());
  absl::MutexLock lock(&mu_);
  return error_;
}

void BytePipe::Abort() {
  if (!joined_) Stop(/*drop=*/true);
}

void BytePipe::Stop(bool drop) {
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    if (drop) {
      drop_ = true;
      queue_.clear();
    }
  }
  consumer_.join();
  joined_ = true;
}

}  // namespace slipstream::unpack
