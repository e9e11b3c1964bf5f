// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "unpack/byte_sink.h"

namespace slipstream::unpack {

// Moves a byte stream from one thread to a sink running on a thread of its own, so the two
// halves of a pipeline (e.g. inflate | untar) use two cores, as `igzip -dc | tar -x` does.
// Write() copies the bytes into pooled blocks and queues them; a consumer thread started by
// the constructor hands them to the sink in order. At most `max_blocks` blocks of
// `block_size` bytes are alive at once, so memory is bounded whatever the stream length:
// a producer faster than the sink blocks in Write().
//
// The first error of the sink is sticky: later Write() calls and Finish() return it, and the
// producer stops. Owned by one producer thread (Write/Finish/Abort are not re-entrant); the
// destructor aborts and joins if Finish() was not called.
class BytePipe {
 public:
  explicit BytePipe(ByteSink sink, size_t block_size = 1 << 20, size_t max_blocks = 8);
  ~BytePipe();
  BytePipe(const BytePipe&) = delete;
  BytePipe& operator=(const BytePipe&) = delete;

  // Queues `bytes` for the sink. Returns the sink's error once it failed (the bytes are then
  // dropped), or FailedPrecondition after Finish/Abort.
  absl::Status Write(std::string_view bytes);

  // Flushes what is queued, waits for the sink to consume it and joins the consumer thread.
  // Returns the sink's first error, or OK.
  absl::Status Finish();

  // Drops what is queued and joins the consumer thread; the sink sees nothing more. Used on
  // the error path of the producer.
  void Abort();

 private:
  void Consume();
  absl::Status Flush() ABSL_LOCKS_EXCLUDED(mu_);
  void Stop(bool drop);

  ByteSink sink_;
  const size_t block_size_;
  const size_t max_blocks_;
  std::string filling_;  // producer-owned block being filled

  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> free_ ABSL_GUARDED_BY(mu_);
  size_t allocated_ ABSL_GUARDED_BY(mu_) = 0;  // blocks alive: queued + free + in use
  bool closed_ ABSL_GUARDED_BY(mu_) = false;   // no more input; consumer exits when drained
  bool drop_ ABSL_GUARDED_BY(mu_) = false;     // consumer exits at once
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> failed_{false};  // error_ is set: lets Write() fail fast without the lock
  bool joined_ = false;
  std::thread consumer_;
};

}  // namespace slipstream::unpack
