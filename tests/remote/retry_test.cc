// SPDX-License-Identifier: Apache-2.0
#include "remote/retry.h"

#include <gtest/gtest.h>

namespace slipstream::remote {
namespace {

TEST(RetryTest, RetryableStatuses) {
  for (long s : {408L, 429L, 500L, 502L, 503L, 504L}) EXPECT_TRUE(IsRetryableHttpStatus(s)) << s;
  for (long s : {200L, 206L, 400L, 401L, 403L, 404L, 416L, 501L, 505L}) {
    EXPECT_FALSE(IsRetryableHttpStatus(s)) << s;
  }
  EXPECT_TRUE(IsRetryableTransportError(absl::UnavailableError("reset")));
  EXPECT_TRUE(IsRetryableTransportError(absl::DeadlineExceededError("slow")));
  EXPECT_FALSE(IsRetryableTransportError(absl::FailedPreconditionError("tls")));
  EXPECT_FALSE(IsRetryableTransportError(absl::DataLossError("bad")));
}

TEST(RetryTest, ParseRetryAfterSeconds) {
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  EXPECT_EQ(ParseRetryAfter("120", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), absl::ZeroDuration());
}

TEST(RetryTest, ParseRetryAfterHttpDates) {
  // Sun, 06 Nov 1994 08:49:37 GMT = 784111777.
  absl::Time now = absl::FromUnixSeconds(784111777 - 30);
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfter("Sun Nov  6 08:49:37 1994", now), absl::Seconds(30));
  // A date in the past means "now".
  EXPECT_EQ(ParseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now + absl::Hours(1)),
            absl::ZeroDuration());
}

TEST(RetryTest, ParseRetryAfterRejectsGarbage) {
  absl::Time now = absl::Now();
  EXPECT_FALSE(ParseRetryAfter("", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("-5", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("1.5", now).has_value());
}

TEST(RetryTest, BackoffDoublesUpToCapAndStopsAtMaxAttempts) {
  RetryPolicy p;
  p.max_attempts = 6;
  p.initial_backoff = absl::Milliseconds(200);
  p.max_backoff = absl::Seconds(1);
  p.max_total = absl::Hours(1);
  absl::Time now = absl::UnixEpoch();
  Backoff b(p, [&] { return now; }, [] { return 1.0; });  // jitter at its maximum
  std::vector<absl::Duration> got;
  while (auto d = b.Next()) got.push_back(*d);
  std::vector<absl::Duration> want = {absl::Milliseconds(200), absl::Milliseconds(400),
                                      absl::Milliseconds(800), absl::Seconds(1),
                                      absl::Seconds(1)};
  EXPECT_EQ(got, want);
  EXPECT_EQ(b.attempts(), 6);
}

TEST(RetryTest, BackoffFullJitterCanBeZero) {
  RetryPolicy p;
  absl::Time now = absl::UnixEpoch();
  Backoff b(p, [&] { return now; }, [] { return 0.0; });
  EXPECT_EQ(b.Next(), absl::ZeroDuration());
}

TEST(RetryTest, BackoffRandomDelaysStayWithinCap) {
  RetryPolicy p;
  p.max_attempts = 100;
  p.max_total = absl::Hours(10);
  absl::Time now = absl::UnixEpoch();
  Backoff b(p, [&] { return now; });
  for (int i = 0; i < 50; ++i) {
    auto d = b.Next();
    ASSERT_TRUE(d.has_value());
    EXPECT_GE(*d, absl::ZeroDuration());
    EXPECT_LE(*d, p.max_backoff);
  }
}

TEST(RetryTest, RetryAfterIsALowerBoundButMustFitMaxTotal) {
  RetryPolicy p;
  p.max_total = absl::Seconds(30);
  absl::Time now = absl::UnixEpoch();
  Backoff b(p, [&] { return now; }, [] { return 0.5; });
  EXPECT_EQ(b.Next(absl::Seconds(7)), absl::Seconds(7));
  now += absl::Seconds(7);
  // 7 s spent; 30 s more would pass max_total.
  EXPECT_FALSE(b.Next(absl::Seconds(30)).has_value());
}

TEST(RetryTest, MaxTotalBoundsPlainBackoff) {
  RetryPolicy p;
  p.max_attempts = 100;
  p.initial_backoff = absl::Seconds(1);
  p.max_backoff = absl::Seconds(1);
  p.max_total = absl::Seconds(3);
  absl::Time now = absl::UnixEpoch();
  Backoff b(p, [&] { return now; }, [] { return 1.0; });
  int n = 0;
  while (auto d = b.Next()) {
    now += *d;
    ++n;
  }
  EXPECT_EQ(n, 3);
}

}  // namespace
}  // namespace slipstream::remote
