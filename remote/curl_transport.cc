// SPDX-License-Identifier: Apache-2.0
// CurlTransport: the libcurl multi loop thread and the caller side of Do().
#include "remote/curl_transport.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "remote/curl_transport_internal.h"
#include "remote/remote_metrics.h"

namespace slipstream::remote {
namespace {

// Counts a finished transfer in the process's registry metrics (status 0: no response).
void RecordMetrics(CURL* e, long status) {
  const RemoteMetrics& m = Metrics();
  static const char* const kOutcomes[] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
  const long cls = status / 100;
  m.requests.With({kOutcomes[cls >= 1 && cls <= 5 ? cls : 0]}).Add();
  curl_off_t bytes = 0;
  if (curl_easy_getinfo(e, CURLINFO_SIZE_DOWNLOAD_T, &bytes) == CURLE_OK && bytes > 0) {
    m.bytes_fetched.Add(bytes);
  }
  curl_off_t micros = 0;
  if (curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &micros) == CURLE_OK) {
    m.request_seconds.Observe(static_cast<double>(micros) / 1e6);
  }
}

}  // namespace

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

CurlTransport::Stats CurlTransport::stats() const {
  Stats s;
  s.requests = requests_.load();
  s.connections_opened = connections_opened_.load();
  s.http2_responses = http2_responses_.load();
  return s;
}

absl::StatusOr<HttpResponse> CurlTransport::Do(const HttpRequest& request, const BodySink* sink,
                                               size_t max_body) {
  auto holder = std::make_shared<Transfer>();
  Transfer& t = *holder;
  t.sink = sink;
  t.max_body = max_body;
  // At least one byte: a zero limit would pause a transfer with nothing queued.
  t.buffer_limit = std::max<size_t>(1, options_.buffer_limit);
  absl::Status configured = t.Configure(request, static_cast<CURLSH*>(share_));
  if (!configured.ok()) return configured;
  CURL* e = t.easy;
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
            return !x->chunks.empty() || x->done || x->paused;
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
  long connects = 0;
  if (curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects) == CURLE_OK) {
    connections_opened_ += connects;
  }
  long version = 0;
  if (curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version) == CURLE_OK &&
      version == CURL_HTTP_VERSION_2_0) {
    ++http2_responses_;
  }
  ++requests_;
  RecordMetrics(e, t.response.status);
  curl_easy_cleanup(e);
  curl_slist_free_all(t.header_list);

  if (!sink_status.ok()) return sink_status;
  if (!t.local_error.ok()) return t.local_error;
  if (result != CURLE_OK) return CurlError(result, t.errbuf, request.url);
  return std::move(t.response);
}

}  // namespace slipstream::remote
