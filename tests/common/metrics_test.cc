// SPDX-License-Identifier: Apache-2.0
#include "common/metrics.h"

#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, CounterAndGaugeRenderWithHelpAndType) {
  Registry r;
  r.AddCounter("x_bytes_total", "Bytes.\nWith a \\ newline").Add(5);
  Gauge& g = r.AddGauge("x_in_flight", "In flight.");
  g.Set(3);
  g.Add(-1);
  EXPECT_EQ(r.RenderText(),
            "# HELP x_bytes_total Bytes.\\nWith a \\\\ newline\n"
            "# TYPE x_bytes_total counter\n"
            "x_bytes_total 5\n"
            "# HELP x_in_flight In flight.\n"
            "# TYPE x_in_flight gauge\n"
            "x_in_flight 2\n");
}

TEST(MetricsTest, RegisteringANameTwiceSharesTheMetric) {
  Registry r;
  r.AddCounter("c", "one").Add(1);
  r.AddCounter("c", "two").Add(2);
  EXPECT_THAT(r.RenderText(), HasSubstr("\nc 3\n"));
  EXPECT_DEATH(r.AddGauge("c", "g"), "");
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Registry r;
  Histogram& h = r.AddHistogram("lat_seconds", "Latency.", {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.1);  // on the bound: counted in le="0.1"
  h.Observe(0.5);
  h.Observe(7);
  EXPECT_EQ(r.RenderText(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.1\"} 2\n"
            "lat_seconds_bucket{le=\"1\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 7.65\n"
            "lat_seconds_count 4\n");
}

TEST(MetricsTest, FamiliesRenderOneLinePerLabelSetWithEscapedValues) {
  Registry r;
  Family<Counter>& f = r.AddCounterFamily("ops_total", "Ops.", {"op", "mode"});
  f.With({"read", "lazy"}).Add(2);
  f.With({"lookup", "a\"b\\c\nd"}).Add(1);
  f.With({"read", "lazy"}).Add(1);
  Family<Histogram>& h = r.AddHistogramFamily("d_seconds", "D.", {"mode"}, {1});
  h.With({"parallel"}).Observe(2);
  std::string text = r.RenderText();
  EXPECT_THAT(text, HasSubstr("ops_total{op=\"read\",mode=\"lazy\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("ops_total{op=\"lookup\",mode=\"a\\\"b\\\\c\\nd\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("d_seconds_bucket{mode=\"parallel\",le=\"1\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("d_seconds_bucket{mode=\"parallel\",le=\"+Inf\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("d_seconds_count{mode=\"parallel\"} 1\n"));
}

TEST(MetricsTest, GaugeCallbacksRunAtRenderAndCanBeRemoved) {
  Registry r;
  int owner = 0;
  int calls = 0;
  r.AddGaugeCallback("progress_ratio", "Progress.", &owner, [&calls] {
    ++calls;
    return std::vector<Sample>{{{{"layer", "sha256:ab"}}, 0.5}};
  });
  EXPECT_THAT(r.RenderText(), HasSubstr("progress_ratio{layer=\"sha256:ab\"} 0.5\n"));
  EXPECT_EQ(calls, 1);
  r.RemoveCallbacks(&owner);
  std::string text = r.RenderText();
  EXPECT_THAT(text, HasSubstr("# TYPE progress_ratio gauge\n"));
  EXPECT_THAT(text, Not(HasSubstr("sha256:ab")));
  EXPECT_EQ(calls, 1);
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  Counter& c = r.AddCounter("n_total", "N.");
  Family<Counter>& f = r.AddCounterFamily("m_total", "M.", {"k"});
  Histogram& h = r.AddHistogram("h", "H.", LatencyBuckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Add();
        f.With({i % 2 == 0 ? "even" : "odd"}).Add();
        h.Observe(0.002);
      }
    });
  }
  std::string during = r.RenderText();  // rendering while others write must be safe
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000);
  EXPECT_EQ(f.With({"even"}).value(), 20000);
  EXPECT_EQ(h.Read().count, 40000);
  EXPECT_EQ(h.Read().cumulative.back(), 40000);
  EXPECT_NEAR(h.Read().sum, 80, 1e-6);
}

}  // namespace
}  // namespace slipstream::metrics
