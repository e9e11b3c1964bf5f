// SPDX-License-Identifier: Apache-2.0
// gzip over zlib: the portable fallback backend.
#include <zlib.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "unpack/gzip_members.h"

namespace slipstream::unpack {

std::unique_ptr<Decompressor> NewZlibGzipDecompressor(ByteSink sink);

namespace {

constexpr size_t kOutBufferSize = 256 << 10;
constexpr size_t kMaxInputPerCall = 1u << 30;  // uInt counts

class ZlibGzipDecompressor : public GzipMembers {
 public:
  explicit ZlibGzipDecompressor(ByteSink sink) : GzipMembers(std::move(sink)), out_(kOutBufferSize) {}
  ~ZlibGzipDecompressor() override {
    if (initialized_) inflateEnd(&zs_);
  }

 protected:
  absl::Status BeginMember() override {
    if (initialized_) {
      if (inflateReset(&zs_) != Z_OK) return absl::InternalError("inflateReset failed");
      return absl::OkStatus();
    }
    // 16 + 15: gzip wrapper only (no zlib/raw auto-detection), 32 KiB window.
    const int ret = inflateInit2(&zs_, 16 + MAX_WBITS);
    if (ret == Z_MEM_ERROR) return absl::ResourceExhaustedError("inflateInit2: out of memory");
    if (ret != Z_OK) return absl::InternalError(absl::StrCat("inflateInit2 failed: ", ret));
    initialized_ = true;
    return absl::OkStatus();
  }

  absl::Status Inflate(std::string_view in, size_t& consumed, bool& member_done) override {
    const size_t n = std::min(in.size(), kMaxInputPerCall);
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(n);
    member_done = false;
    do {
      zs_.next_out = out_.data();
      zs_.avail_out = static_cast<uInt>(out_.size());
      const int ret = inflate(&zs_, Z_NO_FLUSH);
      const size_t produced = out_.size() - zs_.avail_out;
      if (ret == Z_NEED_DICT || ret == Z_DATA_ERROR || ret == Z_STREAM_ERROR) {
        return absl::DataLossError(absl::StrCat("corrupt gzip stream near offset ", offset(),
                                                ": ", zs_.msg ? zs_.msg : "inflate error"));
      }
      if (ret == Z_MEM_ERROR) return absl::ResourceExhaustedError("inflate: out of memory");
      SS_RETURN_IF_ERROR(
          Emit(std::string_view(reinterpret_cast<const char*>(out_.data()), produced)));
      if (ret == Z_STREAM_END) {
        member_done = true;
      } else if (ret == Z_BUF_ERROR) {
        break;  // no progress possible without more input
      }
    } while (!member_done && (zs_.avail_in > 0 || zs_.avail_out == 0));
    consumed = n - zs_.avail_in;
    return absl::OkStatus();
  }

 private:
  z_stream zs_{};
  bool initialized_ = false;
  std::vector<Bytef> out_;
};

}  // namespace

std::unique_ptr<Decompressor> NewZlibGzipDecompressor(ByteSink sink) {
  return std::make_unique<ZlibGzipDecompressor>(std::move(sink));
}

}  // namespace slipstream::unpack
