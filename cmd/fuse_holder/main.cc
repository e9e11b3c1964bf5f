// SPDX-License-Identifier: Apache-2.0
// slipstream-fuse-holder: keeps lazy mode's /dev/fuse descriptors open across slipstreamd
// restarts and crashes (see cmd/fuse_holder/fd_holder.h and docs/lazy-fuse.md, "Restart").
//
//   slipstream-fuse-holder --socket PATH          serve until SIGTERM/SIGINT or a QUIT
//   slipstream-fuse-holder --socket PATH --list   print what a running holder holds
//   slipstream-fuse-holder --socket PATH --stop   ask a running holder to exit
//
// Exit codes: 0 done, 1 runtime error, 2 usage, 3 another holder already serves PATH.
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "cmd/fuse_holder/fd_holder.h"
#include "common/log.h"
#include "fuse/fd_holder_client.h"

namespace {

using namespace slipstream;

int Usage() {
  std::cerr << "usage: slipstream-fuse-holder --socket PATH [--list | --stop]\n";
  return 2;
}

// Tells systemd (Type=notify) that the socket listens: the sd_notify protocol, one datagram
// to $NOTIFY_SOCKET (an abstract socket when it starts with '@'). Nothing without systemd.
void NotifySystemdReady() {
  const char* path = ::getenv("NOTIFY_SOCKET");
  if (path == nullptr || path[0] == '\0') return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const size_t len = std::strlen(path);
  if (len >= sizeof(addr.sun_path)) return;
  std::memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  UniqueFd sock(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  const char kReady[] = "READY=1";
  if (!sock.valid() ||
      ::sendto(sock.get(), kReady, sizeof(kReady) - 1, MSG_NOSIGNAL,
               reinterpret_cast<const sockaddr*>(&addr),
               static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len)) < 0) {
    log::Warn("sd_notify READY=1 failed", {{"error", std::strerror(errno)}});
  }
}

int Serve(const std::string& socket) {
  // SIGTERM/SIGINT arrive through a signalfd the holder polls; nothing else may kill it.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  if (sigprocmask(SIG_BLOCK, &stop, nullptr) != 0) return 1;
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGHUP, SIG_IGN);
  UniqueFd signals(::signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!signals.valid()) {
    log::Error("signalfd", {{"error", std::strerror(errno)}});
    return 1;
  }
  auto holder = holder::FdHolder::Listen(socket, {.stop_fd = signals.get()});
  if (!holder.ok()) {
    log::Error("fuse holder not started", {{"error", holder.status().ToString()}});
    return absl::IsAlreadyExists(holder.status()) ? 3 : 1;
  }
  log::Info("fuse holder serving", {{"socket", socket}, {"pid", ::getpid()}});
  NotifySystemdReady();
  absl::Status run = (*holder)->Run();
  holder->reset();
  log::Info("fuse holder exiting", {{"status", run.ToString()}});
  return run.ok() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket;
  bool list = false, stop = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--socket" && i + 1 < argc) {
      socket = argv[++i];
    } else if (arg == "--list") {
      list = true;
    } else if (arg == "--stop") {
      stop = true;
    } else {
      return Usage();
    }
  }
  if (socket.empty() || (list && stop)) return Usage();
  if (!list && !stop) return Serve(socket);

  auto client = fuse::FdHolderClient::Connect(socket);
  if (!client.ok()) {
    std::cerr << client.status() << "\n";
    return 1;
  }
  if (stop) {
    absl::Status s = client->Quit();
    if (!s.ok()) std::cerr << s << "\n";
    return s.ok() ? 0 : 1;
  }
  auto keys = client->List();
  if (!keys.ok()) {
    std::cerr << keys.status() << "\n";
    return 1;
  }
  for (const std::string& k : *keys) std::cout << k << "\n";
  return 0;
}
