// SPDX-License-Identifier: Apache-2.0
// CurlTransport: easy-handle options for one request and the libcurl callbacks.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "remote/curl_transport_internal.h"
#include "remote/registry_client_util.h"

namespace slipstream::remote {

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (util::EqualsNoCase(k, name)) return v;
  }
  return "";
}

namespace {

// Error bodies of streamed (sink) requests are kept up to this size for error messages.
constexpr size_t kMaxErrorBody = 64u << 10;

// URLs of presigned redirects carry credentials in the query string: never log those.
std::string RedactUrl(std::string_view url) {
  size_t q = url.find('?');
  return std::string(url.substr(0, q));
}

bool Is2xx(long status) { return status >= 200 && status <= 299; }

}  // namespace

absl::Status CurlError(CURLcode code, const char* errbuf, const std::string& url) {
  std::string msg = absl::StrCat("curl: ", errbuf[0] ? errbuf : curl_easy_strerror(code),
                                 " (", RedactUrl(url), ")");
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return absl::InvalidArgumentError(msg);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return absl::FailedPreconditionError(msg);
    case CURLE_TOO_MANY_REDIRECTS:
      return absl::FailedPreconditionError(msg);
    default:
      // Refused/reset connections, DNS, timeouts, short bodies (CURLE_PARTIAL_FILE), TLS
      // handshake hiccups: all worth a retry.
      return absl::UnavailableError(msg);
  }
}

absl::Status CurlTransport::Transfer::Configure(const HttpRequest& request, CURLSH* share) {
  easy = curl_easy_init();
  if (easy == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* e = easy;
  Transfer& t = *this;

  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SHARE, share);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::OnWrite);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, long{CURL_HTTP_VERSION_2TLS});
  // Prefer waiting for a multiplexable h2 connection over opening a parallel one.
  curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 256L << 10);

  if (request.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  const bool has_body = !request.body.empty() || request.method == "POST" ||
                        request.method == "PUT" || request.method == "PATCH";
  if (has_body) {
    // The request outlives the transfer (Do blocks), so no copy is needed.
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
  }

  bool has_content_type = false;
  for (const auto& [name, value] : request.headers) {
    if (util::EqualsNoCase(name, "content-type")) has_content_type = true;
    t.header_list = curl_slist_append(t.header_list, absl::StrCat(name, ": ", value).c_str());
  }
  // libcurl would add a form Content-Type to every body and "Expect: 100-continue" to large
  // ones (a round trip of latency per upload chunk); registries want neither.
  if (has_body && !has_content_type) t.header_list = curl_slist_append(t.header_list, "Content-Type:");
  t.header_list = curl_slist_append(t.header_list, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list);

  // libcurl (>= 7.58) drops a custom Authorization header when a redirect changes host.
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, request.follow_redirects ? 1L : 0L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 10L);

  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(request.connect_timeout)));
  if (request.total_timeout != absl::InfiniteDuration()) {
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(request.total_timeout)));
  }
  t.low_speed_bytes = std::max<int64_t>(1, request.low_speed_bytes);
  t.low_speed_window = request.low_speed_window;
  t.window_start = absl::Now();
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, &Transfer::OnProgress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, &t);

  const TlsOptions& tls = request.tls;
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, tls.skip_verify ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, tls.skip_verify ? 0L : 2L);
  // CAINFO replaces the bundle file but Debian's libcurl keeps CAPATH (/etc/ssl/certs), so
  // the system roots stay trusted next to the extra CA.
  if (!tls.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, tls.ca_file.c_str());
  if (!tls.client_cert_file.empty()) {
    curl_easy_setopt(e, CURLOPT_SSLCERT, tls.client_cert_file.c_str());
  }
  if (!tls.client_key_file.empty()) curl_easy_setopt(e, CURLOPT_SSLKEY, tls.client_key_file.c_str());

  return absl::OkStatus();
}

size_t CurlTransport::Transfer::OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  line = util::Strip(line);
  if (line.substr(0, 5) == "HTTP/") {
    // A new status line starts a new header block (redirect hop, 100 Continue): only the
    // final hop's headers are reported.
    t->response.headers.clear();
    t->content_length = -1;
    // "HTTP/1.1 206 Partial Content", "HTTP/2 200".
    size_t sp = line.find(' ');
    int64_t status = 0;
    if (sp != std::string_view::npos &&
        util::ParseInt64(line.substr(sp + 1, 3), &status)) {
      t->response.status = static_cast<long>(status);
    }
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name = util::ToLower(util::Strip(line.substr(0, colon)));
    std::string value(util::Strip(line.substr(colon + 1)));
    if (name == "content-length") util::ParseInt64(value, &t->content_length);
    t->response.headers.emplace_back(std::move(name), std::move(value));
  }
  return size * n;
}

size_t CurlTransport::Transfer::OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (t->sink == nullptr || !Is2xx(t->response.status)) {
    const size_t limit = t->sink == nullptr ? t->max_body : kMaxErrorBody;
    size_t take = len;
    // An announced oversize body is refused before its bytes are read.
    const bool announced_too_big =
        t->content_length >= 0 && static_cast<uint64_t>(t->content_length) > limit;
    if (announced_too_big || t->response.body.size() + len > limit) {
      if (t->sink == nullptr) {
        t->local_error = absl::ResourceExhaustedError(
            absl::StrCat("response body exceeds ", limit, " bytes"));
        return 0;  // aborts with CURLE_WRITE_ERROR
      }
      take = limit - t->response.body.size();  // an error body: keep its head only
    }
    t->response.body.append(data, take);
    t->response.body_bytes += static_cast<int64_t>(take);
    return len;
  }
  absl::MutexLock lock(&t->mu);
  if (t->buffered >= t->buffer_limit) {
    // The caller's sink is behind: let libcurl hold this data and stop reading the socket
    // (flow control reaches the server) until the caller drains the queue and unpauses.
    t->paused = true;
    return CURL_WRITEFUNC_PAUSE;
  }
  t->chunks.emplace_back(data, len);
  t->buffered += len;
  return len;
}

int CurlTransport::Transfer::OnProgress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t,
                                       curl_off_t ulnow) {
  // Our own stall check instead of CURLOPT_LOW_SPEED_*: libcurl averages speed over several
  // seconds, so a 1 s window took ~7 s to trip; and a transfer paused because the caller's
  // sink is slow is not stalled.
  auto* t = static_cast<Transfer*>(user);
  const absl::Time now = absl::Now();
  const curl_off_t total = dlnow + ulnow;
  bool paused;
  {
    absl::MutexLock lock(&t->mu);
    paused = t->paused;
  }
  if (paused || total - t->window_bytes >= t->low_speed_bytes) {
    t->window_start = now;
    t->window_bytes = total;
    return 0;
  }
  if (now - t->window_start >= t->low_speed_window) {
    t->local_error = absl::UnavailableError(
        absl::StrCat("transfer stalled: fewer than ", t->low_speed_bytes, " bytes in ",
                     absl::FormatDuration(t->low_speed_window)));
    return 1;  // aborts with CURLE_ABORTED_BY_CALLBACK
  }
  return 0;
}

}  // namespace slipstream::remote
