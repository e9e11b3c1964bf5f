// SPDX-License-Identifier: Apache-2.0
#include "testkit/compress.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::testkit {

namespace {

using remote::Compression;

constexpr size_t kOutBuffer = 256 << 10;

// Shared plumbing: sticky errors, the Finish state, member boundaries and the output buffer.
// Subclasses implement Compress (feed input, no boundary inside) and EndMember.
class BufferedCompressor : public Compressor {
 public:
  BufferedCompressor(remote::BodySink sink, int64_t member_size)
      : sink_(std::move(sink)), member_size_(member_size) {
    out_.resize(kOutBuffer);
  }

  absl::Status Update(std::string_view data) final {
    if (!error_.ok()) return error_;
    if (finished_) return absl::FailedPreconditionError("compressor: Update after Finish");
    while (!data.empty()) {
      size_t take = data.size();
      if (member_size_ > 0) {
        take = std::min<size_t>(take, static_cast<size_t>(member_size_ - in_member_));
      }
      SS_RETURN_IF_ERROR(Record(Compress(data.substr(0, take))));
      data.remove_prefix(take);
      in_member_ += static_cast<int64_t>(take);
      if (member_size_ > 0 && in_member_ == member_size_) {
        // The member ends here; the next one starts lazily with the next input byte so that
        // a stream whose size is a multiple of member_size has no empty trailing member.
        SS_RETURN_IF_ERROR(Record(EndMember()));
        any_member_ = true;
        in_member_ = 0;
        member_open_ = false;
      } else {
        member_open_ = true;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Finish() final {
    if (!error_.ok()) return error_;
    if (finished_) return absl::FailedPreconditionError("compressor: Finish called twice");
    finished_ = true;
    // An empty input still yields one (empty) member: a valid, non-empty compressed stream.
    if (member_open_ || !any_member_) SS_RETURN_IF_ERROR(Record(EndMember()));
    return Record(Flush());
  }

 protected:
  virtual absl::Status Compress(std::string_view data) = 0;
  virtual absl::Status EndMember() = 0;

  // Output space for the library: [out_.data() + used_, out_.size()).
  char* out_free() { return out_.data() + used_; }
  size_t out_free_size() const { return out_.size() - used_; }
  // The library produced `n` bytes into out_free(); hand full buffers to the sink.
  absl::Status Produced(size_t n) {
    used_ += n;
    if (used_ == out_.size()) return Flush();
    return absl::OkStatus();
  }

 private:
  absl::Status Flush() {
    if (used_ == 0) return absl::OkStatus();
    absl::Status s = sink_(std::string_view(out_.data(), used_));
    used_ = 0;
    return s;
  }
  absl::Status Record(absl::Status s) {
    if (!s.ok() && error_.ok()) error_ = s;
    return s;
  }

  remote::BodySink sink_;
  const int64_t member_size_;
  int64_t in_member_ = 0;
  bool member_open_ = false;
  bool any_member_ = false;
  bool finished_ = false;
  absl::Status error_;
  std::string out_;
  size_t used_ = 0;
};

class GzipCompressor final : public BufferedCompressor {
 public:
  GzipCompressor(remote::BodySink sink, int64_t member_size)
      : BufferedCompressor(std::move(sink), member_size) {}
  ~GzipCompressor() override {
    if (initialized_) deflateEnd(&z_);
  }

  absl::Status Init(int level) {
    if (level < -1 || level > 9) {
      return absl::InvalidArgumentError(absl::StrCat("gzip level ", level, " not in 0..9"));
    }
    // windowBits 15 + 16 asks zlib for a gzip wrapper (header without name, mtime 0).
    if (deflateInit2(&z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return absl::InternalError("deflateInit2 failed");
    }
    initialized_ = true;
    return absl::OkStatus();
  }

 protected:
  absl::Status Compress(std::string_view data) override { return Run(data, Z_NO_FLUSH); }

  absl::Status EndMember() override {
    SS_RETURN_IF_ERROR(Run({}, Z_FINISH));
    // deflateReset keeps the settings and starts the next member with a fresh gzip header.
    if (deflateReset(&z_) != Z_OK) return absl::InternalError("deflateReset failed");
    return absl::OkStatus();
  }

 private:
  absl::Status Run(std::string_view data, int flush) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z_.avail_in = static_cast<uInt>(data.size());
    while (true) {
      const size_t room = out_free_size();
      z_.next_out = reinterpret_cast<Bytef*>(out_free());
      z_.avail_out = static_cast<uInt>(room);
      const int rc = deflate(&z_, flush);
      if (rc == Z_STREAM_ERROR) return absl::InternalError("deflate: stream error");
      SS_RETURN_IF_ERROR(Produced(room - z_.avail_out));
      if (flush == Z_FINISH) {
        if (rc == Z_STREAM_END) return absl::OkStatus();
      } else if (z_.avail_in == 0 && z_.avail_out != 0) {
        return absl::OkStatus();
      }
    }
  }

  z_stream z_{};
  bool initialized_ = false;
};

class ZstdCompressor final : public BufferedCompressor {
 public:
  ZstdCompressor(remote::BodySink sink, int64_t member_size)
      : BufferedCompressor(std::move(sink), member_size) {}
  ~ZstdCompressor() override { ZSTD_freeCCtx(cctx_); }

  absl::Status Init(int level) {
    cctx_ = ZSTD_createCCtx();
    if (cctx_ == nullptr) return absl::InternalError("ZSTD_createCCtx failed");
    if (level == -1) level = ZSTD_CLEVEL_DEFAULT;
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel()) {
      return absl::InvalidArgumentError(absl::StrCat("zstd level ", level, " out of range"));
    }
    size_t rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_compressionLevel, level);
    // Frame checksums let decoders (and our tests) detect corruption.
    if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(cctx_, ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(rc)) {
      return absl::InvalidArgumentError(absl::StrCat("zstd: ", ZSTD_getErrorName(rc)));
    }
    return absl::OkStatus();
  }

 protected:
  absl::Status Compress(std::string_view data) override { return Run(data, ZSTD_e_continue); }
  // After ZSTD_e_end completes, the next input starts a new frame by itself.
  absl::Status EndMember() override { return Run({}, ZSTD_e_end); }

 private:
  absl::Status Run(std::string_view data, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (true) {
      ZSTD_outBuffer out{out_free(), out_free_size(), 0};
      const size_t remaining = ZSTD_compressStream2(cctx_, &out, &in, mode);
      if (ZSTD_isError(remaining)) {
        return absl::InternalError(absl::StrCat("zstd: ", ZSTD_getErrorName(remaining)));
      }
      SS_RETURN_IF_ERROR(Produced(out.pos));
      if (mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size) return absl::OkStatus();
    }
  }

  ZSTD_CCtx* cctx_ = nullptr;
};

// Compression::kNone: copies input through the same buffer (members do not exist).
class CopyCompressor final : public BufferedCompressor {
 public:
  explicit CopyCompressor(remote::BodySink sink) : BufferedCompressor(std::move(sink), 0) {}

 protected:
  absl::Status Compress(std::string_view data) override {
    while (!data.empty()) {
      const size_t n = std::min(data.size(), out_free_size());
      std::copy_n(data.data(), n, out_free());
      data.remove_prefix(n);
      SS_RETURN_IF_ERROR(Produced(n));
    }
    return absl::OkStatus();
  }
  absl::Status EndMember() override { return absl::OkStatus(); }
};

}  // namespace

absl::StatusOr<std::unique_ptr<Compressor>> MakeCompressor(Compression compression,
                                                           remote::BodySink sink,
                                                           const CompressOptions& options) {
  if (options.member_size < 0) {
    return absl::InvalidArgumentError("compressor: negative member_size");
  }
  switch (compression) {
    case Compression::kGzip: {
      auto c = std::make_unique<GzipCompressor>(std::move(sink), options.member_size);
      SS_RETURN_IF_ERROR(c->Init(options.level));
      return c;
    }
    case Compression::kZstd: {
      auto c = std::make_unique<ZstdCompressor>(std::move(sink), options.member_size);
      SS_RETURN_IF_ERROR(c->Init(options.level));
      return c;
    }
    case Compression::kNone:
      return std::make_unique<CopyCompressor>(std::move(sink));
  }
  return absl::InvalidArgumentError("compressor: unknown compression");
}

absl::StatusOr<std::string> CompressString(Compression compression, std::string_view data,
                                           const CompressOptions& options) {
  std::string out;
  SS_ASSIGN_OR_RETURN(auto c, MakeCompressor(
                                  compression,
                                  [&out](std::string_view chunk) {
                                    out.append(chunk);
                                    return absl::OkStatus();
                                  },
                                  options));
  SS_RETURN_IF_ERROR(c->Update(data));
  SS_RETURN_IF_ERROR(c->Finish());
  return out;
}

std::string_view CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kGzip: return "gzip";
    case Compression::kZstd: return "zstd";
    case Compression::kNone: return "none";
  }
  return "unknown";
}

absl::StatusOr<Compression> ParseCompression(std::string_view name) {
  const std::string n = absl::AsciiStrToLower(AV(name));
  if (n == "gzip" || n == "gz") return Compression::kGzip;
  if (n == "zstd" || n == "zst") return Compression::kZstd;
  if (n == "none" || n == "uncompressed") return Compression::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown compression \"", AV(name), "\" (want gzip, zstd or none)"));
}

std::string_view LayerMediaType(Compression compression) {
  switch (compression) {
    case Compression::kGzip: return remote::kOciLayerGzip;
    case Compression::kZstd: return remote::kOciLayerZstd;
    case Compression::kNone: return remote::kOciLayer;
  }
  return remote::kOciLayer;
}

}  // namespace slipstream::testkit
