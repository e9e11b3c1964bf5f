// SPDX-License-Identifier: Apache-2.0
#include "common/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"

namespace slipstream::metrics {
namespace {

enum Kind { kCounter, kGauge, kHistogram, kCounterFamily, kHistogramFamily, kGaugeCallback };

const char* TypeName(int kind) {
  switch (kind) {
    case kCounter:
    case kCounterFamily:
      return "counter";
    case kHistogram:
    case kHistogramFamily:
      return "histogram";
    default:
      return "gauge";
  }
}

// The text format escapes backslash and newline in HELP, and also the double quote in label
// values.
std::string Escape(const std::string& s, bool quote) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quote) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  // The shortest form that reads back as the same double ("0.1", not "0.10000000000000001").
  for (int precision = 15; precision < 17; ++precision) {
    std::string s = absl::StrFormat("%.*g", precision, v);
    if (std::strtod(s.c_str(), nullptr) == v) return s;
  }
  return absl::StrFormat("%.17g", v);
}

// `{a="x",b="y"}` (empty when there are no labels); `extra` is appended last (the `le` of
// a histogram bucket).
std::string Labels(const std::vector<std::pair<std::string, std::string>>& labels,
                   const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && extra == nullptr) return "";
  std::string out = "{";
  auto add = [&out](const std::pair<std::string, std::string>& l) {
    if (out.size() > 1) out += ",";
    absl::StrAppend(&out, l.first, "=\"", Escape(l.second, true), "\"");
  };
  for (const auto& l : labels) add(l);
  if (extra != nullptr) add(*extra);
  out += "}";
  return out;
}

std::vector<std::pair<std::string, std::string>> Zip(const std::vector<std::string>& names,
                                                     const std::vector<std::string>& values) {
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
    out.emplace_back(names[i], values[i]);
  }
  return out;
}

void RenderHistogram(const std::string& name,
                     const std::vector<std::pair<std::string, std::string>>& labels,
                     const Histogram& h, std::string& out) {
  Histogram::Snapshot s = h.Read();
  for (size_t i = 0; i < s.cumulative.size(); ++i) {
    std::pair<std::string, std::string> le(
        "le", i < s.bounds.size() ? Number(s.bounds[i]) : std::string("+Inf"));
    absl::StrAppend(&out, name, "_bucket", Labels(labels, &le), " ", s.cumulative[i], "\n");
  }
  absl::StrAppend(&out, name, "_sum", Labels(labels), " ", Number(s.sum), "\n");
  absl::StrAppend(&out, name, "_count", Labels(labels), " ", s.count, "\n");
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(new std::atomic<int64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micro_.fetch_add(std::llround(value * 1e6), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  s.bounds = bounds_;
  int64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.count = count_.load(std::memory_order_relaxed);
  s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120};
}

struct Registry::Entry {
  int kind = kCounter;
  std::string help;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::unique_ptr<Family<Counter>> counter_family;
  std::unique_ptr<Family<Histogram>> histogram_family;
  std::vector<std::pair<const void*, std::function<std::vector<Sample>()>>> callbacks;
};

Registry::Registry() = default;
Registry::~Registry() = default;

Registry::Entry& Registry::Add(const std::string& name, const std::string& help, int kind,
                               const std::function<void(Entry&)>& create) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<Entry>& e = entries_[name];
  if (e == nullptr) {
    e = std::make_unique<Entry>();
    e->kind = kind;
    e->help = help;
    create(*e);
  } else if (e->kind != kind) {
    log::Error("metric registered twice with different kinds", {{"name", name}});
    std::abort();
  }
  return *e;
}

Counter& Registry::AddCounter(const std::string& name, const std::string& help) {
  return *Add(name, help, kCounter, [](Entry& e) { e.counter = std::make_unique<Counter>(); })
              .counter;
}

Gauge& Registry::AddGauge(const std::string& name, const std::string& help) {
  return *Add(name, help, kGauge, [](Entry& e) { e.gauge = std::make_unique<Gauge>(); }).gauge;
}

Histogram& Registry::AddHistogram(const std::string& name, const std::string& help,
                                  std::vector<double> bounds) {
  return *Add(name, help, kHistogram, [&bounds](Entry& e) {
            e.histogram = std::make_unique<Histogram>(std::move(bounds));
          }).histogram;
}

Family<Counter>& Registry::AddCounterFamily(const std::string& name, const std::string& help,
                                            std::vector<std::string> label_names) {
  return *Add(name, help, kCounterFamily, [&label_names](Entry& e) {
            e.counter_family = std::make_unique<Family<Counter>>(
                std::move(label_names), [] { return std::make_unique<Counter>(); });
          }).counter_family;
}

Family<Histogram>& Registry::AddHistogramFamily(const std::string& name,
                                                const std::string& help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bounds) {
  return *Add(name, help, kHistogramFamily, [&label_names, &bounds](Entry& e) {
            e.histogram_family = std::make_unique<Family<Histogram>>(
                std::move(label_names),
                [bounds] { return std::make_unique<Histogram>(bounds); });
          }).histogram_family;
}

void Registry::AddGaugeCallback(const std::string& name, const std::string& help,
                                const void* owner, std::function<std::vector<Sample>()> fn) {
  Entry& e = Add(name, help, kGaugeCallback, [](Entry&) {});
  absl::MutexLock lock(&mu_);
  e.callbacks.emplace_back(owner, std::move(fn));
}

void Registry::RemoveCallbacks(const void* owner) {
  absl::MutexLock lock(&mu_);
  for (auto& [name, e] : entries_) {
    std::erase_if(e->callbacks, [owner](const auto& c) { return c.first == owner; });
  }
}

std::string Registry::RenderText() const {
  // The callbacks run outside the lock (they take locks of their own); copied first.
  struct Pending {
    std::string name;
    std::vector<std::function<std::vector<Sample>()>> fns;
  };
  std::string out;
  std::vector<Pending> pending;
  std::vector<std::pair<std::string, std::string>> order;  // name, rendered text
  {
    absl::MutexLock lock(&mu_);
    // Named references, not structured bindings: the lambdas below capture them (which
    // clang 14, the fuzz build's compiler, does not allow for bindings).
    for (const auto& entry : entries_) {
      const std::string& name = entry.first;
      const Entry* e = entry.second.get();
      std::string text = absl::StrCat("# HELP ", name, " ", Escape(e->help, false), "\n",
                                      "# TYPE ", name, " ", TypeName(e->kind), "\n");
      switch (e->kind) {
        case kCounter:
          absl::StrAppend(&text, name, " ", e->counter->value(), "\n");
          break;
        case kGauge:
          absl::StrAppend(&text, name, " ", e->gauge->value(), "\n");
          break;
        case kHistogram:
          RenderHistogram(name, {}, *e->histogram, text);
          break;
        case kCounterFamily:
          e->counter_family->ForEach([&](const std::vector<std::string>& values, const Counter& c) {
            absl::StrAppend(&text, name, Labels(Zip(e->counter_family->label_names(), values)),
                            " ", c.value(), "\n");
          });
          break;
        case kHistogramFamily:
          e->histogram_family->ForEach(
              [&](const std::vector<std::string>& values, const Histogram& h) {
                RenderHistogram(name, Zip(e->histogram_family->label_names(), values), h, text);
              });
          break;
        case kGaugeCallback: {
          Pending p{name, {}};
          for (const auto& c : e->callbacks) p.fns.push_back(c.second);
          pending.push_back(std::move(p));
          break;
        }
      }
      order.emplace_back(name, std::move(text));
    }
  }
  for (const Pending& p : pending) {
    auto it = std::find_if(order.begin(), order.end(),
                           [&p](const auto& o) { return o.first == p.name; });
    for (const auto& fn : p.fns) {
      for (const Sample& s : fn()) {
        absl::StrAppend(&it->second, p.name, Labels(s.labels), " ", Number(s.value), "\n");
      }
    }
  }
  for (const auto& o : order) out += o.second;
  return out;
}

Registry& Global() {
  static Registry* registry = new Registry();  // never destroyed: used until exit
  return *registry;
}

}  // namespace slipstream::metrics
