// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/http_server.h"

namespace slipstream::testkit {

// One scripted misbehaviour of the FaultProxy, applied to the next `times` requests that
// match `method` and `path_contains`. Build with the factories and chain On()/Times():
//   proxy->Add(Fault::DropAfter(1000).On("GET", "/blobs/").Times(2));
// Body offsets count bytes of the response body as the client sees it (so for a 206 answer,
// offset 0 is the first byte of the range).
struct Fault {
  enum class Kind {
    kDrop,      // send `after_bytes` body bytes, then reset the connection (RST)
    kStall,     // send `after_bytes` body bytes, then send nothing for `stall`, then go on
    kTruncate,  // advertise the full Content-Length, send `after_bytes`, then close (FIN)
    kStatus,    // answer `status` (with Retry-After when set) without asking upstream
    kCorrupt,   // forward normally but flip bits (`xor_mask`) of the byte at `offset`
    kThrottle,  // forward normally at most `bytes_per_second` per response (one stream's
                // bandwidth cap, as registries' blob CDNs apply per connection)
  };

  Kind kind = Kind::kStatus;
  std::string method;          // "GET", "HEAD", ...; empty matches any
  std::string path_contains;   // substring of the request target; empty matches any
  int times = 1;               // how many matching requests; -1 = all of them
  int64_t after_bytes = 0;     // kDrop, kStall, kTruncate
  absl::Duration stall = absl::InfiniteDuration();  // kStall; infinite = until the client
                                                    // hangs up or the proxy stops
  int status = 503;            // kStatus: 500, 502, 503, 429, ...
  std::string retry_after;     // kStatus: Retry-After value; empty = no header
  int64_t offset = 0;          // kCorrupt
  uint8_t xor_mask = 0x01;     // kCorrupt
  int64_t bytes_per_second = 0;  // kThrottle

  // Drop and truncate always withhold at least one byte of a body of known length (and the
  // final chunk of a chunked one), so the client is guaranteed to see a broken transfer even
  // when `bytes` >= the body size. A stall needs `bytes` < the body size to take effect.
  static Fault DropAfter(int64_t bytes);
  static Fault StallAfter(int64_t bytes, absl::Duration duration = absl::InfiniteDuration());
  static Fault TruncateAfter(int64_t bytes);
  static Fault Status(int status, std::string retry_after = "");
  static Fault CorruptAt(int64_t offset, uint8_t xor_mask = 0x01);
  // Usually with .Times(-1): every matching response streams at this rate.
  static Fault Throttle(int64_t bytes_per_second);

  Fault& On(std::string method_match, std::string path_match);
  Fault& Times(int n);
};

using FaultId = int;

// One request as the proxy saw it.
struct ProxiedRequest {
  std::string method;
  std::string target;
  int status = 0;      // status answered to the client (502 when upstream was unreachable)
  FaultId fault = -1;  // the fault applied, or -1
  std::string range;   // the request's Range header ("bytes=0-1023"), or empty
};

struct FaultProxyOptions {
  int max_connections = 64;
  absl::Duration upstream_timeout = absl::Seconds(30);
};

// An HTTP/1.1 proxy on 127.0.0.1 (kernel-chosen port) in front of one plain-HTTP upstream,
// usually a RegistryFixture, that injects scripted faults. It parses each request, forwards
// it on a fresh upstream connection with the client's Host header (so the registry's
// Location headers point back at the proxy and uploads keep flowing through it) and streams
// the response back unchanged: status (206 included), headers (Location, Content-Range, ...)
// and body. Request bodies are buffered in memory. Faults are matched in the order added;
// the first matching fault with uses left applies. Owned by the test; every method is
// thread-safe; Stop() or the destructor closes connections (ending stalls) and joins all
// threads.
class FaultProxy {
 public:
  // `upstream` is "127.0.0.1:PORT" (or "localhost:PORT"). The upstream is not contacted
  // until the first request.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(const std::string& upstream,
                                                           FaultProxyOptions options = {});
  ~FaultProxy();

  // "127.0.0.1:PORT".
  std::string host() const { return server_->host(); }
  int port() const { return server_->port(); }
  // "http://127.0.0.1:PORT".
  std::string url() const { return server_->url(); }

  // Schedules `fault`; returns its id for hits().
  FaultId Add(Fault fault);
  // Removes every fault that has not been used up (hit counts stay readable).
  void ClearFaults();
  // How many requests `id` was applied to.
  int hits(FaultId id) const;

  // Requests received so far (faulted or not).
  int requests_seen() const;
  // Requests whose method (empty = any) and target substring match.
  int CountRequests(const std::string& method, const std::string& path_contains) const;
  std::vector<ProxiedRequest> requests() const;

  // Stops serving; idempotent.
  void Stop();

 private:
  struct FaultState {
    Fault fault;
    int remaining;
    int hits = 0;
  };
  FaultProxy(std::string upstream_host, int upstream_port, FaultProxyOptions options);
  HttpServerResponse Handle(const HttpServerRequest& request);
  // Picks and consumes the fault for `request`; -1 when none matches.
  FaultId TakeFault(const HttpServerRequest& request, Fault* fault);
  // Forwards `request` upstream and prepares the streamed answer.
  HttpServerResponse Forward(const HttpServerRequest& request, const Fault* fault);
  void Record(const HttpServerRequest& request, int status, FaultId id);

  const std::string upstream_host_;
  const int upstream_port_;
  const FaultProxyOptions options_;
  std::unique_ptr<HttpServer> server_;

  mutable absl::Mutex mu_;
  std::vector<FaultState> faults_ ABSL_GUARDED_BY(mu_);
  std::vector<ProxiedRequest> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::testkit
