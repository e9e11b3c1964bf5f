// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http_server.h"
#include "testkit/token_signer.h"

namespace slipstream::testkit {

struct TokenServerOptions {
  // The `service` (JWT audience) and `issuer` the registry is configured with.
  std::string service = "slipstream-test-registry";
  std::string issuer = "slipstream-testkit";
  // Known users and their passwords. An authenticated user gets every action it asks for.
  std::map<std::string, std::string> users;
  // Anonymous clients get "pull" on any repository (and nothing else) when true, no access
  // at all when false.
  bool anonymous_pull = true;
  absl::Duration token_ttl = absl::Minutes(5);
};

// One request the token server answered, for assertions.
struct TokenRequestRecord {
  std::string method;         // "GET" or "POST"
  std::string grant_type;     // POST only: "password" or "refresh_token"
  std::string subject;        // authenticated user, empty when anonymous
  std::vector<std::string> scopes;
  int status = 0;             // HTTP status answered
};

// A Docker-registry token service (distribution "token" auth) on 127.0.0.1 for tests.
// GET /token?service=&scope=[&offline_token=true] with optional Basic credentials, and the
// OAuth2 form POST /token (grant_type=password or refresh_token). Answers
// {token, access_token, expires_in, issued_at[, refresh_token]} with an RS256 JWT carrying
// iss/sub/aud/exp/nbf/iat/jti/access, signed by a key whose self-signed certificate
// (cert_path()) goes into the registry's `auth.token.rootcertbundle`. Unknown users or wrong
// passwords get 401; actions the client may not have are left out of the token (not an
// error, as the spec demands). Owned by the test or by a RegistryFixture; all methods are
// thread-safe.
class TokenServer {
 public:
  // Makes a signing key in `dir` (which must exist) and starts serving.
  static absl::StatusOr<std::unique_ptr<TokenServer>> Start(const std::string& dir,
                                                            TokenServerOptions options);
  ~TokenServer();

  // "http://127.0.0.1:PORT/token": the realm for the registry config and WWW-Authenticate.
  std::string realm() const;
  const std::string& service() const { return options_.service; }
  const std::string& issuer() const { return options_.issuer; }
  // PEM certificate of the signing key.
  const std::string& cert_path() const { return cert_path_; }

  // Makes the next `n` tokens expire in the past (beyond the registry's 60 s clock-skew
  // leeway), so the registry rejects them with 401: exercises a client's re-auth path.
  void IssueExpiredTokens(int n);
  // Number of access tokens issued so far.
  int tokens_issued() const;
  // Every request answered so far, oldest first.
  std::vector<TokenRequestRecord> requests() const;

  // Mints a token directly, bypassing HTTP: `scopes` like "repository:foo/bar:pull,push".
  absl::StatusOr<std::string> MintToken(const std::string& subject,
                                        const std::vector<std::string>& scopes,
                                        absl::Duration ttl) const;

 private:
  TokenServer(TokenServerOptions options, std::string cert_path,
              std::unique_ptr<TokenSigner> signer);
  HttpServerResponse Handle(const HttpServerRequest& request);
  HttpServerResponse HandleGet(const HttpServerRequest& request, TokenRequestRecord* record);
  HttpServerResponse HandlePost(const HttpServerRequest& request, TokenRequestRecord* record);
  // Builds the JSON answer for `subject` (empty = anonymous) and the granted `scopes`.
  HttpServerResponse Issue(const std::string& subject, const std::vector<std::string>& scopes,
                           bool with_refresh_token);

  const TokenServerOptions options_;
  const std::string cert_path_;
  const std::unique_ptr<TokenSigner> signer_;
  std::unique_ptr<HttpServer> http_;

  mutable absl::Mutex mu_;
  int expired_to_issue_ ABSL_GUARDED_BY(mu_) = 0;
  int tokens_issued_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::string> refresh_tokens_ ABSL_GUARDED_BY(mu_);  // token → user
  std::vector<TokenRequestRecord> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::testkit
