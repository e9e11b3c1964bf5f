// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/fd.h"
#include "fuse/fd_holder_protocol.h"

namespace slipstream::fuse {

// A connection to slipstream-fuse-holder (protocol in fuse/fd_holder_protocol.h). Each call
// is one request and its answer, bounded by the connection's timeout, so a hung holder
// cannot hang the daemon. Move-only; not thread-safe (one caller at a time).
class FdHolderClient {
 public:
  // Connects to the holder listening on `socket_path`. Unavailable when nobody listens
  // there (no socket file, or a stale one); other connect errors by errno.
  static absl::StatusOr<FdHolderClient> Connect(const std::string& socket_path,
                                                absl::Duration timeout = absl::Seconds(5));

  // Hands `fd` to the holder under `key` (a duplicate travels; the caller keeps its own),
  // replacing what it held there.
  absl::Status Put(const std::string& key, int fd);
  // A duplicate of the descriptor held under `key`. NotFound when it holds none.
  absl::StatusOr<UniqueFd> Get(const std::string& key);
  // The holder closes and forgets `key`. NotFound when it held none.
  absl::Status Drop(const std::string& key);
  // Every key held.
  absl::StatusOr<std::vector<std::string>> List();
  // The holder closes everything it holds and exits.
  absl::Status Quit();

  // Every call's errors: Unavailable when the holder went away, DeadlineExceeded when it did
  // not answer in time, FailedPrecondition with its reason for an `ERR` answer, Internal for
  // an answer that makes no sense.

 private:
  explicit FdHolderClient(UniqueFd sock) : sock_(std::move(sock)) {}
  // Sends `request` (with `fd` when >= 0) and returns the answer; `ERR …` becomes an error.
  absl::StatusOr<HolderMessage> Call(const std::string& request, int fd = -1);

  UniqueFd sock_;
};

}  // namespace slipstream::fuse
