// SPDX-License-Identifier: Apache-2.0
// A scripted HttpTransport for unit tests of the registry client.
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "remote/http.h"

namespace slipstream::remote::testing {

// What the fake answers to one request.
struct FakeReply {
  long status = 200;
  std::vector<std::pair<std::string, std::string>> headers;  // any case; lower-cased on reply
  std::string body;
  absl::Status error;       // non-OK: a transport failure instead of a response
  int64_t cut_after = -1;   // >= 0: deliver this many body bytes, then fail (Unavailable)
};

// Calls a handler for every request and records the requests. Thread-safe.
class FakeTransport : public HttpTransport {
 public:
  using Handler = std::function<FakeReply(const HttpRequest&)>;
  explicit FakeTransport(Handler handler) : handler_(std::move(handler)) {}

  absl::StatusOr<HttpResponse> Do(const HttpRequest& request, const BodySink* sink,
                                  size_t max_body) override {
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
    }
    FakeReply reply = handler_(request);
    if (!reply.error.ok()) return reply.error;
    HttpResponse resp;
    resp.status = reply.status;
    resp.effective_url = request.url;
    for (auto& [k, v] : reply.headers) {
      std::string lower = k;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      resp.headers.emplace_back(lower, v);
    }
    if (request.method == "HEAD") return resp;
    std::string body = reply.body;
    bool cut = reply.cut_after >= 0 && reply.cut_after < static_cast<int64_t>(body.size());
    if (cut) body.resize(reply.cut_after);
    const bool ok = resp.status >= 200 && resp.status < 300;
    if (sink != nullptr && ok) {
      for (size_t off = 0; off < body.size(); off += 4096) {
        std::string_view piece = std::string_view(body).substr(off, 4096);
        absl::Status st = (*sink)(piece);
        if (!st.ok()) return st;
        resp.body_bytes += static_cast<int64_t>(piece.size());
      }
    } else {
      if (sink == nullptr && body.size() > max_body) {
        return absl::ResourceExhaustedError("fake: body exceeds max_body");
      }
      resp.body = body;
      resp.body_bytes = static_cast<int64_t>(body.size());
    }
    if (cut) return absl::UnavailableError("fake: connection reset mid-body");
    return resp;
  }

  std::vector<HttpRequest> requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // Requests whose URL contains `part`.
  int CountUrl(const std::string& part) {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count_if(requests_.begin(), requests_.end(), [&](const HttpRequest& r) {
      return r.url.find(part) != std::string::npos;
    }));
  }

 private:
  Handler handler_;
  absl::Mutex mu_;
  std::vector<HttpRequest> requests_;
};

// A manual clock; "sleeping" advances it and is recorded.
struct FakeClock {
  absl::Mutex mu;
  absl::Time now = absl::FromUnixSeconds(1'800'000'000);
  std::vector<absl::Duration> sleeps;

  absl::Time Now() {
    absl::MutexLock lock(&mu);
    return now;
  }
  void Sleep(absl::Duration d) {
    absl::MutexLock lock(&mu);
    sleeps.push_back(d);
    now += d;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu);
    now += d;
  }
};

// Header value of `name` (case-insensitive) in a request, or "".
inline std::string RequestHeader(const HttpRequest& r, std::string_view name) {
  for (const auto& [k, v] : r.headers) {
    if (k.size() == name.size() &&
        std::equal(k.begin(), k.end(), name.begin(),
                   [](char a, char b) { return ::tolower(a) == ::tolower(b); })) {
      return v;
    }
  }
  return "";
}

// Answers a GET with optional "Range: bytes=a-b" over `blob` like a registry would.
inline FakeReply ServeBlob(const HttpRequest& r, const std::string& blob) {
  FakeReply reply;
  std::string range = RequestHeader(r, "range");
  if (range.empty()) {
    reply.body = blob;
    return reply;
  }
  long long a = 0, b = 0;
  if (sscanf(range.c_str(), "bytes=%lld-%lld", &a, &b) != 2 ||
      a >= static_cast<long long>(blob.size())) {
    reply.status = 416;
    return reply;
  }
  b = std::min<long long>(b, blob.size() - 1);
  reply.status = 206;
  reply.body = blob.substr(a, b - a + 1);
  reply.headers.emplace_back("Content-Range", "bytes " + std::to_string(a) + "-" +
                                                  std::to_string(b) + "/" +
                                                  std::to_string(blob.size()));
  return reply;
}

}  // namespace slipstream::remote::testing
