// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/fd.h"

namespace slipstream {

// One parsed request as a handler sees it. Header names are lower-cased.
struct HttpServerRequest {
  std::string method;
  std::string target;  // as sent: "/v2/foo/blobs/sha256:..?x=1"
  std::string path;    // target up to '?', not decoded
  std::string query;   // after '?', not decoded
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;    // de-chunked

  // First value of header `name` (lower-case), or empty.
  std::string Header(std::string_view name) const;
  // First value of query parameter `name`, percent-decoded ('+' is a space), or empty.
  std::string QueryParam(std::string_view name) const;
  // All values of query parameter `name`, decoded.
  std::vector<std::string> QueryParams(std::string_view name) const;
};

// Hands a streaming response body to the connection. Lives only during the body callback.
class BodyWriter {
 public:
  virtual ~BodyWriter() = default;
  // Sends `data` (chunk-encoded when the response is chunked). Unavailable when the client
  // went away.
  virtual absl::Status Write(std::string_view data) = 0;
  // Waits for `duration` (InfiniteDuration allowed) without sending. Returns early with
  // Cancelled when the client hangs up or the server stops; OK when the time passed.
  virtual absl::Status Pause(absl::Duration duration) = 0;
  // After the callback returns, close with a TCP reset instead of a FIN.
  virtual void ResetOnClose() = 0;
  // Body bytes written so far.
  virtual int64_t bytes_written() const = 0;
};

// A handler's answer. Either `body`, or `body_stream` which writes the body itself.
struct HttpServerResponse {
  int status = 200;
  // Sent as given; do not include Content-Length, Transfer-Encoding or Connection, which
  // the server adds.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // When set, called after the head was sent. Returning non-OK, or writing fewer bytes than
  // `content_length`, closes the connection (that is how tests cut bodies short).
  std::function<absl::Status(BodyWriter&)> body_stream;
  // The Content-Length to advertise when it is not body.size(): with body_stream, the
  // length it will write (-1 = send chunked); for a HEAD answer, the length of the body a
  // GET would get (-1 = body.size()). Unused otherwise.
  int64_t content_length = -1;
  // Close the connection after this response.
  bool close = false;

  // Convenience: a complete response with a Content-Type.
  static HttpServerResponse Text(int status, std::string body,
                                 std::string content_type = "text/plain");
};

using HttpHandler = std::function<HttpServerResponse(const HttpServerRequest&)>;

struct HttpServerOptions {
  // At most this many connections are served at once (one thread each); further clients wait
  // in the listen backlog.
  int max_connections = 32;
  // Larger request bodies get 413 and the connection is closed.
  size_t max_request_body = 512u << 20;
  // An idle keep-alive connection is closed after this long.
  absl::Duration idle_timeout = absl::Seconds(60);
  // The IPv4 address to listen on; "0.0.0.0" for every interface.
  std::string bind_ip = "127.0.0.1";
};

// A tiny threaded HTTP/1.1 server (127.0.0.1 and a kernel-chosen port by default) for the
// daemon's metrics endpoint and the tests' registry stand-ins: keep-alive, Content-Length and chunked request bodies, `Expect: 100-continue`, streamed
// response bodies. One acceptor thread plus one thread per connection (bounded by
// options.max_connections). The handler runs on connection threads and must be thread-safe.
// Owned by whoever started it; Stop() (or the destructor) closes every connection, wakes
// paused handlers and joins all threads. Accessors are thread-safe.
class HttpServer {
 public:
  // Binds options.bind_ip:`port` (0 = any free port) and starts serving. Unavailable when
  // the port is taken, InvalidArgument for a bad bind_ip.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpHandler handler,
                                                           HttpServerOptions options = {},
                                                           int port = 0);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // "BIND_IP:PORT".
  std::string host() const;
  // "http://BIND_IP:PORT".
  std::string url() const;
  // Connections accepted so far.
  int64_t connections_accepted() const { return accepted_.load(); }

  // Stops accepting, shuts down open connections and joins every thread. Idempotent.
  void Stop();

 private:
  struct Connection;
  HttpServer(HttpHandler handler, HttpServerOptions options, UniqueFd listener, int port);
  void AcceptLoop();
  void Serve(Connection* conn);
  void ReapFinished() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const HttpHandler handler_;
  const HttpServerOptions options_;
  UniqueFd listener_;
  UniqueFd wake_read_, wake_write_;  // a pipe that wakes the acceptor on Stop()
  const int port_;
  std::atomic<int64_t> accepted_{0};
  std::thread acceptor_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::list<std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  int active_ ABSL_GUARDED_BY(mu_) = 0;
};

// Percent-decodes `s` ('+' becomes a space when `plus_is_space`).
std::string UrlDecode(std::string_view s, bool plus_is_space = true);
// Parses "a=1&b=2" into decoded pairs, in order.
std::vector<std::pair<std::string, std::string>> ParseUrlEncoded(std::string_view s);

}  // namespace slipstream
