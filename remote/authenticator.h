// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "remote/credentials.h"
#include "remote/http.h"

namespace slipstream::remote {

// The scope string of the distribution token spec for `repository`: "repository:<repo>:pull"
// or, with `push`, "repository:<repo>:pull,push".
std::string RepositoryScope(const std::string& repository, bool push);

// Percent-encodes `s` for a URL query (RFC 3986 unreserved characters stay as they are).
std::string UrlEncode(std::string_view s);

// Answers registry auth challenges and remembers the result. A registry's 401 carries
// WWW-Authenticate: for "Basic" the credentials are sent as is; for "Bearer" a token is
// fetched from the realm (GET with Basic credentials or anonymously, or POST with the
// identity/refresh token per the distribution token spec; "token" or "access_token" field,
// "expires_in" defaulting to 60 s) and cached per (host, scope) until it expires.
// Concurrent challenges for the same (host, scope) fetch one token (single flight).
//
// Owned by RegistryClient; borrows its transport. Thread-safe.
class Authenticator {
 public:
  // `credentials` may be null (anonymous everywhere). `now` is the clock (null = absl::Now).
  Authenticator(HttpTransport* transport, std::shared_ptr<CredentialStore> credentials,
                std::string user_agent, std::function<absl::Time()> now = nullptr);

  // The Authorization header value for a request to `host` needing `scope`, or "" when no
  // challenge was answered yet (the request then goes out anonymously and may get a 401).
  std::string HeaderFor(const std::string& host, const std::string& scope);

  // Answers a 401 `response` from `host`. `registry` is the name credentials are looked up
  // under; `rejected` is the Authorization value the 401 refused ("" if none was sent).
  // On OK, HeaderFor(host, scope) returns the new value. Another thread's fresh answer is
  // reused. Errors: Unauthenticated (no usable challenge, no credentials for Basic, the token
  // server refused), PermissionDenied (token server 403), Unavailable (token server down or
  // 429/5xx), DataLoss for a malformed token response, the credential store's error.
  absl::Status HandleChallenge(const std::string& host, const std::string& registry,
                               const std::string& scope, const HttpResponse& response,
                               const std::string& rejected, const TlsOptions& tls);

  // Forgets everything cached for `host` (e.g. after credentials changed).
  void Forget(const std::string& host);

 private:
  struct Entry {
    std::string header;
    absl::Time expires;
  };
  using Key = std::pair<std::string, std::string>;  // (host, scope); scope "" for Basic

  absl::StatusOr<Entry> Fetch(const std::string& host, const std::string& registry,
                              const std::string& scope, const HttpResponse& response,
                              const TlsOptions& tls, bool* basic);
  absl::StatusOr<Entry> FetchToken(const std::string& realm, const std::string& service,
                                   const std::string& scope, const Credentials& creds,
                                   const TlsOptions& tls);

  HttpTransport* const transport_;
  const std::shared_ptr<CredentialStore> credentials_;
  const std::string user_agent_;
  const std::function<absl::Time()> now_;

  absl::Mutex mu_;
  std::map<Key, Entry> cache_ ABSL_GUARDED_BY(mu_);
  std::set<Key> in_flight_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::remote
