// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fd.h"

namespace slipstream::holder {

struct FdHolderOptions {
  // Readable (an eventfd, a signalfd, a pipe) once Run() must return; -1: none. Borrowed.
  int stop_fd = -1;
  // Connections served at once; more are closed at accept.
  int max_clients = 32;
};

// The heart of slipstream-fuse-holder: a single-threaded server on a unix SOCK_SEQPACKET
// socket that keeps descriptors handed to it (fuse/fd_holder_protocol.h: PUT, GET, DROP,
// LIST, QUIT) keyed by mountpoint, and nothing else. A held descriptor whose peer goes away
// (the FUSE connection aborted because its mount is gone; for a pipe, its writer closed) is
// forgotten on its own: the holder polls each one for POLLERR/POLLHUP without reading it.
// Only clients with the holder's own uid or root are served (SO_PEERCRED).
//
// Owned by main (or a test); Run() on one thread. Not thread-safe otherwise: stop it through
// `stop_fd`.
class FdHolder {
 public:
  // Binds and listens on `socket_path` (mode 0600). A socket file nobody listens on (a
  // previous holder crashed) is replaced; AlreadyExists when a live holder answers there.
  // Errors of socket/bind/listen otherwise, naming the path.
  static absl::StatusOr<std::unique_ptr<FdHolder>> Listen(const std::string& socket_path,
                                                          FdHolderOptions options = {});
  // Removes the socket file and closes every descriptor it still holds.
  ~FdHolder();
  FdHolder(const FdHolder&) = delete;
  FdHolder& operator=(const FdHolder&) = delete;

  // Serves until a QUIT request or `stop_fd` is readable. Internal on a poll failure.
  absl::Status Run();

  // What it holds now, by key (for the log and tests; call between Run()s or from Run's thread).
  std::vector<std::string> Keys() const;

 private:
  FdHolder(std::string socket_path, UniqueFd listener, FdHolderOptions options)
      : socket_path_(std::move(socket_path)), listener_(std::move(listener)), options_(options) {}
  void Accept();
  // Reads and answers one request of client `i`; false when the client must be dropped.
  bool Serve(int client, bool* quit);
  std::string Handle(const std::string& text, UniqueFd fd, int* reply_fd, bool* quit);

  const std::string socket_path_;
  UniqueFd listener_;
  const FdHolderOptions options_;
  std::vector<UniqueFd> clients_;
  std::map<std::string, UniqueFd> held_;
};

}  // namespace slipstream::holder
