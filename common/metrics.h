// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace slipstream::metrics {

// A count that only goes up (bytes fetched, errors). Lock-free; thread-safe.
class Counter {
 public:
  void Add(int64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A value that goes up and down (layers in flight). Lock-free; thread-safe.
class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Observations counted into fixed buckets (Prometheus "histogram": cumulative `le` buckets,
// sum and count). `bounds` are the buckets' upper bounds, ascending; +Inf is implied.
// Observe() is lock-free; a concurrent render may see a count and sum a few observations
// apart, which Prometheus tolerates. Thread-safe.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);
  void ObserveDuration(absl::Duration d) { Observe(absl::ToDoubleSeconds(d)); }

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<int64_t> cumulative;  // bounds.size() + 1 entries, the last one is +Inf
    double sum = 0;
    int64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<int64_t>[]> buckets_;  // per bucket, not cumulative
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_micro_{0};  // sum in millionths: atomic without a CAS loop
};

// Bucket bounds for latencies in seconds, 1 ms to ~2 min.
std::vector<double> LatencyBuckets();

// One metric name with a fixed list of label names; each combination of label values is a
// child metric created on first use. With() returns a reference that stays valid for the
// family's life, so hot paths look a child up once and keep it. Thread-safe.
template <typename M>
class Family {
 public:
  Family(std::vector<std::string> label_names, std::function<std::unique_ptr<M>()> make)
      : label_names_(std::move(label_names)), make_(std::move(make)) {}

  // The child for `values` (one per label name, in order).
  M& With(const std::vector<std::string>& values) {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<M>& child = children_[values];
    if (child == nullptr) child = make_();
    return *child;
  }

  const std::vector<std::string>& label_names() const { return label_names_; }

  // Calls `fn(values, metric)` for every child, ordered by label values.
  void ForEach(const std::function<void(const std::vector<std::string>&, const M&)>& fn) const {
    absl::MutexLock lock(&mu_);
    for (const auto& [values, child] : children_) fn(values, *child);
  }

 private:
  const std::vector<std::string> label_names_;
  const std::function<std::unique_ptr<M>()> make_;
  mutable absl::Mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_ ABSL_GUARDED_BY(mu_);
};

// A sample produced at render time by a callback (e.g. background completion progress,
// which lives in the lazy provider's own state).
struct Sample {
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// The set of metrics a process exposes, rendered in the Prometheus text exposition format
// (version 0.0.4). Metrics are registered once, by name; registering a name twice returns
// the existing metric when the kind matches (so two components may share one) and aborts
// otherwise (a programming error, like a duplicate flag). Returned references live as long
// as the registry. Thread-safe.
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  Counter& AddCounter(const std::string& name, const std::string& help);
  Gauge& AddGauge(const std::string& name, const std::string& help);
  Histogram& AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds);
  Family<Counter>& AddCounterFamily(const std::string& name, const std::string& help,
                                    std::vector<std::string> label_names);
  Family<Histogram>& AddHistogramFamily(const std::string& name, const std::string& help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> bounds);
  // A gauge whose samples `fn` returns at each render; `fn` runs without the registry's
  // lock and must be thread-safe. `owner` identifies the registration for Remove().
  void AddGaugeCallback(const std::string& name, const std::string& help, const void* owner,
                        std::function<std::vector<Sample>()> fn);
  // Drops the callbacks `owner` registered (call before the owner is destroyed).
  void RemoveCallbacks(const void* owner);

  // Every metric, sorted by name, in the text format.
  std::string RenderText() const;

 private:
  struct Entry;
  Entry& Add(const std::string& name, const std::string& help, int kind,
             const std::function<void(Entry&)>& create);

  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
};

// The process-wide registry every component records into and the daemon's /metrics renders.
Registry& Global();

// The content type of RenderText()'s output.
inline constexpr char kTextContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace slipstream::metrics
