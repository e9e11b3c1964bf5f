// SPDX-License-Identifier: Apache-2.0
#include "testkit/token_server.h"

#include <atomic>
#include <random>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "testkit/tls_ca.h"

namespace slipstream::testkit {
namespace {

// "repository:library/busybox:pull,push" → type, name, actions. The name may itself contain
// ':' only in exotic types, so type is cut at the first ':' and actions at the last.
struct Scope {
  std::string type;
  std::string name;
  std::vector<std::string> actions;
};

bool ParseScope(std::string_view text, Scope* scope) {
  size_t first = text.find(':');
  size_t last = text.rfind(':');
  if (first == std::string_view::npos || first == last) return false;
  scope->type = std::string(text.substr(0, first));
  scope->name = std::string(text.substr(first + 1, last - first - 1));
  std::string_view actions = text.substr(last + 1);
  scope->actions = absl::StrSplit(absl::string_view(actions.data(), actions.size()), ',',
                                  absl::SkipEmpty());
  return !scope->type.empty() && !scope->name.empty();
}

// Scopes from query parameters or a form field: each value may hold several scopes
// separated by spaces (OAuth2 style).
std::vector<std::string> SplitScopes(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& v : values) {
    for (absl::string_view s : absl::StrSplit(v, ' ', absl::SkipEmpty())) out.emplace_back(s);
  }
  return out;
}

std::string RandomId() {
  static std::atomic<uint64_t> counter{0};
  std::random_device rd;
  return absl::StrCat(absl::Hex(rd()), absl::Hex(rd()), "-", counter.fetch_add(1));
}

HttpServerResponse JsonError(int status, std::string_view code, std::string_view detail) {
  nlohmann::json body = {{"error", code}, {"error_description", detail}};
  HttpServerResponse r = HttpServerResponse::Text(status, body.dump(), "application/json");
  if (status == 401) r.headers.emplace_back("WWW-Authenticate", "Basic realm=\"slipstream-token\"");
  return r;
}

}  // namespace

TokenServer::TokenServer(TokenServerOptions options, std::string cert_path,
                         std::unique_ptr<TokenSigner> signer)
    : options_(std::move(options)), cert_path_(std::move(cert_path)), signer_(std::move(signer)) {}

TokenServer::~TokenServer() {
  // Stop serving before members the handler touches go away.
  if (http_ != nullptr) http_->Stop();
}

absl::StatusOr<std::unique_ptr<TokenServer>> TokenServer::Start(const std::string& dir,
                                                                TokenServerOptions options) {
  SS_ASSIGN_OR_RETURN(CertFiles files, MakeSelfSignedRsaCert(dir, "token-signing",
                                                             "slipstream test token issuer"));
  SS_ASSIGN_OR_RETURN(std::unique_ptr<TokenSigner> signer, TokenSigner::FromPemFile(files.key_path));
  std::unique_ptr<TokenServer> server(
      new TokenServer(std::move(options), files.cert_path, std::move(signer)));
  SS_ASSIGN_OR_RETURN(server->http_,
                      HttpServer::Start([s = server.get()](const HttpServerRequest& r) {
                        return s->Handle(r);
                      }));
  return server;
}

std::string TokenServer::realm() const { return absl::StrCat(http_->url(), "/token"); }

void TokenServer::IssueExpiredTokens(int n) {
  absl::MutexLock lock(&mu_);
  expired_to_issue_ = n;
}

int TokenServer::tokens_issued() const {
  absl::MutexLock lock(&mu_);
  return tokens_issued_;
}

std::vector<TokenRequestRecord> TokenServer::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

absl::StatusOr<std::string> TokenServer::MintToken(const std::string& subject,
                                                   const std::vector<std::string>& scopes,
                                                   absl::Duration ttl) const {
  nlohmann::json access = nlohmann::json::array();
  for (const std::string& text : scopes) {
    Scope scope;
    if (!ParseScope(text, &scope)) {
      return absl::InvalidArgumentError(absl::StrCat("malformed scope \"", text, "\""));
    }
    access.push_back({{"type", scope.type}, {"name", scope.name}, {"actions", scope.actions}});
  }
  int64_t now = absl::ToUnixSeconds(absl::Now());
  // nbf slightly in the past: the registry and this process share a clock, but a token minted
  // at the end of one second must not be "not yet valid" at the start of it.
  nlohmann::json claims = {
      {"iss", options_.issuer},
      {"sub", subject},
      {"aud", options_.service},
      {"exp", now + absl::ToInt64Seconds(ttl)},
      {"nbf", now - 10},
      {"iat", now},
      {"jti", RandomId()},
      {"access", access},
  };
  return signer_->Sign(claims.dump());
}

HttpServerResponse TokenServer::Handle(const HttpServerRequest& request) {
  TokenRequestRecord record;
  record.method = request.method;
  HttpServerResponse response;
  if (request.path != "/token") {
    response = JsonError(404, "not_found", "only /token is served here");
  } else if (request.method == "GET") {
    response = HandleGet(request, &record);
  } else if (request.method == "POST") {
    response = HandlePost(request, &record);
  } else {
    response = JsonError(405, "method_not_allowed", "use GET or POST");
  }
  record.status = response.status;
  absl::MutexLock lock(&mu_);
  requests_.push_back(std::move(record));
  return response;
}

HttpServerResponse TokenServer::HandleGet(const HttpServerRequest& request,
                                          TokenRequestRecord* record) {
  record->scopes = SplitScopes(request.QueryParams("scope"));
  std::string service = request.QueryParam("service");
  if (!service.empty() && service != options_.service) {
    return JsonError(400, "invalid_request", absl::StrCat("unknown service \"", service, "\""));
  }
  std::string auth = request.Header("authorization");
  if (!auth.empty()) {
    std::string decoded;
    if (!absl::StartsWithIgnoreCase(auth, "basic ") ||
        !absl::Base64Unescape(absl::string_view(auth).substr(6), &decoded)) {
      return JsonError(401, "unauthorized", "only Basic credentials are accepted");
    }
    size_t colon = decoded.find(':');
    std::string user = decoded.substr(0, colon);
    std::string pass = colon == std::string::npos ? "" : decoded.substr(colon + 1);
    auto it = options_.users.find(user);
    if (it == options_.users.end() || it->second != pass) {
      return JsonError(401, "unauthorized", "invalid username or password");
    }
    record->subject = user;
  }
  bool offline = request.QueryParam("offline_token") == "true";
  return Issue(record->subject, record->scopes, offline && !record->subject.empty());
}

HttpServerResponse TokenServer::HandlePost(const HttpServerRequest& request,
                                           TokenRequestRecord* record) {
  std::map<std::string, std::string> form;
  std::vector<std::string> scope_values;
  for (auto& [k, v] : ParseUrlEncoded(request.body)) {
    if (k == "scope") scope_values.push_back(v);
    form.emplace(k, v);
  }
  record->grant_type = form["grant_type"];
  record->scopes = SplitScopes(scope_values);
  if (!form["service"].empty() && form["service"] != options_.service) {
    return JsonError(400, "invalid_request", absl::StrCat("unknown service \"", form["service"], "\""));
  }
  if (record->grant_type == "password") {
    auto it = options_.users.find(form["username"]);
    if (it == options_.users.end() || it->second != form["password"]) {
      return JsonError(401, "invalid_grant", "invalid username or password");
    }
    record->subject = form["username"];
    return Issue(record->subject, record->scopes, form["access_type"] == "offline");
  }
  if (record->grant_type == "refresh_token") {
    {
      absl::MutexLock lock(&mu_);
      auto it = refresh_tokens_.find(form["refresh_token"]);
      if (it == refresh_tokens_.end()) {
        return JsonError(401, "invalid_grant", "unknown refresh token");
      }
      record->subject = it->second;
    }
    return Issue(record->subject, record->scopes, /*with_refresh_token=*/true);
  }
  return JsonError(400, "unsupported_grant_type",
                   absl::StrCat("grant_type \"", record->grant_type, "\" is not supported"));
}

HttpServerResponse TokenServer::Issue(const std::string& subject,
                                      const std::vector<std::string>& scopes,
                                      bool with_refresh_token) {
  // Grant the intersection of what was asked and what the client may do; asking for more is
  // not an error (the registry answers 401/403 for the missing actions).
  std::vector<std::string> granted;
  for (const std::string& text : scopes) {
    Scope scope;
    if (!ParseScope(text, &scope)) {
      return JsonError(400, "invalid_scope", absl::StrCat("malformed scope \"", text, "\""));
    }
    std::vector<std::string> actions;
    for (const std::string& a : scope.actions) {
      if (!subject.empty() || (options_.anonymous_pull && scope.type == "repository" && a == "pull")) {
        actions.push_back(a);
      }
    }
    granted.push_back(absl::StrCat(scope.type, ":", scope.name, ":", absl::StrJoin(actions, ",")));
  }
  bool expired = false;
  {
    absl::MutexLock lock(&mu_);
    if (expired_to_issue_ > 0) {
      --expired_to_issue_;
      expired = true;
    }
  }
  // Distribution accepts tokens up to 60 s past exp (clock-skew leeway), so an "expired"
  // token must lie well beyond that to be rejected.
  absl::Duration ttl = expired ? absl::Minutes(-10) : options_.token_ttl;
  absl::StatusOr<std::string> token = MintToken(subject, granted, ttl);
  if (!token.ok()) return JsonError(500, "server_error", token.status().ToString());

  absl::Time now = absl::Now();
  nlohmann::json body = {
      {"token", *token},
      {"access_token", *token},
      // Clients are told the nominal lifetime even for deliberately expired tokens: they must
      // discover the expiry from the registry's 401.
      {"expires_in", absl::ToInt64Seconds(options_.token_ttl)},
      {"issued_at", absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", now, absl::UTCTimeZone())},
  };
  absl::MutexLock lock(&mu_);
  ++tokens_issued_;
  if (with_refresh_token) {
    std::string refresh = RandomId();
    refresh_tokens_[refresh] = subject;
    body["refresh_token"] = refresh;
  }
  return HttpServerResponse::Text(200, body.dump(), "application/json");
}

}  // namespace slipstream::testkit
