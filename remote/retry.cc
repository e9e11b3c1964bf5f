// SPDX-License-Identifier: Apache-2.0
#include "remote/retry.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "remote/registry_client_util.h"

namespace slipstream::remote {

bool IsRetryableHttpStatus(long status) {
  if (status == 408 || status == 429) return true;
  // 501 and 505 describe what the server can do, not how it feels right now.
  return status >= 500 && status <= 599 && status != 501 && status != 505;
}

bool IsRetryableTransportError(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

std::optional<absl::Duration> ParseRetryAfter(std::string_view value, absl::Time now) {
  std::string_view v = util::Strip(value);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    // Absurdly long numbers overflow; treat them as "a very long time", which the backoff
    // then refuses because it exceeds max_total.
    if (!util::ParseInt64(v, &seconds)) return absl::InfiniteDuration();
    return absl::Seconds(seconds);
  }
  // RFC 9110 §5.6.7: IMF-fixdate is preferred, the other two must still be accepted.
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // Sun, 06 Nov 1994 08:49:37 GMT
      "%A, %d-%b-%y %H:%M:%S GMT",  // Sunday, 06-Nov-94 08:49:37 GMT
      "%a %b %e %H:%M:%S %Y",       // Sun Nov  6 08:49:37 1994
  };
  const std::string text(v);
  for (const char* format : kFormats) {
    absl::Time when;
    std::string err;
    if (absl::ParseTime(format, text, absl::UTCTimeZone(), &when, &err)) {
      return std::max(absl::ZeroDuration(), when - now);
    }
  }
  return std::nullopt;
}

Backoff::Backoff(const RetryPolicy& policy, std::function<absl::Time()> now,
                 std::function<double()> uniform01)
    : policy_(policy), now_(std::move(now)), uniform01_(std::move(uniform01)) {
  if (!now_) now_ = [] { return absl::Now(); };
  start_ = now_();
}

std::optional<absl::Duration> Backoff::Next(std::optional<absl::Duration> retry_after) {
  if (attempts_ >= policy_.max_attempts) return std::nullopt;
  // Full jitter (uniform in [0, cap]) spreads out clients that failed together, so a
  // recovering registry is not hit by a synchronized wave.
  absl::Duration cap = policy_.initial_backoff;
  for (int i = 1; i < attempts_ && cap < policy_.max_backoff; ++i) cap *= 2;
  cap = std::min(cap, policy_.max_backoff);
  double r = uniform01_ ? uniform01_() : absl::Uniform<double>(gen_, 0.0, 1.0);
  absl::Duration delay = cap * std::clamp(r, 0.0, 1.0);
  if (retry_after.has_value()) delay = std::max(delay, *retry_after);
  if (now_() + delay - start_ > policy_.max_total) return std::nullopt;
  ++attempts_;
  return delay;
}

}  // namespace slipstream::remote
