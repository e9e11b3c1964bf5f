// SPDX-License-Identifier: Apache-2.0
#include "common/http_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <exception>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/status.h"
#include "common/net.h"

namespace slipstream {

struct HttpServer::Connection {
  UniqueFd fd;           // closed only under the server's mu_, so Stop() may shut it down
  std::thread thread;
  bool done = false;     // guarded by the server's mu_
};

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool BodyForbidden(const std::string& method, int status) {
  return method == "HEAD" || (status >= 100 && status < 200) || status == 204 || status == 304;
}

// The BodyWriter of one streamed response.
class ConnectionBodyWriter : public BodyWriter {
 public:
  ConnectionBodyWriter(int fd, bool chunked) : fd_(fd), chunked_(chunked) {}

  absl::Status Write(std::string_view data) override {
    if (data.empty()) return absl::OkStatus();
    if (chunked_) {
      std::string framed = absl::StrCat(absl::Hex(data.size()), "\r\n",
                                         absl::string_view(data.data(), data.size()), "\r\n");
      SS_RETURN_IF_ERROR(SendAll(fd_, framed));
    } else {
      SS_RETURN_IF_ERROR(SendAll(fd_, data));
    }
    written_ += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  }

  absl::Status Pause(absl::Duration duration) override {
    absl::Time deadline = duration == absl::InfiniteDuration() ? absl::InfiniteFuture()
                                                               : absl::Now() + duration;
    for (;;) {
      int wait_ms = -1;
      if (deadline != absl::InfiniteFuture()) {
        absl::Duration left = deadline - absl::Now();
        if (left <= absl::ZeroDuration()) return absl::OkStatus();
        wait_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
      }
      // POLLRDHUP fires when the client closes its side, and when Stop() shuts the socket
      // down, so a paused handler never outlives its client or the server.
      pollfd p{fd_, POLLRDHUP, 0};
      int rc = ::poll(&p, 1, wait_ms);
      if (rc < 0 && errno == EINTR) continue;
      if (rc < 0) return LastErrnoStatus("poll");
      if (rc > 0) return absl::CancelledError("client went away during pause");
    }
  }

  void ResetOnClose() override { reset_ = true; }
  int64_t bytes_written() const override { return written_; }
  bool reset() const { return reset_; }

 private:
  int fd_;
  bool chunked_;
  bool reset_ = false;
  int64_t written_ = 0;
};

}  // namespace

std::string HttpServerRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string HttpServerRequest::QueryParam(std::string_view name) const {
  for (auto& [k, v] : ParseUrlEncoded(query)) {
    if (k == name) return v;
  }
  return "";
}

std::vector<std::string> HttpServerRequest::QueryParams(std::string_view name) const {
  std::vector<std::string> out;
  for (auto& [k, v] : ParseUrlEncoded(query)) {
    if (k == name) out.push_back(std::move(v));
  }
  return out;
}

HttpServerResponse HttpServerResponse::Text(int status, std::string body,
                                            std::string content_type) {
  HttpServerResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

std::string UrlDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && HexValue(s[i + 1]) >= 0 &&
        HexValue(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(s[i + 1]) * 16 + HexValue(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> ParseUrlEncoded(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view piece :
       absl::StrSplit(absl::string_view(s.data(), s.size()), '&', absl::SkipEmpty())) {
    std::string_view part(piece.data(), piece.size());
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(UrlDecode(part), "");
    } else {
      out.emplace_back(UrlDecode(part.substr(0, eq)), UrlDecode(part.substr(eq + 1)));
    }
  }
  return out;
}

HttpServer::HttpServer(HttpHandler handler, HttpServerOptions options, UniqueFd listener,
                       int port)
    : handler_(std::move(handler)),
      options_(options),
      listener_(std::move(listener)),
      port_(port) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpHandler handler,
                                                              HttpServerOptions options,
                                                              int port) {
  int bound = 0;
  SS_ASSIGN_OR_RETURN(UniqueFd listener, ListenTcp(options.bind_ip, port, &bound));
  std::unique_ptr<HttpServer> server(
      new HttpServer(std::move(handler), options, std::move(listener), bound));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return LastErrnoStatus("pipe2");
  server->wake_read_.Reset(fds[0]);
  server->wake_write_.Reset(fds[1]);
  server->acceptor_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

HttpServer::~HttpServer() { Stop(); }

std::string HttpServer::host() const { return absl::StrCat(options_.bind_ip, ":", port_); }
std::string HttpServer::url() const { return absl::StrCat("http://", host()); }

void HttpServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (wake_write_.valid()) (void)!::write(wake_write_.get(), "x", 1);
  if (acceptor_.joinable()) acceptor_.join();
  std::list<std::unique_ptr<Connection>> connections;
  {
    absl::MutexLock lock(&mu_);
    // shutdown() (not close) wakes a thread blocked in recv/send/poll on the socket while
    // the fd number stays reserved until that thread closes it.
    for (auto& c : connections_) {
      if (!c->done && c->fd.valid()) ::shutdown(c->fd.get(), SHUT_RDWR);
    }
    connections.swap(connections_);
  }
  for (auto& c : connections) {
    if (c->thread.joinable()) c->thread.join();
  }
  listener_.Reset();
}

void HttpServer::ReapFinished() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done) {
      // The thread has left Serve(); joining only waits for its final return.
      if ((*it)->thread.joinable()) (*it)->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::AcceptLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      // Bounded threads: wait for a free slot before taking the next client off the backlog.
      mu_.Await(absl::Condition(
          +[](HttpServer* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
            return s->stopping_ || s->active_ < s->options_.max_connections;
          },
          this));
      if (stopping_) return;
      ReapFinished();
    }
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
    if (rc < 0) {
      if (errno == EINTR) continue;
      log::Error("http server poll failed", {{"errno", errno}});
      return;
    }
    if (fds[1].revents != 0) return;
    int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;  // the client may have given up already (ECONNABORTED)
    accepted_.fetch_add(1);
    SetSocketTimeouts(fd, options_.idle_timeout);
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    auto conn = std::make_unique<Connection>();
    conn->fd.Reset(fd);
    Connection* raw = conn.get();
    ++active_;
    connections_.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

namespace {

constexpr std::string_view kBadRequest =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
constexpr std::string_view kTooLarge =
    "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

// Reads the next request from the connection. Returns false when the connection must close:
// the client went away, or sent something unusable (then it has been answered 400/413).
bool ReadRequest(int fd, SocketReader& reader, size_t max_body, HttpServerRequest* req,
                 bool* keep_alive) {
  absl::StatusOr<HttpHead> head = ReadHttpHead(reader);
  if (!head.ok()) {
    if (absl::IsInvalidArgument(head.status())) (void)SendAll(fd, kBadRequest);
    return false;
  }
  std::vector<std::string> parts = absl::StrSplit(head->start_line, ' ', absl::SkipEmpty());
  if (parts.size() != 3 || !absl::StartsWith(parts[2], "HTTP/1.")) {
    (void)SendAll(fd, kBadRequest);
    return false;
  }
  req->method = parts[0];
  req->target = parts[1];
  size_t q = req->target.find('?');
  req->path = req->target.substr(0, q);
  if (q != std::string::npos) req->query = req->target.substr(q + 1);
  req->headers = head->headers;
  if (head->HeaderHasToken("connection", "close") ||
      (parts[2] == "HTTP/1.0" && !head->HeaderHasToken("connection", "keep-alive"))) {
    *keep_alive = false;
  }

  bool chunked = head->HeaderHasToken("transfer-encoding", "chunked");
  int64_t length = 0;
  std::string cl = head->Header("content-length");
  if (!chunked && !cl.empty() && (!absl::SimpleAtoi(cl, &length) || length < 0)) {
    (void)SendAll(fd, kBadRequest);
    return false;
  }
  if (length > static_cast<int64_t>(max_body)) {
    (void)SendAll(fd, kTooLarge);
    return false;
  }
  // Clients that ask first (curl does for bodies over 1 MiB) would otherwise wait a second.
  if ((chunked || length > 0) && head->HeaderHasToken("expect", "100-continue")) {
    if (!SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n").ok()) return false;
  }
  auto collect = [&](std::string_view piece) -> absl::Status {
    if (req->body.size() + piece.size() > max_body) {
      return absl::ResourceExhaustedError("request body too large");
    }
    req->body.append(piece);
    return absl::OkStatus();
  };
  absl::Status body = chunked ? ReadChunkedBody(reader, collect)
                              : ReadFixedBody(reader, length, collect);
  if (absl::IsResourceExhausted(body)) (void)SendAll(fd, kTooLarge);
  return body.ok();
}

// Sends `resp` to the request `req`. Returns false when the connection must close because
// the body did not go out as framed; `*reset` asks for an abortive close.
bool SendResponse(int fd, const HttpServerRequest& req, const HttpServerResponse& resp,
                  bool keep_alive, bool* reset) {
  const bool no_body = BodyForbidden(req.method, resp.status);
  const bool streamed = static_cast<bool>(resp.body_stream);
  const bool chunked = streamed && resp.content_length < 0 && !no_body;
  std::string out = absl::StrCat("HTTP/1.1 ", resp.status, " ", ReasonPhrase(resp.status),
                                 "\r\n");
  for (const auto& [k, v] : resp.headers) absl::StrAppend(&out, k, ": ", v, "\r\n");
  if (chunked) {
    absl::StrAppend(&out, "Transfer-Encoding: chunked\r\n");
  } else if (resp.status != 204 && resp.status != 304 && resp.status >= 200) {
    // A HEAD answer advertises the length of the body it would carry.
    int64_t advertised = streamed || (req.method == "HEAD" && resp.content_length >= 0)
                             ? resp.content_length
                             : static_cast<int64_t>(resp.body.size());
    if (advertised >= 0) absl::StrAppend(&out, "Content-Length: ", advertised, "\r\n");
  }
  if (!keep_alive) absl::StrAppend(&out, "Connection: close\r\n");
  absl::StrAppend(&out, "\r\n");
  if (!streamed && !no_body) absl::StrAppend(&out, resp.body);
  if (!SendAll(fd, out).ok()) return false;
  if (!streamed || no_body) return true;

  ConnectionBodyWriter writer(fd, chunked);
  absl::Status s = resp.body_stream(writer);
  *reset = writer.reset();
  if (!s.ok() || (resp.content_length >= 0 && writer.bytes_written() != resp.content_length)) {
    // The framing promised to the client is broken: the only honest signal is to close.
    return false;
  }
  return !chunked || SendAll(fd, "0\r\n\r\n").ok();
}

}  // namespace

void HttpServer::Serve(Connection* conn) {
  const int fd = conn->fd.get();
  SocketReader reader(fd);
  bool keep_alive = true;
  bool reset = false;
  while (keep_alive) {
    HttpServerRequest req;
    if (!ReadRequest(fd, reader, options_.max_request_body, &req, &keep_alive)) break;
    HttpServerResponse resp;
    try {
      resp = handler_(req);
    } catch (const std::exception& e) {
      // Handlers are test code; a throwing one should fail its test, not kill the process.
      resp = HttpServerResponse::Text(500, absl::StrCat("handler threw: ", e.what()));
    }
    if (resp.close) keep_alive = false;
    if (!SendResponse(fd, req, resp, keep_alive, &reset)) break;
  }
  absl::MutexLock lock(&mu_);
  if (reset) {
    ResetAndClose(conn->fd);
  } else {
    conn->fd.Reset();
  }
  conn->done = true;
  --active_;
}

}  // namespace slipstream
