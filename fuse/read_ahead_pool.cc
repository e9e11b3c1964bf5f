// SPDX-License-Identifier: Apache-2.0
#include "fuse/read_ahead_pool.h"

namespace slipstream::fuse {

ReadAheadPool::ReadAheadPool(int threads, size_t max_queued) : max_queued_(max_queued) {
  if (threads <= 0) {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    return;
  }
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
}

ReadAheadPool::~ReadAheadPool() { Stop(); }

bool ReadAheadPool::TrySchedule(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= max_queued_) return false;
  queue_.push_back(std::move(task));
  return true;
}

void ReadAheadPool::Stop() {
  std::deque<std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
  }
  // Dropped tasks are destroyed outside the lock: they may own the last reference to a layer.
  dropped.clear();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

size_t ReadAheadPool::pending() const {
  absl::MutexLock lock(&mu_);
  return queue_.size() + running_;
}

void ReadAheadPool::Run() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](ReadAheadPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
            return p->stopping_ || !p->queue_.empty();
          },
          this));
      if (stopping_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    task();
    task = nullptr;  // release what the task captured before counting it done
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

}  // namespace slipstream::fuse
