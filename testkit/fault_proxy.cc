// SPDX-License-Identifier: Apache-2.0
#include "testkit/fault_proxy.h"

#include "absl/time/clock.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "common/net.h"

namespace slipstream::testkit {
namespace {

// Headers that describe one hop, not the message: never forwarded as-is. Content-Length and
// Transfer-Encoding are re-created for each side; Expect is dropped because the proxy has
// the whole request body already.
bool IsHopByHop(const std::string& name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "te" || name == "upgrade" ||
         name == "content-length" || name == "expect" || name == "trailer";
}

bool MethodHasBody(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

// An upstream connection shared between the handler and the body callback.
struct Upstream {
  explicit Upstream(UniqueFd f) : fd(std::move(f)), reader(fd.get()) {}
  UniqueFd fd;
  SocketReader reader;
};

// Streams one upstream body to the client, applying at most one body fault.
class BodyPump {
 public:
  BodyPump(const Fault* fault, int64_t content_length, BodyWriter* writer)
      : writer_(writer) {
    if (fault == nullptr) return;
    fault_ = *fault;
    has_fault_ = true;
    if (fault_.kind == Fault::Kind::kDrop || fault_.kind == Fault::Kind::kTruncate ||
        fault_.kind == Fault::Kind::kStall) {
      cut_pending_ = true;
      limit_ = std::max<int64_t>(0, fault_.after_bytes);
      // A cut must break the transfer, so it withholds at least the last byte.
      if (fault_.kind != Fault::Kind::kStall && content_length > 0) {
        limit_ = std::min(limit_, content_length - 1);
      }
    }
  }

  absl::Status Feed(std::string_view piece) {
    while (!piece.empty()) {
      if (cut_pending_ && sent_ == limit_) SS_RETURN_IF_ERROR(Cut());
      size_t n = piece.size();
      // Small slices keep a throttled stream smooth instead of bursty.
      if (has_fault_ && fault_.kind == Fault::Kind::kThrottle) n = std::min<size_t>(n, 64 << 10);
      if (cut_pending_) n = std::min<size_t>(n, static_cast<size_t>(limit_ - sent_));
      std::string out(piece.substr(0, n));
      if (has_fault_ && fault_.kind == Fault::Kind::kCorrupt && fault_.offset >= sent_ &&
          fault_.offset < sent_ + static_cast<int64_t>(n)) {
        out[static_cast<size_t>(fault_.offset - sent_)] ^= static_cast<char>(fault_.xor_mask);
      }
      // Hold each slice back until its last byte is due, so the client never has a byte
      // earlier than the rate allows.
      if (has_fault_ && fault_.kind == Fault::Kind::kThrottle) {
        SS_RETURN_IF_ERROR(Throttle(sent_ + static_cast<int64_t>(n)));
      }
      SS_RETURN_IF_ERROR(writer_->Write(out));
      sent_ += static_cast<int64_t>(n);
      piece.remove_prefix(n);
    }
    return absl::OkStatus();
  }

  // Called after the last upstream byte: a drop or truncation of a body whose length was not
  // known in advance (chunked) still happens, before the terminating chunk. A stall past the
  // end of the body does not: the client already has everything it asked for.
  absl::Status Finish() {
    if (cut_pending_ && fault_.kind != Fault::Kind::kStall) return Cut();
    return absl::OkStatus();
  }

 private:
  // Waits until `bytes` bytes of body are due at the configured rate.
  absl::Status Throttle(int64_t bytes) {
    if (fault_.bytes_per_second <= 0) return absl::OkStatus();
    absl::Duration due = absl::Seconds(static_cast<double>(bytes) /
                                       static_cast<double>(fault_.bytes_per_second));
    absl::Duration ahead = due - (absl::Now() - start_);
    if (ahead <= absl::ZeroDuration()) return absl::OkStatus();
    return writer_->Pause(ahead);
  }

  absl::Status Cut() {
    cut_pending_ = false;
    switch (fault_.kind) {
      case Fault::Kind::kDrop:
        writer_->ResetOnClose();
        return absl::AbortedError("fault: connection dropped");
      case Fault::Kind::kTruncate:
        return absl::AbortedError("fault: body truncated");
      case Fault::Kind::kStall:
        // Cancelled when the client gives up or the proxy stops; the connection then closes.
        return writer_->Pause(fault_.stall);
      default:
        return absl::OkStatus();
    }
  }

  BodyWriter* writer_;
  Fault fault_;
  bool has_fault_ = false;
  bool cut_pending_ = false;
  int64_t limit_ = 0;
  int64_t sent_ = 0;
  absl::Time start_ = absl::Now();
};

HttpServerResponse InjectedStatus(const Fault& fault) {
  std::string code = fault.status == 429 ? "TOOMANYREQUESTS" : "UNAVAILABLE";
  HttpServerResponse r = HttpServerResponse::Text(
      fault.status,
      absl::StrCat(R"({"errors":[{"code":")", code, R"(","message":"injected by FaultProxy"}]})"),
      "application/json");
  if (!fault.retry_after.empty()) r.headers.emplace_back("Retry-After", fault.retry_after);
  return r;
}

}  // namespace

Fault Fault::DropAfter(int64_t bytes) {
  Fault f;
  f.kind = Kind::kDrop;
  f.after_bytes = bytes;
  return f;
}

Fault Fault::StallAfter(int64_t bytes, absl::Duration duration) {
  Fault f;
  f.kind = Kind::kStall;
  f.after_bytes = bytes;
  f.stall = duration;
  return f;
}

Fault Fault::Throttle(int64_t bytes_per_second) {
  Fault f;
  f.kind = Kind::kThrottle;
  f.bytes_per_second = bytes_per_second;
  return f;
}

Fault Fault::TruncateAfter(int64_t bytes) {
  Fault f;
  f.kind = Kind::kTruncate;
  f.after_bytes = bytes;
  return f;
}

Fault Fault::Status(int status, std::string retry_after) {
  Fault f;
  f.kind = Kind::kStatus;
  f.status = status;
  f.retry_after = std::move(retry_after);
  return f;
}

Fault Fault::CorruptAt(int64_t offset, uint8_t xor_mask) {
  Fault f;
  f.kind = Kind::kCorrupt;
  f.offset = offset;
  f.xor_mask = xor_mask;
  return f;
}

Fault& Fault::On(std::string method_match, std::string path_match) {
  method = std::move(method_match);
  path_contains = std::move(path_match);
  return *this;
}

Fault& Fault::Times(int n) {
  times = n;
  return *this;
}

FaultProxy::FaultProxy(std::string upstream_host, int upstream_port, FaultProxyOptions options)
    : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port), options_(options) {}

FaultProxy::~FaultProxy() { Stop(); }

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& upstream,
                                                              FaultProxyOptions options) {
  std::string host;
  int port = 0;
  SS_RETURN_IF_ERROR(SplitHostPort(upstream, &host, &port));
  if (host == "localhost") host = "127.0.0.1";
  std::unique_ptr<FaultProxy> proxy(new FaultProxy(host, port, options));
  HttpServerOptions server_options;
  server_options.max_connections = options.max_connections;
  SS_ASSIGN_OR_RETURN(proxy->server_,
                      HttpServer::Start([p = proxy.get()](const HttpServerRequest& r) {
                        return p->Handle(r);
                      }, server_options));
  return proxy;
}

void FaultProxy::Stop() {
  if (server_ != nullptr) server_->Stop();
}

FaultId FaultProxy::Add(Fault fault) {
  absl::MutexLock lock(&mu_);
  int remaining = fault.times;
  faults_.push_back(FaultState{std::move(fault), remaining});
  return static_cast<FaultId>(faults_.size() - 1);
}

void FaultProxy::ClearFaults() {
  absl::MutexLock lock(&mu_);
  for (FaultState& f : faults_) f.remaining = 0;
}

int FaultProxy::hits(FaultId id) const {
  absl::MutexLock lock(&mu_);
  if (id < 0 || static_cast<size_t>(id) >= faults_.size()) return 0;
  return faults_[static_cast<size_t>(id)].hits;
}

int FaultProxy::requests_seen() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(requests_.size());
}

int FaultProxy::CountRequests(const std::string& method, const std::string& path_contains) const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(std::count_if(requests_.begin(), requests_.end(), [&](const auto& r) {
    return (method.empty() || r.method == method) && absl::StrContains(r.target, path_contains);
  }));
}

std::vector<ProxiedRequest> FaultProxy::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

FaultId FaultProxy::TakeFault(const HttpServerRequest& request, Fault* fault) {
  absl::MutexLock lock(&mu_);
  for (size_t i = 0; i < faults_.size(); ++i) {
    FaultState& f = faults_[i];
    if (f.remaining == 0) continue;
    if (!f.fault.method.empty() && f.fault.method != request.method) continue;
    if (!absl::StrContains(request.target, f.fault.path_contains)) continue;
    if (f.remaining > 0) --f.remaining;
    ++f.hits;
    *fault = f.fault;
    return static_cast<FaultId>(i);
  }
  return -1;
}

void FaultProxy::Record(const HttpServerRequest& request, int status, FaultId id) {
  absl::MutexLock lock(&mu_);
  requests_.push_back(
      ProxiedRequest{request.method, request.target, status, id, request.Header("range")});
}

HttpServerResponse FaultProxy::Handle(const HttpServerRequest& request) {
  Fault fault;
  FaultId id = TakeFault(request, &fault);
  HttpServerResponse response = id >= 0 && fault.kind == Fault::Kind::kStatus
                                    ? InjectedStatus(fault)
                                    : Forward(request, id >= 0 ? &fault : nullptr);
  Record(request, response.status, id);
  if (id >= 0) {
    log::Debug("fault proxy injected a fault",
               {{"fault", id}, {"method", request.method}, {"target", request.target}});
  }
  return response;
}

HttpServerResponse FaultProxy::Forward(const HttpServerRequest& request, const Fault* fault) {
  absl::StatusOr<UniqueFd> fd = ConnectTcp(upstream_host_, upstream_port_, absl::Seconds(5));
  if (!fd.ok()) {
    return HttpServerResponse::Text(502, absl::StrCat("upstream: ", fd.status().ToString()));
  }
  SetSocketTimeouts(fd->get(), options_.upstream_timeout);
  auto upstream = std::make_shared<Upstream>(*std::move(fd));

  // One request per upstream connection keeps framing trivial; loopback connects are cheap.
  std::string head = absl::StrCat(request.method, " ", request.target, " HTTP/1.1\r\n");
  for (const auto& [name, value] : request.headers) {
    if (!IsHopByHop(name)) absl::StrAppend(&head, name, ": ", value, "\r\n");
  }
  if (!request.body.empty() || MethodHasBody(request.method)) {
    absl::StrAppend(&head, "Content-Length: ", request.body.size(), "\r\n");
  }
  absl::StrAppend(&head, "Connection: close\r\n\r\n");
  absl::Status sent = SendAll(upstream->fd.get(), head);
  if (sent.ok() && !request.body.empty()) sent = SendAll(upstream->fd.get(), request.body);
  if (!sent.ok()) return HttpServerResponse::Text(502, absl::StrCat("upstream: ", sent.ToString()));

  absl::StatusOr<HttpHead> reply;
  int status = 0;
  // Skip interim 1xx answers; the client never asked for them.
  do {
    reply = ReadHttpHead(upstream->reader);
    if (!reply.ok()) {
      return HttpServerResponse::Text(502, absl::StrCat("upstream: ", reply.status().ToString()));
    }
    absl::string_view line = reply->start_line;
    if (line.size() < 12 || !absl::SimpleAtoi(line.substr(9, 3), &status)) {
      return HttpServerResponse::Text(502, absl::StrCat("upstream status line: ", reply->start_line));
    }
  } while (status >= 100 && status < 200);

  HttpServerResponse response;
  response.status = status;
  for (const auto& [name, value] : reply->headers) {
    if (!IsHopByHop(name)) response.headers.emplace_back(name, value);
  }
  const bool chunked = reply->HeaderHasToken("transfer-encoding", "chunked");
  int64_t length = -1;
  std::string cl = reply->Header("content-length");
  if (!chunked && !cl.empty() && !absl::SimpleAtoi(cl, &length)) length = -1;
  const bool bodiless = request.method == "HEAD" || status == 204 || status == 304;
  response.content_length = length;
  if (bodiless) {
    // HEAD answers advertise the length of the body they do not carry; keep it.
    response.body_stream = [upstream](BodyWriter&) { return absl::OkStatus(); };
    return response;
  }
  std::optional<Fault> body_fault;
  if (fault != nullptr) body_fault = *fault;
  response.body_stream = [upstream, body_fault, chunked, length](BodyWriter& writer) {
    BodyPump pump(body_fault ? &*body_fault : nullptr, length, &writer);
    ChunkSink sink = [&pump](std::string_view piece) { return pump.Feed(piece); };
    absl::Status s;
    if (chunked) {
      s = ReadChunkedBody(upstream->reader, sink);
    } else if (length >= 0) {
      s = ReadFixedBody(upstream->reader, length, sink);
    } else {
      // No framing: the body runs until upstream closes.
      for (;;) {
        absl::StatusOr<std::string> piece = upstream->reader.ReadSome(64 * 1024);
        if (!piece.ok()) {
          s = piece.status();
          break;
        }
        if (piece->empty()) break;
        s = pump.Feed(*piece);
        if (!s.ok()) break;
      }
    }
    if (!s.ok()) return s;
    return pump.Finish();
  };
  return response;
}

}  // namespace slipstream::testkit
