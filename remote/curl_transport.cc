// SPDX-License-Identifier: Apache-2.0
#include "remote/curl_transport.h"

#include <curl/curl.h>

#include <algorithm>
#include <deque>
#include <mutex>

#include "absl/strings/str_cat.h"
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

}  // namespace

// State of one Do() call, shared between the calling thread and the loop thread.
struct CurlTransport::Transfer {
  uint64_t id = 0;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  const BodySink* sink = nullptr;
  size_t max_body = 0;
  size_t buffer_limit = 0;
  char errbuf[CURL_ERROR_SIZE] = {};

  // Loop thread only until `done` is published, then the caller's.
  HttpResponse response;
  int64_t content_length = -1;  // of the current header block, -1 when not announced
  absl::Status local_error;
  // Stall detection (loop thread only): progress must grow by low_speed_bytes per window.
  int64_t low_speed_bytes = 1;
  absl::Duration low_speed_window = absl::Seconds(30);
  absl::Time window_start;
  curl_off_t window_bytes = 0;  // set by the write callback before it aborts the transfer

  absl::Mutex mu;
  std::deque<std::string> chunks ABSL_GUARDED_BY(mu);
  size_t buffered ABSL_GUARDED_BY(mu) = 0;
  bool paused ABSL_GUARDED_BY(mu) = false;
  bool done ABSL_GUARDED_BY(mu) = false;
  CURLcode result ABSL_GUARDED_BY(mu) = CURLE_OK;

  static size_t OnHeader(char* data, size_t size, size_t n, void* user);
  static int OnProgress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow);
  static size_t OnWrite(char* data, size_t size, size_t n, void* user);
};

// libcurl's share interface wants C callbacks for locking; one mutex per data kind.
struct CurlTransport::Shared {
  std::mutex locks[CURL_LOCK_DATA_LAST];
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Shared*>(user)->locks[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Shared*>(user)->locks[data].unlock();
  }
};

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

absl::StatusOr<std::unique_ptr<CurlTransport>> CurlTransport::Create(Options options) {
  static const CURLcode init = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (init != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(init)));
  }
  CURLM* multi = curl_multi_init();
  CURLSH* share = curl_share_init();
  if (multi == nullptr || share == nullptr) {
    if (multi) curl_multi_cleanup(multi);
    if (share) curl_share_cleanup(share);
    return absl::InternalError("curl_multi_init failed");
  }
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, long{options.max_host_connections});
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, long{options.max_cached_connections});
  return std::unique_ptr<CurlTransport>(new CurlTransport(options, multi, share));
}

CurlTransport::CurlTransport(Options options, void* multi, void* share)
    : options_(options), multi_(multi), share_(share), shared_(std::make_unique<Shared>()) {
  CURLSH* sh = static_cast<CURLSH*>(share_);
  curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, &Shared::Lock);
  curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, &Shared::Unlock);
  curl_share_setopt(sh, CURLSHOPT_USERDATA, shared_.get());
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  loop_ = std::thread([this] { Loop(); });
}

CurlTransport::~CurlTransport() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  loop_.join();
  curl_multi_cleanup(static_cast<CURLM*>(multi_));
  curl_share_cleanup(static_cast<CURLSH*>(share_));
}

void CurlTransport::Submit(std::shared_ptr<Transfer> add, uint64_t unpause_id, uint64_t cancel_id) {
  {
    absl::MutexLock lock(&mu_);
    if (add != nullptr) to_add_.push_back(std::move(add));
    if (unpause_id != 0) to_unpause_.push_back(unpause_id);
    if (cancel_id != 0) to_cancel_.push_back(cancel_id);
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void CurlTransport::Loop() {
  CURLM* multi = static_cast<CURLM*>(multi_);
  auto finish = [&](std::shared_ptr<Transfer> t, CURLcode code) {
    curl_multi_remove_handle(multi, t->easy);
    active_.erase(t->id);
    absl::MutexLock lock(&t->mu);
    t->result = code;
    t->done = true;
  };
  for (;;) {
    std::vector<std::shared_ptr<Transfer>> adds;
    std::vector<uint64_t> unpauses, cancels;
    bool stopping;
    {
      absl::MutexLock lock(&mu_);
      adds.swap(to_add_);
      unpauses.swap(to_unpause_);
      cancels.swap(to_cancel_);
      stopping = stopping_;
    }
    for (std::shared_ptr<Transfer>& t : adds) {
      active_[t->id] = t;
      CURLMcode rc = curl_multi_add_handle(multi, t->easy);
      if (rc != CURLM_OK) {
        active_.erase(t->id);
        absl::MutexLock lock(&t->mu);
        t->result = CURLE_FAILED_INIT;
        t->done = true;
      }
    }
    // Ids, not pointers: a command may arrive after its transfer finished and was freed.
    for (uint64_t id : cancels) {
      auto it = active_.find(id);
      if (it != active_.end()) finish(it->second, CURLE_ABORTED_BY_CALLBACK);
    }
    for (uint64_t id : unpauses) {
      auto it = active_.find(id);
      if (it != active_.end()) curl_easy_pause(it->second->easy, CURLPAUSE_CONT);
    }
    if (stopping) {
      while (!active_.empty()) finish(active_.begin()->second, CURLE_ABORTED_BY_CALLBACK);
      return;
    }
    int running = 0;
    curl_multi_perform(multi, &running);
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      auto it = t == nullptr ? active_.end() : active_.find(t->id);
      if (it != active_.end()) finish(it->second, msg->data.result);
    }
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
}

absl::StatusOr<HttpResponse> CurlTransport::Do(const HttpRequest& request, const BodySink* sink,
                                               size_t max_body) {
  auto holder = std::make_shared<Transfer>();
  Transfer& t = *holder;
  t.sink = sink;
  t.max_body = max_body;
  t.buffer_limit = options_.buffer_limit;
  t.easy = curl_easy_init();
  if (t.easy == nullptr) return absl::InternalError("curl_easy_init failed");
  CURL* e = t.easy;

  curl_easy_setopt(e, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_SHARE, static_cast<CURLSH*>(share_));
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

  {
    absl::MutexLock lock(&mu_);
    t.id = next_id_++;
  }
  Submit(holder, 0, 0);

  // Drain the queue on this thread, running the sink outside every lock.
  absl::Status sink_status;
  for (;;) {
    std::deque<std::string> chunks;
    bool was_paused = false;
    bool done = false;
    {
      absl::MutexLock lock(&t.mu);
      t.mu.Await(absl::Condition(
          +[](Transfer* x) ABSL_EXCLUSIVE_LOCKS_REQUIRED(x->mu) {
            return !x->chunks.empty() || x->done;
          },
          &t));
      chunks.swap(t.chunks);
      t.buffered = 0;
      was_paused = t.paused;
      t.paused = false;
      done = t.done && chunks.empty();
    }
    if (done) break;
    for (const std::string& chunk : chunks) {
      if (!sink_status.ok()) break;
      t.response.body_bytes += static_cast<int64_t>(chunk.size());
      sink_status = (*sink)(chunk);
    }
    if (!sink_status.ok()) {
      Submit(nullptr, 0, t.id);
    } else if (was_paused) {
      Submit(nullptr, t.id, 0);
    }
  }

  CURLcode result;
  {
    absl::MutexLock lock(&t.mu);
    result = t.result;
  }
  char* effective = nullptr;
  curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective != nullptr) t.response.effective_url = effective;
  long code = 0;
  if (curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code != 0) {
    t.response.status = code;
  }
  curl_easy_cleanup(e);
  curl_slist_free_all(t.header_list);

  if (!sink_status.ok()) return sink_status;
  if (!t.local_error.ok()) return t.local_error;
  if (result != CURLE_OK) return CurlError(result, t.errbuf, request.url);
  return std::move(t.response);
}

}  // namespace slipstream::remote
