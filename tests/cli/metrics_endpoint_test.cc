// SPDX-License-Identifier: Apache-2.0
// slipstreamd's /metrics endpoint over real HTTP, read with the strict text-format parser
// the integration tests use (whose own rejections are tested here too).
#include "cmd/daemon/metrics_endpoint.h"

#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testkit/net_fetch.h"
#include "testkit/prometheus_text.h"

namespace slipstream::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(MetricsEndpointTest, ServesTheGlobalRegistryAsParseableText) {
  metrics::Global().AddCounter("slipstream_test_things_total", "Things.").Add(3);
  metrics::Global()
      .AddHistogramFamily("slipstream_test_seconds", "Seconds.", {"mode"}, {0.5, 1})
      .With({"lazy"})
      .Observe(0.7);
  auto endpoint = MetricsEndpoint::Start("127.0.0.1:0", nullptr, nullptr);
  ASSERT_TRUE(endpoint.ok()) << endpoint.status();
  EXPECT_THAT((*endpoint)->address(), StartsWith("127.0.0.1:"));
  EXPECT_NE((*endpoint)->address(), "127.0.0.1:0");

  auto fetched = testkit::Fetch("http://" + (*endpoint)->address() + "/metrics");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  const testkit::FetchResult& got = *fetched;
  ASSERT_TRUE(got.ok()) << got.error;
  EXPECT_EQ(got.status, 200);
  EXPECT_THAT(got.Header("content-type"), HasSubstr("text/plain; version=0.0.4"));
  auto scrape = testkit::ParsePrometheusText(got.body);
  ASSERT_TRUE(scrape.ok()) << scrape.status() << "\n" << got.body;
  EXPECT_EQ(scrape->types.at("slipstream_test_things_total"), "counter");
  EXPECT_EQ(scrape->Get("slipstream_test_things_total"), 3);
  EXPECT_EQ(scrape->Get("slipstream_test_seconds_bucket{mode=\"lazy\",le=\"0.5\"}"), 0);
  EXPECT_EQ(scrape->Get("slipstream_test_seconds_bucket{mode=\"lazy\",le=\"1\"}"), 1);
  EXPECT_EQ(scrape->Get("slipstream_test_seconds_count{mode=\"lazy\"}"), 1);
  // Without lazy mode there is no background completion to report.
  EXPECT_EQ(scrape->types.count("slipstream_lazy_layers"), 0u);

  EXPECT_EQ(testkit::Fetch("http://" + (*endpoint)->address() + "/")->status, 404);
  testkit::FetchOptions post;
  post.method = "POST";
  post.body = "x";
  EXPECT_EQ(testkit::Fetch("http://" + (*endpoint)->address() + "/metrics", post)->status, 405);
}

TEST(MetricsEndpointTest, BadAddressesAreClearErrors) {
  auto no_port = MetricsEndpoint::Start("localhost", nullptr, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(no_port.status())) << no_port.status();
  EXPECT_THAT(no_port.status().message(), HasSubstr("metrics address"));
  auto name = MetricsEndpoint::Start("localhost:9464", nullptr, nullptr);
  EXPECT_TRUE(absl::IsInvalidArgument(name.status())) << name.status();
  // A port in use: the second endpoint cannot bind it.
  auto first = MetricsEndpoint::Start("127.0.0.1:0", nullptr, nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = MetricsEndpoint::Start((*first)->address(), nullptr, nullptr);
  EXPECT_FALSE(second.ok());
  EXPECT_THAT(second.status().message(), HasSubstr("metrics endpoint on"));
}

TEST(PrometheusTextTest, RejectsWhatAScraperRejects) {
  const char* const bad[] = {
      "x 1\n",                                          // no TYPE before the sample
      "# TYPE x counter\nx{a=\"1\" 2\n",                // unterminated labels
      "# TYPE x counter\nx{a=1} 2\n",                   // unquoted label value
      "# TYPE x counter\nx{1a=\"v\"} 2\n",               // bad label name
      "# TYPE x counter\nx{a=\"\\q\"} 2\n",             // bad escape
      "# TYPE x counter\nx one\n",                      // bad value
      "# TYPE x counter\nx 1\nx 2\n",                   // duplicate sample
      "# TYPE x bogus\n",                               // unknown type
      "# TYPE 9x counter\n",                            // bad name
  };
  for (const char* text : bad) {
    EXPECT_FALSE(testkit::ParsePrometheusText(text).ok()) << text;
  }
  auto ok = testkit::ParsePrometheusText(
      "# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n"
      "# TYPE g gauge\ng{a=\"x\\\"y\\\\z\\n\"} -1.5e3\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->Get("h_count"), 2);
  EXPECT_EQ(ok->Get("g{a=\"x\"y\\z\n\"}"), -1500);
}

}  // namespace
}  // namespace slipstream::daemon
