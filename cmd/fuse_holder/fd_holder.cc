// SPDX-License-Identifier: Apache-2.0
#include "cmd/fuse_holder/fd_holder.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "fuse/fd_holder_protocol.h"

namespace slipstream::holder {
namespace {

using fuse::HolderOp;

absl::StatusOr<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("bad socket path '", path, "'"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// True when something accepts connections at `addr`.
bool Answers(const sockaddr_un& addr) {
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  return probe.valid() &&
         ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) == 0;
}

bool PeerAllowed(int sock) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return false;
  return cred.uid == 0 || cred.uid == ::geteuid();
}

}  // namespace

absl::StatusOr<std::unique_ptr<FdHolder>> FdHolder::Listen(const std::string& socket_path,
                                                           FdHolderOptions options) {
  SS_ASSIGN_OR_RETURN(sockaddr_un addr, Address(socket_path));
  if (Answers(addr)) {
    return absl::AlreadyExistsError(absl::StrCat("a fuse holder already listens on ", socket_path));
  }
  // Nobody answers: a stale socket file of a holder that died, or nothing.
  if (::unlink(socket_path.c_str()) != 0 && errno != ENOENT) {
    return LastErrnoStatus(absl::StrCat("unlink stale socket ", socket_path));
  }
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) return LastErrnoStatus("socket");
  // The socket is created 0600 (umask), so no other user can connect even for a moment.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) return ErrnoToStatus(bind_errno, absl::StrCat("bind ", socket_path));
  if (::chmod(socket_path.c_str(), 0600) != 0) {
    return LastErrnoStatus(absl::StrCat("chmod ", socket_path));
  }
  if (::listen(sock.get(), 16) != 0) return LastErrnoStatus(absl::StrCat("listen ", socket_path));
  return std::unique_ptr<FdHolder>(new FdHolder(socket_path, std::move(sock), options));
}

FdHolder::~FdHolder() {
  ::unlink(socket_path_.c_str());
  if (!held_.empty()) log::Info("closing held descriptors", {{"count", held_.size()}});
}

std::vector<std::string> FdHolder::Keys() const {
  std::vector<std::string> keys;
  for (const auto& [key, fd] : held_) keys.push_back(key);
  return keys;
}

absl::Status FdHolder::Run() {
  std::vector<pollfd> fds;
  std::vector<std::string> held_keys;  // the key of each held entry in `fds`, in order
  while (true) {
    // [stop] [listener] clients... held...: rebuilt every round, the sets are tiny.
    fds.clear();
    held_keys.clear();
    fds.push_back({options_.stop_fd, POLLIN, 0});
    fds.push_back({listener_.get(), POLLIN, 0});
    for (const UniqueFd& c : clients_) fds.push_back({c.get(), POLLIN, 0});
    for (const auto& [key, fd] : held_) {
      // events 0: only POLLERR/POLLHUP/POLLNVAL wake us. A FUSE connection's pending
      // requests (POLLIN) are not ours to read.
      fds.push_back({fd.get(), 0, 0});
      held_keys.push_back(key);
    }
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus("poll");
    }
    if (fds[0].revents != 0) {
      log::Info("stop requested", {{"held", held_.size()}});
      return absl::OkStatus();
    }
    const size_t first_client = 2, first_held = first_client + clients_.size();
    // Held descriptors whose other side is gone.
    for (size_t i = 0; i < held_keys.size(); ++i) {
      if (fds[first_held + i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
        log::Info("connection gone, descriptor forgotten", {{"key", held_keys[i]}});
        held_.erase(held_keys[i]);
      }
    }
    // Clients, back to front so erasing keeps the indices of those not yet visited.
    bool quit = false;
    for (size_t i = clients_.size(); i-- > 0;) {
      const short ev = fds[first_client + i].revents;
      if (ev == 0) continue;
      if (!Serve(static_cast<int>(i), &quit)) clients_.erase(clients_.begin() + i);
      if (quit) return absl::OkStatus();
    }
    if (fds[1].revents & POLLIN) Accept();
  }
}

void FdHolder::Accept() {
  UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!client.valid()) return;  // EAGAIN, or a client that gave up
  if (!PeerAllowed(client.get())) {
    log::Warn("refused a client of another user");
    return;
  }
  if (static_cast<int>(clients_.size()) >= options_.max_clients) {
    log::Warn("too many clients, one refused", {{"clients", clients_.size()}});
    return;
  }
  clients_.push_back(std::move(client));
}

bool FdHolder::Serve(int client, bool* quit) {
  const int sock = clients_[client].get();
  absl::StatusOr<fuse::HolderMessage> msg = fuse::ReceiveHolderMessage(sock);
  if (!msg.ok()) {
    if (absl::IsDeadlineExceeded(msg.status())) return true;  // spurious wakeup
    if (!absl::IsUnavailable(msg.status())) {
      log::Warn("bad message, client dropped", {{"error", msg.status().ToString()}});
    }
    return false;
  }
  int reply_fd = -1;
  const std::string reply = Handle(msg->text, std::move(msg->fd), &reply_fd, quit);
  // Never block on a client that does not read its answers: it is dropped instead.
  absl::Status sent = fuse::SendHolderMessage(sock, reply, reply_fd, MSG_DONTWAIT);
  if (!sent.ok()) {
    log::Warn("answer not sent, client dropped", {{"error", sent.ToString()}});
    return false;
  }
  return true;
}

std::string FdHolder::Handle(const std::string& text, UniqueFd fd, int* reply_fd, bool* quit) {
  absl::StatusOr<fuse::HolderRequest> request = fuse::ParseHolderRequest(text);
  if (!request.ok()) return absl::StrCat("ERR ", request.status().message());
  if (request->op != HolderOp::kPut && fd.valid()) return "ERR unexpected descriptor";
  switch (request->op) {
    case HolderOp::kPut:
      if (!fd.valid()) return "ERR PUT without a descriptor";
      log::Info("holding", {{"key", request->key}, {"replaced", held_.count(request->key) > 0}});
      held_[request->key] = std::move(fd);
      return "OK";
    case HolderOp::kGet: {
      auto it = held_.find(request->key);
      if (it == held_.end()) return "NONE";
      // SCM_RIGHTS duplicates it into the client; ours stays held.
      *reply_fd = it->second.get();
      log::Info("handed back", {{"key", request->key}});
      return "OK";
    }
    case HolderOp::kDrop:
      if (held_.erase(request->key) == 0) return "NONE";
      log::Info("dropped", {{"key", request->key}});
      return "OK";
    case HolderOp::kList: {
      std::string out = "OK";
      for (const auto& [key, unused] : held_) {
        if (out.size() + key.size() + 1 > fuse::kHolderMaxMessage) break;
        absl::StrAppend(&out, "\n", key);
      }
      return out;
    }
    case HolderOp::kQuit:
      log::Info("quit requested", {{"held", held_.size()}});
      *quit = true;
      return "OK";
  }
  return "ERR internal";
}

}  // namespace slipstream::holder
