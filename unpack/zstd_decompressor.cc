// SPDX-License-Identifier: Apache-2.0
// zstd over libzstd's streaming API.
#include <zstd.h>

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "unpack/decompressor.h"

namespace slipstream::unpack {
namespace {

class ZstdDecompressor : public Decompressor {
 public:
  explicit ZstdDecompressor(ByteSink sink)
      : sink_(std::move(sink)), ds_(ZSTD_createDStream()), out_(ZSTD_DStreamOutSize()) {}
  ~ZstdDecompressor() override { ZSTD_freeDStream(ds_); }

  absl::Status Write(std::string_view data) override {
    SS_RETURN_IF_ERROR(status_);
    return Remember(WriteImpl(data));
  }

  absl::Status Finish() override {
    SS_RETURN_IF_ERROR(status_);
    if (bytes_in_ == 0) return Remember(absl::DataLossError("empty zstd stream"));
    // ZSTD_decompressStream returns 0 exactly when a frame has been fully decoded and
    // flushed; anything else means the input stopped inside a frame.
    if (last_hint_ != 0) {
      return Remember(absl::DataLossError(
          absl::StrCat("truncated zstd stream: frame ends early at offset ", bytes_in_)));
    }
    return absl::OkStatus();
  }

  int64_t bytes_out() const override { return bytes_out_; }

 private:
  absl::Status WriteImpl(std::string_view data) {
    if (ds_ == nullptr) return absl::ResourceExhaustedError("ZSTD_createDStream failed");
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    // Keep calling while input remains or the output buffer came back full (more may be
    // buffered inside the decoder).
    bool out_full = false;
    while (in.pos < in.size || out_full) {
      ZSTD_outBuffer out{out_.data(), out_.size(), 0};
      const size_t before = in.pos;
      const size_t ret = ZSTD_decompressStream(ds_, &out, &in);
      bytes_in_ += static_cast<int64_t>(in.pos - before);
      if (ZSTD_isError(ret)) {
        return absl::DataLossError(absl::StrCat("corrupt zstd stream near offset ", bytes_in_,
                                                ": ", ZSTD_getErrorName(ret)));
      }
      last_hint_ = ret;
      out_full = out.pos == out.size;
      if (out.pos > 0) {
        bytes_out_ += static_cast<int64_t>(out.pos);
        SS_RETURN_IF_ERROR(sink_(std::string_view(static_cast<const char*>(out.dst), out.pos)));
      }
      if (!out_full && in.pos == before && out.pos == 0 && in.pos < in.size) {
        return absl::InternalError("zstd decoder made no progress");
      }
    }
    return absl::OkStatus();
  }

  absl::Status Remember(absl::Status s) {
    if (!s.ok() && status_.ok()) status_ = s;
    return s;
  }

  ByteSink sink_;
  ZSTD_DStream* ds_;
  std::vector<char> out_;
  size_t last_hint_ = 0;
  int64_t bytes_in_ = 0;
  int64_t bytes_out_ = 0;
  absl::Status status_;
};

}  // namespace

std::unique_ptr<Decompressor> NewZstdDecompressor(ByteSink sink) {
  return std::make_unique<ZstdDecompressor>(std::move(sink));
}

}  // namespace slipstream::unpack
