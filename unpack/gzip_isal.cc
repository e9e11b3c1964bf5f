// SPDX-License-Identifier: Apache-2.0
// gzip over ISA-L's igzip inflater, and the backend switch.
#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "unpack/gzip_members.h"

namespace slipstream::unpack {

std::unique_ptr<Decompressor> NewZlibGzipDecompressor(ByteSink sink);  // gzip_zlib.cc

namespace {

constexpr size_t kOutBufferSize = 256 << 10;
// isal_inflate counts input in 32 bits.
constexpr size_t kMaxInputPerCall = 1u << 30;

std::string IsalError(int code) {
  switch (code) {
    case ISAL_INVALID_BLOCK:
      return "invalid deflate block";
    case ISAL_INVALID_SYMBOL:
      return "invalid deflate symbol";
    case ISAL_INVALID_LOOKBACK:
      return "invalid lookback distance";
    case ISAL_INVALID_WRAPPER:
      return "invalid gzip header";
    case ISAL_UNSUPPORTED_METHOD:
      return "unsupported compression method";
    case ISAL_INCORRECT_CHECKSUM:
      return "CRC-32 or length mismatch";
    case ISAL_NEED_DICT:
      return "stream needs a preset dictionary";
    default:
      return absl::StrCat("isal_inflate error ", code);
  }
}

class IsalGzipDecompressor : public GzipMembers {
 public:
  explicit IsalGzipDecompressor(ByteSink sink)
      : GzipMembers(std::move(sink)),
        state_(std::make_unique<inflate_state>()),
        out_(kOutBufferSize) {}

 protected:
  absl::Status BeginMember() override {
    isal_inflate_init(state_.get());
    // ISAL_GZIP: parse the header, inflate, and verify CRC-32 and ISIZE of the trailer.
    state_->crc_flag = ISAL_GZIP;
    return absl::OkStatus();
  }

  absl::Status Inflate(std::string_view in, size_t& consumed, bool& member_done) override {
    const size_t n = std::min(in.size(), kMaxInputPerCall);
    state_->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
    state_->avail_in = static_cast<uint32_t>(n);
    member_done = false;
    do {
      state_->next_out = out_.data();
      state_->avail_out = static_cast<uint32_t>(out_.size());
      const uint32_t avail_in_before = state_->avail_in;
      const int ret = isal_inflate(state_.get());
      const size_t produced = out_.size() - state_->avail_out;
      if (ret < 0 || ret == ISAL_NEED_DICT) {
        return absl::DataLossError(
            absl::StrCat("corrupt gzip stream near offset ", offset(), ": ", IsalError(ret)));
      }
      SS_RETURN_IF_ERROR(
          Emit(std::string_view(reinterpret_cast<const char*>(out_.data()), produced)));
      // At ISAL_BLOCK_FINISH the trailer has been checked and isal_inflate has handed back the
      // bytes it had read ahead, so next_in points at whatever follows this member.
      member_done = state_->block_state == ISAL_BLOCK_FINISH;
      // Neither input taken nor output made: calling again would spin. The caller reports
      // the lack of progress.
      if (!member_done && produced == 0 && state_->avail_in == avail_in_before) break;
    } while (!member_done && (state_->avail_in > 0 || state_->avail_out == 0));
    consumed = n - state_->avail_in;
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<inflate_state> state_;  // large (~45 KiB): keep it off the stack
  std::vector<uint8_t> out_;
};

}  // namespace

std::unique_ptr<Decompressor> NewGzipDecompressor(ByteSink sink, GzipBackend backend) {
  if (backend == GzipBackend::kZlib) return NewZlibGzipDecompressor(std::move(sink));
  return std::make_unique<IsalGzipDecompressor>(std::move(sink));
}

}  // namespace slipstream::unpack
