// SPDX-License-Identifier: Apache-2.0
#include "fuse/fuse_reply.h"

#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/log.h"
#include "common/metrics.h"
#include "common/status.h"

namespace slipstream::fuse {

FuseReply::~FuseReply() {
  if (sent_) return;
  log::Error("FUSE request left without an answer; answering EIO", {{"op", op_}});
  sent_ = true;
  fuse_reply_err(req_, EIO);
}

bool FuseReply::Claim() {
  if (sent_) {
    log::Error("second answer to one FUSE request dropped", {{"op", op_}});
    assert(!"FUSE request answered twice");
    return false;
  }
  sent_ = true;
  return true;
}

void FuseReply::Error(int err) {
  if (!Claim()) return;
  // ENOENT and ENODATA are ordinary answers (a name or an xattr that is not there).
  if (err != ENOENT && err != ENODATA) {
    static metrics::Family<metrics::Counter>& errors = metrics::Global().AddCounterFamily(
        "slipstream_fuse_errors_total",
        "Lazy mode: FUSE requests answered with an error, by operation and errno.",
        {"op", "errno"});
    const char* name = strerrorname_np(err);
    errors.With({op_, name != nullptr ? name : std::to_string(err)}).Add();
  }
  fuse_reply_err(req_, err);
}

void FuseReply::Status(const absl::Status& status) { Error(StatusToErrno(status)); }

void FuseReply::Entry(const fuse_entry_param& entry) {
  if (Claim()) fuse_reply_entry(req_, &entry);
}

void FuseReply::Attr(const struct stat& st, double timeout) {
  if (Claim()) fuse_reply_attr(req_, &st, timeout);
}

void FuseReply::Buf(std::string_view data) {
  if (Claim()) fuse_reply_buf(req_, data.data(), data.size());
}

void FuseReply::Readlink(const std::string& target) {
  if (Claim()) fuse_reply_readlink(req_, target.c_str());
}

void FuseReply::Open(const fuse_file_info& fi) {
  if (Claim()) fuse_reply_open(req_, &fi);
}

void FuseReply::XattrSize(size_t size) {
  if (Claim()) fuse_reply_xattr(req_, size);
}

void FuseReply::Statfs(const struct statvfs& sv) {
  if (Claim()) fuse_reply_statfs(req_, &sv);
}

void FuseReply::None() {
  if (Claim()) fuse_reply_none(req_);
}

}  // namespace slipstream::fuse
