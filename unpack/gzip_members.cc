// SPDX-License-Identifier: Apache-2.0
#include "unpack/gzip_members.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace slipstream::unpack {

absl::Status GzipMembers::Emit(std::string_view out) {
  if (out.empty()) return absl::OkStatus();
  bytes_out_ += static_cast<int64_t>(out.size());
  return sink_(out);
}

absl::Status GzipMembers::Remember(absl::Status s) {
  if (!s.ok() && status_.ok()) status_ = s;
  return s;
}

absl::Status GzipMembers::Write(std::string_view compressed) {
  SS_RETURN_IF_ERROR(status_);
  return Remember(WriteImpl(compressed));
}

absl::Status GzipMembers::WriteImpl(std::string_view data) {
  while (!data.empty()) {
    if (!in_member_) {
      // Between members only another member may follow: anything else is garbage that a
      // lenient reader would silently drop, and we refuse to hash-and-ignore it.
      const int64_t member_start = bytes_in_ - static_cast<int64_t>(magic_.size());
      while (magic_.size() < 2 && !data.empty()) {
        magic_.push_back(data.front());
        data.remove_prefix(1);
        ++bytes_in_;
      }
      const bool bad = static_cast<uint8_t>(magic_[0]) != 0x1f ||
                       (magic_.size() == 2 && static_cast<uint8_t>(magic_[1]) != 0x8b);
      if (bad) {
        if (members_ == 0) return absl::DataLossError("not a gzip stream (bad magic)");
        return absl::DataLossError(absl::StrCat("trailing garbage after gzip member ", members_,
                                                " at offset ", member_start));
      }
      if (magic_.size() < 2) return absl::OkStatus();
      SS_RETURN_IF_ERROR(BeginMember());
      in_member_ = true;
      std::string magic = std::move(magic_);
      magic_.clear();
      size_t consumed = 0;
      bool done = false;
      SS_RETURN_IF_ERROR(Inflate(magic, consumed, done));
      // A member cannot end inside its own magic; the inflater keeps partial headers itself.
      if (consumed != magic.size() || done) {
        return absl::InternalError("gzip inflater did not accept the member magic");
      }
    }
    size_t consumed = 0;
    bool done = false;
    SS_RETURN_IF_ERROR(Inflate(data, consumed, done));
    data.remove_prefix(consumed);
    bytes_in_ += static_cast<int64_t>(consumed);
    if (done) {
      in_member_ = false;
      ++members_;
    } else if (consumed == 0 && !data.empty()) {
      return absl::InternalError("gzip inflater made no progress");
    }
  }
  return absl::OkStatus();
}

absl::Status GzipMembers::Finish() {
  SS_RETURN_IF_ERROR(status_);
  if (in_member_) {
    return Remember(absl::DataLossError(absl::StrCat("truncated gzip stream: member ",
                                                     members_ + 1, " ends early at offset ",
                                                     bytes_in_)));
  }
  if (!magic_.empty()) {
    return Remember(absl::DataLossError(absl::StrCat(
        members_ == 0 ? "not a gzip stream" : "trailing garbage after gzip member ",
        members_ == 0 ? "" : absl::StrCat(members_), " at offset ", bytes_in_ - 1)));
  }
  if (members_ == 0) return Remember(absl::DataLossError("empty gzip stream"));
  return absl::OkStatus();
}

}  // namespace slipstream::unpack
