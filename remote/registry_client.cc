// SPDX-License-Identifier: Apache-2.0
// RegistryClient construction and the request engine: host fallback, retries, auth
// challenges and redirects. The operations live in registry_client_*.cc and registry_push.cc.
#include "remote/registry_client.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/net.h"
#include "common/status.h"
#include "remote/authenticator.h"
#include "remote/curl_transport.h"
#include "remote/registry_client_internal.h"
#include "remote/registry_client_util.h"

namespace slipstream::remote {
namespace internal {

std::string ShortDigest(const Digest& d) {
  const std::string& s = d.str();
  size_t colon = s.find(':');
  return colon == std::string::npos ? s : s.substr(0, std::min(s.size(), colon + 1 + 12));
}

std::string Origin(std::string_view url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "";
  size_t path = url.find_first_of("/?#", scheme_end + 3);
  return util::ToLower(url.substr(0, scheme_end)) +
         std::string(url.substr(scheme_end, path == std::string_view::npos ? url.size() - scheme_end
                                                                           : path - scheme_end));
}

std::string ResolveUrl(std::string_view base, std::string_view location) {
  location = util::Strip(location);
  if (location.find("://") != std::string_view::npos &&
      location.find("://") < location.find_first_of("/?")) {
    return std::string(location);
  }
  std::string origin = Origin(base);
  if (location.substr(0, 2) == "//") {
    return origin.substr(0, origin.find("://") + 1) + std::string(location);
  }
  if (!location.empty() && location[0] == '/') return origin + std::string(location);
  // Relative path: replace the last segment of the base path (query dropped).
  std::string_view path = base.substr(origin.size());
  path = path.substr(0, path.find_first_of("?#"));
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string_view::npos ? "/" : std::string(path.substr(0, slash + 1));
  return origin + dir + std::string(location);
}

namespace {

// The first entry of a distribution error body {"errors":[{"code":…,"message":…}]}.
std::string RegistryErrorDetail(const std::string& body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return "";
  auto errors = doc.find("errors");
  if (errors == doc.end() || !errors->is_array() || errors->empty()) return "";
  const nlohmann::json& e = (*errors)[0];
  if (!e.is_object()) return "";
  std::string code = e.value("code", std::string());
  std::string message = e.value("message", std::string());
  if (code.empty() && message.empty()) return "";
  return code.empty() ? message : message.empty() ? code : code + ": " + message;
}
}  // namespace

absl::Status HttpError(std::string_view context, const HttpResponse& response) {
  const long s = response.status;
  std::string msg = absl::StrCat(util::Av(context), ": HTTP ", s);
  std::string_view reason = ReasonPhrase(static_cast<int>(s));
  if (!reason.empty()) absl::StrAppend(&msg, " ", util::Av(reason));
  std::string detail = RegistryErrorDetail(response.body);
  if (!detail.empty()) absl::StrAppend(&msg, " (", detail, ")");
  if (s == 404) return absl::NotFoundError(msg);
  if (s == 401) return absl::UnauthenticatedError(msg);
  if (s == 403) return absl::PermissionDeniedError(msg);
  if (s == 416) return absl::OutOfRangeError(msg);
  if (s == 400) return absl::InvalidArgumentError(msg);
  if (s == 408 || s == 429 || s >= 500) return absl::UnavailableError(msg);
  return absl::FailedPreconditionError(msg);
}

std::string Context(std::string_view method, const RegistryHost& host, const Reference& repo,
                    std::string_view what) {
  return absl::StrCat(util::Av(method), " ", host.host, "/", repo.repository, " ",
                      util::Av(what));
}

}  // namespace internal

using internal::Context;
using internal::Origin;

namespace {
bool IsRedirect(long s) { return s == 301 || s == 302 || s == 303 || s == 307 || s == 308; }
constexpr int kMaxRedirects = 10;
}  // namespace

absl::StatusOr<std::unique_ptr<RegistryClient>> RegistryClient::Create(
    RegistryClientOptions options) {
  if (options.retry.max_attempts < 1) {
    return absl::InvalidArgumentError("RegistryClientOptions.retry.max_attempts must be >= 1");
  }
  if (options.transport == nullptr) {
    SS_ASSIGN_OR_RETURN(std::unique_ptr<CurlTransport> curl, CurlTransport::Create());
    options.transport = std::move(curl);
  }
  return std::unique_ptr<RegistryClient>(new RegistryClient(std::move(options)));
}

RegistryClient::RegistryClient(RegistryClientOptions options)
    : options_(std::move(options)), transport_(std::move(options_.transport)) {
  auth_ = std::make_unique<Authenticator>(transport_.get(), options_.credentials,
                                          options_.user_agent, options_.now);
}

RegistryClient::~RegistryClient() = default;

absl::Time RegistryClient::Now() const { return options_.now ? options_.now() : absl::Now(); }

void RegistryClient::Sleep(absl::Duration d) const {
  if (options_.sleep) {
    options_.sleep(d);
  } else {
    absl::SleepFor(d);
  }
}

std::optional<std::string> RegistryClient::CachedRedirect(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = redirects_.find(key);
  if (it == redirects_.end()) return std::nullopt;
  if (it->second.expires <= Now()) {
    redirects_.erase(it);
    return std::nullopt;
  }
  return it->second.url;
}

void RegistryClient::RememberRedirect(const std::string& key, const std::string& url) {
  absl::MutexLock lock(&mu_);
  // Bounded: presigned URLs are per blob, and a long-running daemon sees many blobs.
  if (redirects_.size() >= 4096) {
    const absl::Time now = Now();
    for (auto it = redirects_.begin(); it != redirects_.end();) {
      it = it->second.expires <= now ? redirects_.erase(it) : std::next(it);
    }
    if (redirects_.size() >= 4096) redirects_.clear();
  }
  redirects_[key] = RedirectEntry{url, Now() + options_.redirect_ttl};
}

void RegistryClient::ForgetRedirect(const std::string& key) {
  absl::MutexLock lock(&mu_);
  redirects_.erase(key);
}

absl::StatusOr<std::vector<RegistryHost>> RegistryClient::HostsFor(const Reference& repo,
                                                                   HostCapability cap) const {
  SS_ASSIGN_OR_RETURN(std::vector<RegistryHost> all,
                      LoadRegistryHosts(options_.hosts_dir, repo.registry));
  std::vector<RegistryHost> usable;
  for (RegistryHost& h : all) {
    if (h.Can(cap)) usable.push_back(std::move(h));
  }
  if (usable.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no host for registry ", repo.registry, " has the capability needed (",
        cap == kCapPush ? "push" : cap == kCapResolve ? "resolve" : "pull", ")"));
  }
  return usable;
}

absl::StatusOr<RegistryClient::Exchange> RegistryClient::Execute(const Call& call) {
  SS_ASSIGN_OR_RETURN(std::vector<RegistryHost> hosts, HostsFor(*call.repo, call.cap));
  for (size_t i = 0; i < hosts.size(); ++i) {
    const bool last = i + 1 == hosts.size();
    // A dead mirror costs two tries, not a full retry budget, before the next host.
    absl::StatusOr<Exchange> ex = ExecuteOnHost(call, hosts[i], /*max_attempts=*/last ? 0 : 2);
    // Mirrors are best effort: anything but a clear answer moves on to the next host.
    if (!last) {
      if (!ex.ok() && (IsRetryableTransportError(ex.status()) ||
                       absl::IsFailedPrecondition(ex.status()) ||
                       absl::IsUnauthenticated(ex.status()))) {
        log::Warn("registry host failed, trying the next one",
                  {{"host", hosts[i].host}, {"error", ex.status().ToString()}});
        continue;
      }
      // For push, a 404 (blob not there yet) or 401 is a real answer about the host the
      // upload will go to, not a reason to move on.
      if (ex.ok()) {
        long s = ex->response.status;
        const bool push = call.cap == kCapPush;
        if (s >= 500 || s == 429 || (!push && (s == 404 || s == 401 || s == 403))) {
          log::Warn("registry host answered with an error, trying the next one",
                    {{"host", hosts[i].host}, {"status", s}});
          continue;
        }
      }
    }
    return ex;
  }
  return absl::InternalError("unreachable: empty host list");
}

absl::StatusOr<RegistryClient::Exchange> RegistryClient::ExecuteOnHost(const Call& call,
                                                                       const RegistryHost& host,
                                                                       int max_attempts) {
  const std::string context = Context(call.method, host, *call.repo, call.what);
  const std::string scope = RepositoryScope(call.repo->repository, call.push);
  // Credentials are stored under the registry name the user knows ("docker.io"), mirrors
  // under their own host name.
  const std::string cred_key =
      host.host == DefaultServer(call.repo->registry) ? call.repo->registry : host.host;
  RetryPolicy policy = options_.retry;
  if (max_attempts > 0) policy.max_attempts = std::min(policy.max_attempts, max_attempts);
  Backoff backoff(policy, [this] { return Now(); });
  bool refreshed_auth = false;
  bool dropped_redirect = false;
  for (;;) {
    bool via_cache = false;
    std::string sent_auth;
    std::string url;
    absl::StatusOr<HttpResponse> r = Attempt(call, host, &via_cache, &sent_auth, &url);
    if (!r.ok()) {
      if (via_cache && !call.redirect_key.empty()) ForgetRedirect(call.redirect_key);
      if (!call.idempotent || !IsRetryableTransportError(r.status())) {
        return Annotate(r.status(), context);
      }
      std::optional<absl::Duration> delay = backoff.Next();
      if (!delay) {
        return Annotate(r.status(), absl::StrCat(context, " (gave up after ",
                                                 backoff.attempts(), " attempts)"));
      }
      log::Info("retrying registry request",
                {{"op", context}, {"error", r.status().message()},
                 {"delay_ms", absl::ToInt64Milliseconds(*delay)}});
      Sleep(*delay);
      continue;
    }
    const long s = r->status;
    if (via_cache && s >= 400 && s < 500 && !dropped_redirect) {
      // A remembered presigned URL expired early or was revoked: ask the registry again.
      ForgetRedirect(call.redirect_key);
      dropped_redirect = true;
      continue;
    }
    if (s == 401 && !via_cache && !refreshed_auth) {
      refreshed_auth = true;
      absl::Status st = auth_->HandleChallenge(host.host, cred_key, scope, *r, sent_auth, host.tls);
      if (st.ok()) continue;
      if (IsRetryableTransportError(st)) {
        std::optional<absl::Duration> delay = backoff.Next();
        if (delay) {
          refreshed_auth = false;
          Sleep(*delay);
          continue;
        }
      }
      return Annotate(st, context);
    }
    if (IsRetryableHttpStatus(s) && call.idempotent) {
      std::optional<absl::Duration> retry_after = ParseRetryAfter(r->Header("retry-after"), Now());
      std::optional<absl::Duration> delay = backoff.Next(retry_after);
      if (delay) {
        log::Info("retrying registry request",
                  {{"op", context}, {"status", s},
                   {"delay_ms", absl::ToInt64Milliseconds(*delay)}});
        Sleep(*delay);
        continue;
      }
    }
    return Exchange{*std::move(r), host, url};
  }
}

absl::StatusOr<HttpResponse> RegistryClient::Attempt(const Call& call, const RegistryHost& host,
                                                     bool* via_cache, std::string* sent_auth,
                                                     std::string* final_url) {
  HttpRequest req = call.build(host);
  req.tls = host.tls;
  req.follow_redirects = false;
  req.low_speed_bytes = 1;
  req.low_speed_window = options_.stall_timeout;
  req.connect_timeout = options_.connect_timeout;
  for (const auto& h : host.headers) req.headers.push_back(h);
  req.headers.emplace_back("User-Agent", options_.user_agent);
  const std::string host_origin = Origin(host.BaseUrl());

  if (!call.redirect_key.empty()) {
    if (std::optional<std::string> cached = CachedRedirect(call.redirect_key)) {
      req.url = *cached;
      *via_cache = true;
    }
  }
  auto add_auth = [&](HttpRequest& r) {
    // Only the registry itself gets its credentials; blob storage behind a redirect
    // authenticates with its presigned URL.
    if (Origin(r.url) != host_origin) {
      r.tls = TlsOptions();
      return;
    }
    std::string value = auth_->HeaderFor(host.host, RepositoryScope(call.repo->repository, call.push));
    if (!value.empty()) {
      r.headers.emplace_back("Authorization", value);
      *sent_auth = value;
    }
  };
  add_auth(req);

  for (int hop = 0;; ++hop) {
    *final_url = req.url;
    SS_ASSIGN_OR_RETURN(HttpResponse resp, transport_->Do(req, call.sink, call.max_body));
    if (!call.follow_redirects || !IsRedirect(resp.status)) {
      if (hop > 0 && !call.redirect_key.empty() && resp.status >= 200 && resp.status < 300) {
        RememberRedirect(call.redirect_key, req.url);
      }
      return resp;
    }
    std::string location = resp.Header("location");
    if (location.empty() || hop >= kMaxRedirects) return resp;
    req.url = internal::ResolveUrl(req.url, location);
    if (resp.status == 303) {
      req.method = "GET";
      req.body.clear();
    }
    std::erase_if(req.headers, [](const auto& h) { return util::EqualsNoCase(h.first, "authorization"); });
    req.tls = host.tls;
    add_auth(req);
  }
}

}  // namespace slipstream::remote
