// SPDX-License-Identifier: Apache-2.0
#include "common/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/status.h"

namespace slipstream {

absl::StatusOr<UniqueFd> ListenTcp(const std::string& ip, int port, int* bound_port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("listen: not an IPv4 address: ", ip));
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return LastErrnoStatus("socket");
  // SO_REUSEADDR lets a restarted server take back its port while old connections linger in
  // TIME_WAIT; it does not allow two live listeners on one port.
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return LastErrnoStatus(absl::StrCat("bind ", ip, ":", port));
  }
  if (::listen(fd.get(), 128) != 0) return LastErrnoStatus("listen");
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return LastErrnoStatus("getsockname");
  }
  *bound_port = ntohs(addr.sin_port);
  return fd;
}

absl::StatusOr<UniqueFd> ListenLoopback(int port, int* bound_port) {
  return ListenTcp("127.0.0.1", port, bound_port);
}

absl::StatusOr<UniqueFd> ConnectTcp(const std::string& host, int port, absl::Duration timeout) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("connect: not an IPv4 address: ", host));
  }
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return LastErrnoStatus("socket");
  std::string where = absl::StrCat("connect ", host, ":", port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS) return LastErrnoStatus(where);
    pollfd p{fd.get(), POLLOUT, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return absl::UnavailableError(absl::StrCat(where, ": timed out"));
    if (rc < 0) return LastErrnoStatus(where);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return ErrnoToStatus(err, where);
  }
  // Back to blocking: callers use plain blocking reads with SO_RCVTIMEO.
  ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

absl::Status SplitHostPort(std::string_view hostport, std::string* host, int* port) {
  // Debian's abseil has its own string_view type; convert at the boundary.
  absl::string_view hp(hostport.data(), hostport.size());
  size_t colon = hp.rfind(':');
  if (colon == absl::string_view::npos || !absl::SimpleAtoi(hp.substr(colon + 1), port) ||
      *port < 0 || *port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("bad host:port \"", hp, "\""));
  }
  *host = std::string(hostport.substr(0, colon));
  return absl::OkStatus();
}

absl::Status SendAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus("send");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

void ResetAndClose(UniqueFd& fd) {
  if (!fd.valid()) return;
  // A zero linger time makes close() discard unsent data and send RST.
  linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.Reset();
}

void SetSocketTimeouts(int fd, absl::Duration timeout) {
  timeval tv = absl::ToTimeval(timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

absl::StatusOr<bool> SocketReader::Fill() {
  if (pos_ < buf_.size()) return true;
  buf_.resize(64 * 1024);
  pos_ = 0;
  for (;;) {
    ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      buf_.clear();
      if (err == EAGAIN || err == EWOULDBLOCK) {
        return absl::UnavailableError("recv: timed out");
      }
      return ErrnoToStatus(err, "recv");
    }
    buf_.resize(static_cast<size_t>(n));
    return n > 0;
  }
}

absl::StatusOr<std::string> SocketReader::ReadLine(size_t max_length) {
  std::string line;
  bool any = false;
  for (;;) {
    SS_ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) {
      if (!any) return absl::OutOfRangeError("connection closed");
      return absl::UnavailableError("connection closed inside a line");
    }
    any = true;
    size_t nl = buf_.find('\n', pos_);
    size_t end = nl == std::string::npos ? buf_.size() : nl;
    line.append(buf_, pos_, end - pos_);
    pos_ = nl == std::string::npos ? buf_.size() : nl + 1;
    if (line.size() > max_length) {
      return absl::InvalidArgumentError(absl::StrCat("line longer than ", max_length, " bytes"));
    }
    if (nl != std::string::npos) break;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

absl::StatusOr<std::string> SocketReader::ReadExact(size_t n) {
  std::string out;
  out.reserve(n);
  while (out.size() < n) {
    SS_ASSIGN_OR_RETURN(bool more, Fill());
    if (!more) {
      return absl::UnavailableError(
          absl::StrCat("connection closed after ", out.size(), " of ", n, " bytes"));
    }
    size_t take = std::min(n - out.size(), buf_.size() - pos_);
    out.append(buf_, pos_, take);
    pos_ += take;
  }
  return out;
}

absl::StatusOr<std::string> SocketReader::ReadSome(size_t max) {
  SS_ASSIGN_OR_RETURN(bool more, Fill());
  if (!more) return std::string();
  size_t take = std::min(max, buf_.size() - pos_);
  std::string out = buf_.substr(pos_, take);
  pos_ += take;
  return out;
}

std::string HttpHead::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

bool HttpHead::HeaderHasToken(std::string_view name, std::string_view token) const {
  for (const auto& [k, v] : headers) {
    if (k != name) continue;
    for (absl::string_view part : absl::StrSplit(v, ',')) {
      if (absl::EqualsIgnoreCase(absl::StripAsciiWhitespace(part),
                                 absl::string_view(token.data(), token.size()))) {
        return true;
      }
    }
  }
  return false;
}

absl::StatusOr<HttpHead> ReadHttpHead(SocketReader& reader) {
  HttpHead head;
  // RFC 9112 asks servers to ignore empty lines before a request line (stray CRLF after a
  // previous body).
  do {
    SS_ASSIGN_OR_RETURN(head.start_line, reader.ReadLine());
  } while (head.start_line.empty());
  for (;;) {
    absl::StatusOr<std::string> line = reader.ReadLine();
    if (!line.ok()) {
      // EOF in the middle of a header block is a broken message, not a clean close.
      if (absl::IsOutOfRange(line.status())) return absl::UnavailableError("closed in headers");
      return line.status();
    }
    if (line->empty()) break;
    size_t colon = line->find(':');
    if (colon == std::string::npos || colon == 0) {
      return absl::InvalidArgumentError(absl::StrCat("malformed header line \"", *line, "\""));
    }
    if (head.headers.size() >= 100) return absl::InvalidArgumentError("too many headers");
    head.headers.emplace_back(absl::AsciiStrToLower(line->substr(0, colon)),
                              std::string(absl::StripAsciiWhitespace(
                                  absl::string_view(*line).substr(colon + 1))));
  }
  return head;
}

absl::Status ReadChunkedBody(SocketReader& reader, const ChunkSink& sink) {
  for (;;) {
    SS_ASSIGN_OR_RETURN(std::string size_line, reader.ReadLine());
    absl::string_view hex = size_line;
    hex = hex.substr(0, hex.find(';'));  // chunk extensions are allowed and ignored
    hex = absl::StripAsciiWhitespace(hex);
    uint64_t size = 0;
    if (hex.empty() || !absl::SimpleHexAtoi(hex, &size) || size > (1ull << 40)) {
      return absl::InvalidArgumentError(absl::StrCat("bad chunk size \"", size_line, "\""));
    }
    if (size == 0) break;
    SS_RETURN_IF_ERROR(ReadFixedBody(reader, static_cast<int64_t>(size), sink));
    SS_ASSIGN_OR_RETURN(std::string crlf, reader.ReadLine());
    if (!crlf.empty()) return absl::InvalidArgumentError("chunk not followed by CRLF");
  }
  // Trailers, up to the empty line.
  for (;;) {
    SS_ASSIGN_OR_RETURN(std::string trailer, reader.ReadLine());
    if (trailer.empty()) return absl::OkStatus();
  }
}

absl::Status ReadFixedBody(SocketReader& reader, int64_t length, const ChunkSink& sink) {
  while (length > 0) {
    SS_ASSIGN_OR_RETURN(std::string piece,
                        reader.ReadSome(static_cast<size_t>(std::min<int64_t>(length, 64 * 1024))));
    if (piece.empty()) {
      return absl::UnavailableError(absl::StrCat("connection closed with ", length,
                                                 " body bytes missing"));
    }
    length -= static_cast<int64_t>(piece.size());
    SS_RETURN_IF_ERROR(sink(piece));
  }
  return absl::OkStatus();
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace slipstream
