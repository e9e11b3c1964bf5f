// SPDX-License-Identifier: Apache-2.0
#pragma once

// FUSE_USE_VERSION comes from the slipstream_fuse target (fuse/CMakeLists.txt).
#include <fuse_lowlevel.h>

#include <string_view>

#include "absl/status/status.h"

namespace slipstream::fuse {

// Answers one FUSE request exactly once. Every handler of FuseServer creates one on entry
// and replies through it: a second reply is refused (logged, and an assert in debug builds),
// and a handler that returns without replying (a bug, or an exception caught by the
// dispatcher) makes the destructor answer EIO, so the kernel never waits forever on a
// request. Lives on the handler's stack; not thread-safe (one request, one thread).
class FuseReply {
 public:
  FuseReply(fuse_req_t req, const char* op) : req_(req), op_(op) {}
  ~FuseReply();
  FuseReply(const FuseReply&) = delete;
  FuseReply& operator=(const FuseReply&) = delete;

  // An errno answer (0 is success for requests answered with a bare status).
  void Error(int err);
  // StatusToErrno(status); OK answers 0.
  void Status(const absl::Status& status);
  void Entry(const fuse_entry_param& entry);
  void Attr(const struct stat& st, double timeout);
  void Buf(std::string_view data);
  void Readlink(const std::string& target);
  void Open(const fuse_file_info& fi);
  void XattrSize(size_t size);
  void Statfs(const struct statvfs& sv);
  // Forget requests take no answer; this only marks the request done.
  void None();

  bool sent() const { return sent_; }

 private:
  // True for the first reply; false (logged) for any later one.
  bool Claim();

  fuse_req_t req_;
  const char* op_;
  bool sent_ = false;
};

}  // namespace slipstream::fuse
