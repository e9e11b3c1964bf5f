// SPDX-License-Identifier: Apache-2.0
#include "index/parallel_inflate.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status.h"
#include "index/span_decoder.h"

namespace slipstream::index {
namespace {

// Shared by the inflate threads of one InflateAllSpans call.
class SpanQueue {
 public:
  SpanQueue(int64_t count, int64_t batch) : count_(count), batch_(batch) {}

  // Claims the next batch [*first, *last]; false when none is left or a thread failed.
  bool Next(int64_t* first, int64_t* last) {
    if (failed_.load(std::memory_order_relaxed)) return false;
    int64_t f = next_.fetch_add(batch_);
    if (f >= count_) return false;
    *first = f;
    *last = std::min(count_, f + batch_) - 1;
    return true;
  }

  void Fail(absl::Status status) {
    absl::MutexLock lock(&mu_);
    if (first_error_.ok()) first_error_ = std::move(status);
    failed_.store(true);
  }

  absl::Status result() {
    absl::MutexLock lock(&mu_);
    return first_error_;
  }

 private:
  const int64_t count_;
  const int64_t batch_;
  std::atomic<int64_t> next_{0};
  std::atomic<bool> failed_{false};
  absl::Mutex mu_;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

// Fetches spans [first, last] with one read and hands each decoded span to `sink`. `buffer`
// is the calling thread's, reused from span to span.
absl::Status DecodeBatch(const Ztoc& z, remote::BlobReader& blob, const SpanSink& sink,
                         SpanCheck check, int64_t first, int64_t last, std::string* buffer) {
  int64_t base = z.SpanCompressedStart(first);
  int64_t length = z.SpanCompressedEnd(last) - base;
  SS_ASSIGN_OR_RETURN(std::string compressed, blob.ReadAt(base, length));
  if (static_cast<int64_t>(compressed.size()) != length) {
    return absl::DataLossError(
        absl::StrCat("blob returned ", compressed.size(), " of ", length, " bytes at ", base));
  }
  for (int64_t span = first; span <= last; ++span) {
    std::string_view bytes = std::string_view(compressed).substr(
        z.SpanCompressedStart(span) - base, z.SpanCompressedEnd(span) - z.SpanCompressedStart(span));
    SS_RETURN_IF_ERROR(DecodeSpanInto(z, span, bytes, buffer, check));
    SS_RETURN_IF_ERROR(sink(z.SpanUncompressedStart(span), *buffer));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status InflateAllSpans(const Ztoc& ztoc, remote::BlobReader& blob, const SpanSink& sink,
                             const ParallelInflateOptions& options) {
  int64_t count = ztoc.SpanCount();
  SpanQueue queue(count, std::max(1, options.spans_per_fetch));
  int threads = static_cast<int>(std::clamp<int64_t>(options.threads, 1, std::max<int64_t>(count, 1)));
  auto work = [&] {
    int64_t first = 0, last = 0;
    std::string buffer;
    while (queue.Next(&first, &last)) {
      absl::Status s = DecodeBatch(ztoc, blob, sink, options.check, first, last, &buffer);
      if (!s.ok()) {
        queue.Fail(Annotate(s, absl::StrCat("inflate spans ", first, "-", last, " of ",
                                            blob.digest().Short())));
      }
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int i = 1; i < threads; ++i) {
    // Out of threads is not an error: the ones already running (and this one) do the work.
    try {
      pool.emplace_back(work);
    } catch (const std::system_error&) {
      break;
    }
  }
  work();  // the calling thread is one of the workers
  for (std::thread& t : pool) t.join();
  return queue.result();
}

}  // namespace slipstream::index
