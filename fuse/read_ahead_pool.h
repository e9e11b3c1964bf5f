// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace slipstream::fuse {

// A small fixed pool of threads running best-effort background work (span read-ahead) from a
// bounded queue. Work that does not fit is refused, never queued without bound: read-ahead
// is an optimisation, and a burst of sequential readers must not pile up fetches.
//
// Owned by LayerFs; the threads start in the constructor and are joined by Stop() or the
// destructor. Tasks must not block on anything a FUSE request waits for while holding a
// lock. Thread-safe.
class ReadAheadPool {
 public:
  // `threads` >= 0 (0: every TrySchedule is refused); `max_queued` tasks may wait.
  ReadAheadPool(int threads, size_t max_queued);
  ~ReadAheadPool();
  ReadAheadPool(const ReadAheadPool&) = delete;
  ReadAheadPool& operator=(const ReadAheadPool&) = delete;

  // Queues `task`; false (and `task` is dropped, not run) when the queue is full or the pool
  // is stopping.
  bool TrySchedule(std::function<void()> task);

  // Refuses new tasks, drops queued ones, waits for running ones and joins the threads.
  // Idempotent.
  void Stop();

  // Tasks queued or running (for tests).
  size_t pending() const;
  // The number of threads (0 when the pool refuses everything).
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void Run();

  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace slipstream::fuse
