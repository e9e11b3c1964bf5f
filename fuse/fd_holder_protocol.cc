// SPDX-License-Identifier: Apache-2.0
#include "fuse/fd_holder_protocol.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::fuse {
namespace {

// Room for a few descriptors, so a misbehaving peer's extra ones are received (and closed)
// rather than silently dropped by the kernel with MSG_CTRUNC.
constexpr int kMaxFdsPerMessage = 8;

absl::Status CheckKey(std::string_view key) {
  if (key.empty()) return absl::InvalidArgumentError("empty key");
  if (key.size() > kHolderMaxKey) return absl::InvalidArgumentError("key too long");
  if (key.find('\n') != std::string_view::npos || key.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("key with a newline or NUL");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<HolderRequest> ParseHolderRequest(std::string_view text) {
  const size_t space = text.find(' ');
  const std::string_view verb = text.substr(0, space);
  const bool has_key = space != std::string_view::npos;
  const std::string_view key = has_key ? text.substr(space + 1) : std::string_view();
  HolderRequest request;
  if (verb == "PUT") {
    request.op = HolderOp::kPut;
  } else if (verb == "GET") {
    request.op = HolderOp::kGet;
  } else if (verb == "DROP") {
    request.op = HolderOp::kDrop;
  } else if (verb == "LIST" || verb == "QUIT") {
    if (has_key) return absl::InvalidArgumentError(absl::StrCat(AV(verb), " takes no key"));
    request.op = verb == "LIST" ? HolderOp::kList : HolderOp::kQuit;
    return request;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown request '", AV(verb.substr(0, 16)), "'"));
  }
  SS_RETURN_IF_ERROR(CheckKey(key));
  request.key = std::string(key);
  return request;
}

std::string FormatHolderRequest(const HolderRequest& request) {
  switch (request.op) {
    case HolderOp::kPut:
      return absl::StrCat("PUT ", request.key);
    case HolderOp::kGet:
      return absl::StrCat("GET ", request.key);
    case HolderOp::kDrop:
      return absl::StrCat("DROP ", request.key);
    case HolderOp::kList:
      return "LIST";
    case HolderOp::kQuit:
      return "QUIT";
  }
  return "";
}

absl::Status SendHolderMessage(int sock, std::string_view text, int fd, int flags) {
  if (text.size() > kHolderMaxMessage) return absl::InvalidArgumentError("message too long");
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  while (true) {
    if (::sendmsg(sock, &msg, flags | MSG_NOSIGNAL) >= 0) return absl::OkStatus();
    if (errno == EINTR) continue;
    if (errno == EAGAIN && !(flags & MSG_DONTWAIT)) {
      return absl::DeadlineExceededError("send to the fuse holder timed out");
    }
    return LastErrnoStatus("sendmsg");
  }
}

absl::StatusOr<HolderMessage> ReceiveHolderMessage(int sock) {
  std::vector<char> buf(kHolderMaxMessage + 1);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    // A blocking socket says EAGAIN when its SO_RCVTIMEO expired.
    if (errno == EAGAIN) return absl::DeadlineExceededError("no message from the peer in time");
    return LastErrnoStatus("recvmsg");
  }
  // Collect every descriptor first, so each is closed on every error path below.
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  if (n == 0 && fds.empty()) return absl::UnavailableError("the peer closed the connection");
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    return absl::DataLossError("truncated message from the peer");
  }
  if (fds.size() > 1) return absl::InvalidArgumentError("more than one descriptor in a message");
  HolderMessage out;
  out.text.assign(buf.data(), static_cast<size_t>(n));
  if (!fds.empty()) out.fd = std::move(fds[0]);
  return out;
}

}  // namespace slipstream::fuse
