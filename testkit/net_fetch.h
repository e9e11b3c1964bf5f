// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <curl/curl.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace slipstream::testkit {

struct FetchOptions {
  std::string method = "GET";
  // Extra request headers, "Name: value".
  std::vector<std::string> headers;
  // Request body (sent with Content-Length; an empty POST/PUT still sends length 0). Labelled
  // application/octet-stream unless `headers` has a Content-Type.
  std::string body;
  // PEM bundle to verify HTTPS servers with; empty = the system store.
  std::string ca_file;
  // "user:password" for Basic auth; empty = none.
  std::string user_password;
  bool follow_redirects = false;
  // Abort the whole exchange after this long (CURLE_OPERATION_TIMEDOUT).
  absl::Duration timeout = absl::Seconds(20);
};

struct FetchResult {
  // CURLE_OK, or why the exchange failed (CURLE_PARTIAL_FILE for a short body,
  // CURLE_RECV_ERROR for a reset, CURLE_OPERATION_TIMEDOUT, CURLE_PEER_FAILED_VERIFICATION, …).
  CURLcode curl_code = CURLE_OK;
  std::string error;  // curl's message when curl_code != CURLE_OK
  long status = 0;    // HTTP status of the last response, 0 when none arrived
  long http_version = 0;  // CURL_HTTP_VERSION_1_1, CURL_HTTP_VERSION_2_0, …
  // Response headers of the last response, names lower-cased, in order.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;   // every body byte received, also when the transfer failed midway

  bool ok() const { return curl_code == CURLE_OK; }
  // First value of header `name` (lower-case), or empty.
  std::string Header(std::string_view name) const;
};

// One blocking HTTP exchange with libcurl, for tests and fixtures that need an independent
// client (one that shares no code with slipstream's own transport). Thread-safe. Returns an
// error only when curl cannot be set up; transfer failures are reported in the result.
absl::StatusOr<FetchResult> Fetch(const std::string& url, const FetchOptions& options = {});

}  // namespace slipstream::testkit
