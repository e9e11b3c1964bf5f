// SPDX-License-Identifier: Apache-2.0
// Private pieces of RegistryClient shared by its .cc files (not for other modules).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "common/digest.h"
#include "remote/registry_client.h"

namespace slipstream::remote {

// One logical registry operation, run by Execute against the host list.
struct RegistryClient::Call {
  std::string method = "GET";   // for error messages (build sets the request's own method)
  const Reference* repo = nullptr;
  HostCapability cap = kCapPull;
  bool push = false;            // token scope "pull,push" instead of "pull"
  std::string what;             // "blob sha256:ab12cd34ef56", "manifest latest", ...
  // Builds the request for `host`; called before every attempt, so it may depend on how far
  // an earlier attempt got (Range resume).
  std::function<HttpRequest(const RegistryHost&)> build;
  const BodySink* sink = nullptr;
  size_t max_body = 16u << 20;
  bool follow_redirects = true;  // handled here (not by the transport) to control headers
  std::string redirect_key;      // non-empty: remember the redirect target under this key
  bool idempotent = true;        // false: never repeat the request after a failure
};

// What Execute returns: the final response and where it came from.
struct RegistryClient::Exchange {
  HttpResponse response;
  RegistryHost host;
  std::string url;  // the URL of the request that produced `response`
};

namespace internal {

// "sha256:ab12cd34ef56" (algorithm and 12 hex digits) for messages.
std::string ShortDigest(const Digest& d);
// "https://host:port" of `url` (scheme and authority, lower-case scheme).
std::string Origin(std::string_view url);
// Resolves a Location header against the URL it answered (absolute, scheme-relative,
// absolute-path and relative-path forms).
std::string ResolveUrl(std::string_view base, std::string_view location);
// The error for a non-success response: "<context>: HTTP 404 Not Found (BLOB_UNKNOWN: …)",
// code by status (404 NotFound, 401 Unauthenticated, 403 PermissionDenied, 408/429/5xx
// Unavailable, 416 OutOfRange, 400 InvalidArgument, other FailedPrecondition).
absl::Status HttpError(std::string_view context, const HttpResponse& response);
// "<method> <host>/<repository> <what>".
std::string Context(std::string_view method, const RegistryHost& host, const Reference& repo,
                    std::string_view what);

}  // namespace internal
}  // namespace slipstream::remote
