// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "remote/http.h"

namespace slipstream::remote {

// HttpTransport over libcurl. All transfers run on ONE libcurl multi handle driven by one
// loop thread ("curl-loop", owned by the transport, started in Create, joined in the
// destructor): connections are cached and reused across requests, HTTP/2 streams are
// multiplexed when the server offers h2 over TLS, and TLS sessions are shared.
//
// Callers block in Do() on their own thread. Body bytes travel from the loop thread to the
// caller through a small per-transfer queue; the caller runs the BodySink, so a slow sink
// never stalls other transfers: once a transfer has `buffer_limit` bytes queued, libcurl
// pauses it until the caller catches up. Nothing blocks on the loop thread.
//
// Thread-safe: any number of threads may call Do() at once. The owner must not destroy the
// transport while a Do() is running.
class CurlTransport : public HttpTransport {
 public:
  struct Options {
    // Connections to one host at most (more requests wait for a free connection or
    // multiplex over HTTP/2).
    int max_host_connections = 32;
    // Size of the idle connection cache.
    int max_cached_connections = 64;
    // Bytes queued per transfer before libcurl pauses it.
    size_t buffer_limit = 1u << 20;
  };

  // Internal when libcurl cannot be initialized or the loop thread cannot start.
  static absl::StatusOr<std::unique_ptr<CurlTransport>> Create(Options options);
  static absl::StatusOr<std::unique_ptr<CurlTransport>> Create() { return Create(Options()); }
  ~CurlTransport() override;

  absl::StatusOr<HttpResponse> Do(const HttpRequest& request, const BodySink* sink,
                                  size_t max_body = 16u << 20) override;

  // Counters since creation, for tests and metrics.
  struct Stats {
    int64_t requests = 0;             // Do() calls that reached libcurl
    int64_t connections_opened = 0;   // new connections (the rest reused a cached one)
    int64_t http2_responses = 0;      // responses that came over HTTP/2
  };
  Stats stats() const;

 private:
  struct Transfer;
  struct Shared;

  CurlTransport(Options options, void* multi, void* share);
  void Loop();
  // Queues a command for the loop thread and wakes it.
  void Submit(std::shared_ptr<Transfer> add, uint64_t unpause_id, uint64_t cancel_id);

  const Options options_;
  void* const multi_;   // CURLM*
  void* const share_;   // CURLSH*
  std::unique_ptr<Shared> shared_;
  std::thread loop_;

  absl::Mutex mu_;
  std::vector<std::shared_ptr<Transfer>> to_add_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> to_unpause_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> to_cancel_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::atomic<int64_t> requests_{0};
  std::atomic<int64_t> connections_opened_{0};
  std::atomic<int64_t> http2_responses_{0};

  // Loop thread only: transfers currently inside the multi handle, by id. Shared with the
  // caller so that neither side frees the state while the other still touches it.
  absl::flat_hash_map<uint64_t, std::shared_ptr<Transfer>> active_;
};

}  // namespace slipstream::remote
