// SPDX-License-Identifier: Apache-2.0
#include "remote/authenticator.h"

#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "remote/registry_client_util.h"
#include "remote/www_authenticate.h"

namespace slipstream::remote {
namespace {

constexpr absl::Duration kDefaultTokenLifetime = absl::Seconds(60);
// Token responses are tiny; anything bigger is not a token server.
constexpr size_t kMaxTokenResponse = 1u << 20;

std::string Base64(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(n);
  return out;
}

absl::Status TokenHttpError(const std::string& realm, const HttpResponse& r) {
  std::string msg = absl::StrCat("token server ", realm, ": HTTP ", r.status);
  if (r.status == 401) return absl::UnauthenticatedError(msg + " (credentials rejected)");
  if (r.status == 403) return absl::PermissionDeniedError(msg);
  if (r.status == 429 || r.status >= 500) return absl::UnavailableError(msg);
  return absl::UnauthenticatedError(msg);
}

}  // namespace

std::string RepositoryScope(const std::string& repository, bool push) {
  return absl::StrCat("repository:", repository, push ? ":pull,push" : ":pull");
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Authenticator::Authenticator(HttpTransport* transport,
                             std::shared_ptr<CredentialStore> credentials,
                             std::string user_agent, std::function<absl::Time()> now)
    : transport_(transport),
      credentials_(std::move(credentials)),
      user_agent_(std::move(user_agent)),
      now_(now ? std::move(now) : [] { return absl::Now(); }) {}

std::string Authenticator::HeaderFor(const std::string& host, const std::string& scope) {
  const absl::Time now = now_();
  absl::MutexLock lock(&mu_);
  for (const Key& key : {Key{host, scope}, Key{host, ""}}) {
    auto it = cache_.find(key);
    if (it != cache_.end() && it->second.expires > now) return it->second.header;
  }
  return "";
}

void Authenticator::Forget(const std::string& host) {
  absl::MutexLock lock(&mu_);
  for (auto it = cache_.begin(); it != cache_.end();) {
    it = it->first.first == host ? cache_.erase(it) : std::next(it);
  }
}

absl::Status Authenticator::HandleChallenge(const std::string& host, const std::string& registry,
                                            const std::string& scope,
                                            const HttpResponse& response,
                                            const std::string& rejected, const TlsOptions& tls) {
  const Key key{host, scope};
  {
    absl::MutexLock lock(&mu_);
    // Single flight: when many Range requests hit an expired token together, one of them
    // fetches and the rest reuse its answer.
    auto idle = [this, &key]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return in_flight_.count(key) == 0;
    };
    mu_.Await(absl::Condition(&idle));
    const absl::Time now = now_();
    for (const Key& k : {key, Key{host, ""}}) {
      auto it = cache_.find(k);
      if (it != cache_.end() && it->second.expires > now && it->second.header != rejected) {
        return absl::OkStatus();
      }
    }
    in_flight_.insert(key);
  }
  bool basic = false;
  absl::StatusOr<Entry> entry = Fetch(host, registry, scope, response, tls, &basic);
  absl::MutexLock lock(&mu_);
  in_flight_.erase(key);
  if (!entry.ok()) return entry.status();
  cache_[basic ? Key{host, ""} : key] = *std::move(entry);
  return absl::OkStatus();
}

absl::StatusOr<Authenticator::Entry> Authenticator::Fetch(const std::string& host,
                                                          const std::string& registry,
                                                          const std::string& scope,
                                                          const HttpResponse& response,
                                                          const TlsOptions& tls, bool* basic) {
  std::vector<AuthChallenge> challenges;
  for (const auto& [name, value] : response.headers) {
    if (name != "www-authenticate") continue;
    absl::StatusOr<std::vector<AuthChallenge>> parsed = ParseWwwAuthenticate(value);
    if (!parsed.ok()) {
      log::Warn("ignoring malformed WWW-Authenticate", {{"host", host}});
      continue;
    }
    challenges.insert(challenges.end(), parsed->begin(), parsed->end());
  }
  Credentials creds;
  if (credentials_ != nullptr) {
    SS_ASSIGN_OR_RETURN(creds, credentials_->Lookup(registry));
  }
  // Bearer first: registries offering both prefer tokens, and tokens keep the password off
  // every blob request.
  for (const AuthChallenge& c : challenges) {
    if (c.scheme != "bearer") continue;
    if (!creds.registry_token.empty()) {
      return Entry{"Bearer " + creds.registry_token, absl::InfiniteFuture()};
    }
    std::string realm = c.Param("realm");
    if (realm.empty()) return absl::UnauthenticatedError(host + ": Bearer challenge without realm");
    std::string want = scope.empty() ? c.Param("scope") : scope;
    return FetchToken(realm, c.Param("service"), want, creds, tls);
  }
  for (const AuthChallenge& c : challenges) {
    if (c.scheme != "basic") continue;
    if (creds.username.empty() && creds.password.empty()) {
      return absl::UnauthenticatedError(
          absl::StrCat(host, " requires Basic credentials and none are configured for ", registry));
    }
    *basic = true;
    return Entry{"Basic " + Base64(creds.username + ":" + creds.password), absl::InfiniteFuture()};
  }
  return absl::UnauthenticatedError(
      absl::StrCat(host, ": HTTP 401 without a usable WWW-Authenticate challenge"));
}

absl::StatusOr<Authenticator::Entry> Authenticator::FetchToken(const std::string& realm,
                                                               const std::string& service,
                                                               const std::string& scope,
                                                               const Credentials& creds,
                                                               const TlsOptions& tls) {
  HttpRequest req;
  req.tls = tls;
  req.headers.emplace_back("User-Agent", user_agent_);
  req.total_timeout = absl::Minutes(1);
  absl::StatusOr<HttpResponse> resp;
  if (!creds.identity_token.empty()) {
    // OAuth2 refresh-token grant (distribution token spec, "oauth.md").
    req.method = "POST";
    req.url = realm;
    req.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    req.body = absl::StrCat("grant_type=refresh_token&client_id=slipstream&refresh_token=",
                            UrlEncode(creds.identity_token));
    if (!service.empty()) absl::StrAppend(&req.body, "&service=", UrlEncode(service));
    if (!scope.empty()) absl::StrAppend(&req.body, "&scope=", UrlEncode(scope));
    resp = transport_->Do(req, nullptr, kMaxTokenResponse);
    if (!resp.ok()) return Annotate(resp.status(), "token server " + realm);
  }
  if (creds.identity_token.empty() || resp->status == 404 || resp->status == 405) {
    // GET flow: anonymous, or Basic credentials; also the fallback for token servers that
    // do not implement the OAuth2 POST endpoint.
    req = HttpRequest();
    req.tls = tls;
    req.headers.emplace_back("User-Agent", user_agent_);
    req.total_timeout = absl::Minutes(1);
    req.url = realm;
    char sep = realm.find('?') == std::string::npos ? '?' : '&';
    if (!service.empty()) {
      absl::StrAppend(&req.url, std::string(1, sep), "service=", UrlEncode(service));
      sep = '&';
    }
    if (!scope.empty()) absl::StrAppend(&req.url, std::string(1, sep), "scope=", UrlEncode(scope));
    if (!creds.username.empty() || !creds.password.empty()) {
      req.headers.emplace_back("Authorization",
                               "Basic " + Base64(creds.username + ":" + creds.password));
    }
    resp = transport_->Do(req, nullptr, kMaxTokenResponse);
    if (!resp.ok()) return Annotate(resp.status(), "token server " + realm);
  }
  if (resp->status != 200) return TokenHttpError(realm, *resp);

  nlohmann::json doc = nlohmann::json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return absl::DataLossError("token server " + realm + ": response is not a JSON object");
  std::string token;
  for (const char* field : {"token", "access_token"}) {
    auto it = doc.find(field);
    if (it != doc.end() && it->is_string() && !it->get<std::string>().empty()) {
      token = it->get<std::string>();
      break;
    }
  }
  if (token.empty()) return absl::DataLossError("token server " + realm + ": response has no token");
  absl::Duration lifetime = kDefaultTokenLifetime;
  auto exp = doc.find("expires_in");
  if (exp != doc.end() && exp->is_number() && exp->get<double>() > 0) {
    lifetime = absl::Seconds(exp->get<double>());
  }
  // Renew a little early so a token does not expire between HeaderFor and the server.
  return Entry{"Bearer " + token, now_() + lifetime * 0.9};
}

}  // namespace slipstream::remote
