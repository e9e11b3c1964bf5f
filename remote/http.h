// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace slipstream::remote {

// TLS settings for one request (they come from hosts.toml per registry host).
struct TlsOptions {
  bool skip_verify = false;          // do not verify the server certificate or name
  std::string ca_file;               // extra CA bundle (PEM); empty = system store
  std::string client_cert_file;      // optional client certificate (PEM)
  std::string client_key_file;       // its key
};

// One HTTP request. Header names are case-insensitive; keep them as written.
struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  // Request body for POST/PUT/PATCH (sent with Content-Length). Empty = no body.
  std::string body;
  TlsOptions tls;
  bool follow_redirects = true;      // at most 10 hops; Authorization is dropped across hosts
  absl::Duration connect_timeout = absl::Seconds(10);
  // Abort when fewer than `low_speed_bytes` arrive during any `low_speed_window`.
  int64_t low_speed_bytes = 1;
  absl::Duration low_speed_window = absl::Seconds(30);
  // Hard bound for the whole exchange.
  absl::Duration total_timeout = absl::Minutes(30);
};

// Response headers, names lower-cased, in arrival order (of the final hop only).
struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;           // filled only when no sink was given
  std::string effective_url;  // URL of the final hop after redirects
  int64_t body_bytes = 0;     // bytes of body delivered (to the sink or into `body`)

  // First value of header `name` (lower-case), or empty.
  std::string Header(std::string_view name) const;
};

// Receives body bytes as they arrive. Returning a non-OK status aborts the transfer and
// makes Do() return that status.
using BodySink = std::function<absl::Status(std::string_view chunk)>;

// Moves HTTP requests. Implementations: CurlTransport (libcurl multi, connection reuse,
// HTTP/2 multiplexing) and fakes in tests. Thread-safe: many threads call Do() at once.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Performs `request`. Any HTTP status is a successful exchange (the caller interprets
  // it); errors are transport failures: Unavailable for connection refused/reset, DNS,
  // timeouts and truncated bodies, FailedPrecondition for TLS verification failures,
  // InvalidArgument for a malformed URL, or the sink's own status. When `sink` is set the
  // body streams into it (for 2xx responses only; error bodies up to 64 KiB land in `body`),
  // otherwise the body is collected into `response.body` up to `max_body` bytes
  // (ResourceExhausted past that).
  virtual absl::StatusOr<HttpResponse> Do(const HttpRequest& request, const BodySink* sink,
                                          size_t max_body = 16u << 20) = 0;
};

}  // namespace slipstream::remote
