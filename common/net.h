// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/fd.h"

// TCP sockets and HTTP/1.1 framing shared by HttpServer (the daemon's metrics endpoint, the
// test servers) and the tests' FaultProxy. It favours clarity over throughput.
namespace slipstream {

// A listening TCP socket on 127.0.0.1. `port` 0 lets the kernel pick a free port; the port
// actually bound is stored in `*bound_port`. Unavailable when the port is taken.
absl::StatusOr<UniqueFd> ListenLoopback(int port, int* bound_port);

// A listening TCP socket on IPv4 address `ip` ("0.0.0.0" = every interface), as above.
// InvalidArgument when `ip` is not a numeric IPv4 address.
absl::StatusOr<UniqueFd> ListenTcp(const std::string& ip, int port, int* bound_port);

// Connects to `host`:`port` (a numeric IPv4 address) within `timeout`. Unavailable when
// refused or timed out.
absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, int port, absl::Duration timeout);

// Splits "127.0.0.1:5000" into host and port (0..65535; 0 = any, for listeners).
// InvalidArgument when malformed.
absl::Status SplitHostPort(std::string_view hostport, std::string* host, int* port);

// Sends all of `data` (MSG_NOSIGNAL: a vanished peer is an error, never SIGPIPE).
absl::Status SendAll(int fd, std::string_view data);

// Closes `fd` so that the peer sees a connection reset (RST) instead of an orderly FIN.
void ResetAndClose(UniqueFd& fd);

// Sets SO_RCVTIMEO/SO_SNDTIMEO so a silent peer cannot block a thread forever.
void SetSocketTimeouts(int fd, absl::Duration timeout);

// Buffered reads from a socket for parsing HTTP/1.1. Owned by one connection; not
// thread-safe.
class SocketReader {
 public:
  explicit SocketReader(int fd) : fd_(fd) {}

  // One line without its CRLF (a bare LF is accepted too). OutOfRange when the peer closed
  // before sending any byte of the line; Unavailable on a socket error or an EOF inside the
  // line; InvalidArgument when the line exceeds `max_length`.
  absl::StatusOr<std::string> ReadLine(size_t max_length = 16 * 1024);
  // Exactly `n` bytes. Unavailable when the peer closes first.
  absl::StatusOr<std::string> ReadExact(size_t n);
  // Between 1 and `max` bytes; an empty string means EOF.
  absl::StatusOr<std::string> ReadSome(size_t max);

 private:
  // Refills buf_ when empty. Returns false at EOF.
  absl::StatusOr<bool> Fill();

  int fd_;
  std::string buf_;
  size_t pos_ = 0;
};

// The start line and headers of one HTTP/1.1 message. Header names are lower-cased, in
// arrival order; values are trimmed.
struct HttpHead {
  std::string start_line;
  std::vector<std::pair<std::string, std::string>> headers;

  // First value of `name` (lower-case), or empty.
  std::string Header(std::string_view name) const;
  // True when the comma-separated values of `name` contain `token` (case-insensitive).
  bool HeaderHasToken(std::string_view name, std::string_view token) const;
};

// Reads a start line and headers up to the empty line. OutOfRange when the peer closed
// cleanly before the message began (an idle keep-alive connection going away);
// InvalidArgument for malformed headers or more than 100 of them.
absl::StatusOr<HttpHead> ReadHttpHead(SocketReader& reader);

// Receives body bytes; a non-OK status stops the read.
using ChunkSink = std::function<absl::Status(std::string_view)>;

// Decodes a chunked body (including trailers) into `sink`. InvalidArgument on bad framing.
absl::Status ReadChunkedBody(SocketReader& reader, const ChunkSink& sink);

// Reads `length` body bytes into `sink` in pieces of at most 64 KiB.
absl::Status ReadFixedBody(SocketReader& reader, int64_t length, const ChunkSink& sink);

// The standard reason phrase for `status` ("OK", "Not Found", ...), or "" for codes not
// listed (HTTP/1.1 allows an empty reason phrase).
const char* ReasonPhrase(int status);

}  // namespace slipstream
