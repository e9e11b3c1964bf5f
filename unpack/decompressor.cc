// SPDX-License-Identifier: Apache-2.0
#include "unpack/decompressor.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::unpack {
namespace {

constexpr std::string_view kGzipMagic("\x1f\x8b", 2);
constexpr std::string_view kZstdMagic("\x28\xb5\x2f\xfd", 4);
constexpr size_t kUstarOffset = 257;
constexpr std::string_view kUstarMagic("ustar", 5);
// Enough bytes to see every magic we look for.
constexpr size_t kSniffBytes = kUstarOffset + kUstarMagic.size();

class PassthroughDecompressor : public Decompressor {
 public:
  explicit PassthroughDecompressor(ByteSink sink) : sink_(std::move(sink)) {}

  absl::Status Write(std::string_view data) override {
    if (data.empty()) return absl::OkStatus();
    bytes_out_ += static_cast<int64_t>(data.size());
    return sink_(data);
  }
  absl::Status Finish() override { return absl::OkStatus(); }
  int64_t bytes_out() const override { return bytes_out_; }

 private:
  ByteSink sink_;
  int64_t bytes_out_ = 0;
};

// Holds back the first kSniffBytes of the stream until the format is known, then replays
// them into the real decompressor and forwards everything after.
class SniffingDecompressor : public Decompressor {
 public:
  SniffingDecompressor(Compression declared, ByteSink sink, GzipBackend backend)
      : declared_(declared), sink_(std::move(sink)), backend_(backend) {}

  absl::Status Write(std::string_view data) override {
    SS_RETURN_IF_ERROR(status_);
    if (inner_ != nullptr) return Remember(inner_->Write(data));
    head_.append(data.data(), data.size());
    if (!Decidable()) return absl::OkStatus();
    return Remember(Start());
  }

  absl::Status Finish() override {
    SS_RETURN_IF_ERROR(status_);
    if (inner_ == nullptr) {
      if (head_.empty()) {
        return Remember(absl::DataLossError(
            absl::StrCat("empty layer stream (declared ", AV(CompressionName(declared_)), ")")));
      }
      SS_RETURN_IF_ERROR(Remember(Start()));
    }
    return Remember(inner_->Finish());
  }

  int64_t bytes_out() const override { return inner_ ? inner_->bytes_out() : 0; }

 private:
  // True once the buffered head is enough to choose.
  bool Decidable() const {
    if (head_.size() >= kSniffBytes) return true;
    // A compression magic is conclusive as soon as it is complete.
    return head_.size() >= kZstdMagic.size() && SniffCompression(head_).has_value() &&
           *SniffCompression(head_) != Compression::kNone;
  }

  absl::Status Start() {
    std::optional<Compression> sniffed = SniffCompression(head_);
    Compression chosen;
    if (sniffed.has_value()) {
      chosen = *sniffed;
    } else if (declared_ == Compression::kNone) {
      chosen = Compression::kNone;  // an old tar without the ustar magic
    } else {
      return absl::DataLossError(absl::StrCat(
          "layer declared as ", AV(CompressionName(declared_)), " but starts with \"",
          absl::CHexEscape(absl::string_view(head_.data(), std::min<size_t>(head_.size(), 8))),
          "\""));
    }
    if (chosen != declared_) {
      log::Warn("layer compression differs from its media type; following the magic bytes",
                {{"declared", AV(CompressionName(declared_))},
                 {"detected", AV(CompressionName(chosen))}});
    }
    switch (chosen) {
      case Compression::kGzip:
        inner_ = NewGzipDecompressor(std::move(sink_), backend_);
        break;
      case Compression::kZstd:
        inner_ = NewZstdDecompressor(std::move(sink_));
        break;
      case Compression::kNone:
        inner_ = NewPassthroughDecompressor(std::move(sink_));
        break;
    }
    std::string head = std::move(head_);
    head_.clear();
    return inner_->Write(head);
  }

  absl::Status Remember(absl::Status s) {
    if (!s.ok() && status_.ok()) status_ = s;
    return s;
  }

  const Compression declared_;
  ByteSink sink_;
  const GzipBackend backend_;
  std::string head_;
  std::unique_ptr<Decompressor> inner_;
  absl::Status status_;
};

}  // namespace

std::unique_ptr<Decompressor> NewPassthroughDecompressor(ByteSink sink) {
  return std::make_unique<PassthroughDecompressor>(std::move(sink));
}

std::optional<Compression> SniffCompression(std::string_view head) {
  if (head.substr(0, kGzipMagic.size()) == kGzipMagic) return Compression::kGzip;
  if (head.substr(0, kZstdMagic.size()) == kZstdMagic) return Compression::kZstd;
  if (head.size() >= kSniffBytes && head.substr(kUstarOffset, kUstarMagic.size()) == kUstarMagic) {
    return Compression::kNone;
  }
  return std::nullopt;
}

std::unique_ptr<Decompressor> NewLayerDecompressor(Compression declared, ByteSink sink,
                                                   GzipBackend backend) {
  return std::make_unique<SniffingDecompressor>(declared, std::move(sink), backend);
}

std::string_view CompressionName(Compression compression) {
  switch (compression) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

}  // namespace slipstream::unpack
