// SPDX-License-Identifier: Apache-2.0
#include "index/gzip_member.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace slipstream::index {
namespace {

constexpr uint8_t kFlagHcrc = 0x02;
constexpr uint8_t kFlagExtra = 0x04;
constexpr uint8_t kFlagName = 0x08;
constexpr uint8_t kFlagComment = 0x10;
constexpr uint8_t kFlagReserved = 0xe0;

}  // namespace

// Moves to the first optional field after `done_stage` that the flags announce.
void GzipHeaderParser::AdvanceFrom(Stage done_stage) {
  switch (done_stage) {
    case Stage::kFixed:
      if (flags_ & kFlagExtra) {
        stage_ = Stage::kExtraLen;
        need_ = 2;
        return;
      }
      [[fallthrough]];
    case Stage::kExtraLen:
    case Stage::kExtra:
      if (flags_ & kFlagName) {
        stage_ = Stage::kName;
        return;
      }
      [[fallthrough]];
    case Stage::kName:
      if (flags_ & kFlagComment) {
        stage_ = Stage::kComment;
        return;
      }
      [[fallthrough]];
    case Stage::kComment:
      if (flags_ & kFlagHcrc) {
        stage_ = Stage::kHcrc;
        need_ = 2;
        return;
      }
      [[fallthrough]];
    default:
      stage_ = Stage::kDone;
  }
}

absl::Status GzipHeaderParser::Consume(std::string_view in, size_t* used) {
  size_t i = 0;
  while (i < in.size() && stage_ != Stage::kDone) {
    uint8_t c = static_cast<uint8_t>(in[i]);
    switch (stage_) {
      case Stage::kFixed: {
        // Position inside the 10 fixed bytes.
        uint32_t pos = 10 - need_;
        if ((pos == 0 && c != 0x1f) || (pos == 1 && c != 0x8b)) {
          return absl::DataLossError(absl::StrCat("gzip: bad magic at header byte ", pos));
        }
        if (pos == 2 && c != 8) {
          return absl::DataLossError(absl::StrCat("gzip: compression method ", c));
        }
        if (pos == 3) {
          if (c & kFlagReserved) return absl::DataLossError("gzip: reserved header flags set");
          flags_ = c;
        }
        ++i;
        if (--need_ == 0) AdvanceFrom(Stage::kFixed);
        break;
      }
      case Stage::kExtraLen:
        extra_len_ |= uint32_t{c} << (8 * (2 - need_));
        ++i;
        if (--need_ == 0) {
          if (extra_len_ > 0) {
            stage_ = Stage::kExtra;
          } else {
            AdvanceFrom(Stage::kExtra);
          }
        }
        break;
      case Stage::kExtra: {
        size_t take = std::min<size_t>(extra_len_, in.size() - i);
        i += take;
        extra_len_ -= static_cast<uint32_t>(take);
        if (extra_len_ == 0) AdvanceFrom(Stage::kExtra);
        break;
      }
      case Stage::kName:
      case Stage::kComment:
        ++i;
        if (c == 0) AdvanceFrom(stage_);
        break;
      case Stage::kHcrc:
        ++i;
        if (--need_ == 0) AdvanceFrom(Stage::kHcrc);
        break;
      case Stage::kDone:
        break;
    }
  }
  length_ += static_cast<int64_t>(i);
  *used = i;
  return absl::OkStatus();
}

}  // namespace slipstream::index
