// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace slipstream::remote {

// How hard the registry client tries before giving up on one registry host: at most
// `max_attempts` tries of one request, sleeping between them with exponential backoff and
// full jitter (a uniform delay in [0, min(max_backoff, initial_backoff * 2^n)]), never
// longer in total than `max_total`. A plain value type.
struct RetryPolicy {
  int max_attempts = 6;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
  absl::Duration max_total = absl::Minutes(2);
};

// True for HTTP statuses worth retrying on the same host: 408, 429 and 5xx except
// 501 Not Implemented and 505 HTTP Version Not Supported (those never get better).
bool IsRetryableHttpStatus(long status);

// True for transport failures worth retrying (Unavailable, DeadlineExceeded): connection
// refused/reset, DNS hiccups, timeouts, truncated bodies.
bool IsRetryableTransportError(const absl::Status& status);

// Parses a Retry-After header value: delta-seconds ("120") or an HTTP-date
// ("Fri, 27 Nov 2026 20:41:13 GMT", also the obsolete RFC 850 and asctime forms). A date in
// the past yields zero. nullopt when the value is empty or malformed.
std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now);

// Decides the delays of one request's retries under a RetryPolicy. Construct one per request
// (not per attempt). Not thread-safe; cheap.
class Backoff {
 public:
  // `now` is the clock (absl::Now in production, a fake in tests); `bits` is a source of
  // randomness for jitter (null = a private absl::BitGen).
  Backoff(const RetryPolicy& policy, std::function<absl::Time()> now,
          std::function<double()> uniform01 = nullptr);

  // Called after a failed attempt. Returns how long to sleep before the next attempt, or
  // nullopt when the policy is exhausted (max_attempts reached, or the sleep would end past
  // max_total since construction). `retry_after` (from the server) is honoured as a lower
  // bound on the delay; it is not capped by max_backoff but must fit in max_total.
  std::optional<absl::Duration> Next(std::optional<absl::Duration> retry_after = std::nullopt);

  // Attempts made so far (failures reported through Next, plus the one in flight).
  int attempts() const { return attempts_; }

 private:
  const RetryPolicy policy_;
  std::function<absl::Time()> now_;
  std::function<double()> uniform01_;
  absl::BitGen gen_;
  absl::Time start_;
  int attempts_ = 1;
};

}  // namespace slipstream::remote
