// SPDX-License-Identifier: Apache-2.0
#include "index/gzip_indexer.h"

#include <isa-l/crc.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace slipstream::index {
namespace {

constexpr size_t kOutBufSize = 128 << 10;

uint32_t Le32(const std::string& s, size_t pos) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<uint8_t>(s[pos + i])} << (8 * i);
  return v;
}

}  // namespace

GzipIndexer::GzipIndexer(int64_t span_size, Sink sink)
    : span_size_(span_size),
      sink_(std::move(sink)),
      out_buf_(new char[kOutBufSize]),
      ring_(kWindowSize, '\0') {}

GzipIndexer::~GzipIndexer() {
  if (strm_ready_) inflateEnd(&strm_);
}

void GzipIndexer::Consumed(std::string_view bytes) {
  if (bytes.empty()) return;
  if (hashing_) span_hasher_.Update(bytes);
  in_total_ += static_cast<int64_t>(bytes.size());
  last_byte_ = bytes.back();
}

std::string GzipIndexer::Window() const {
  // Oldest bytes first: the ring from the write position on, then from its start.
  std::string w;
  w.reserve(kWindowSize);
  w.append(ring_, ring_pos_, std::string::npos);
  w.append(ring_, 0, ring_pos_);
  return w;
}

void GzipIndexer::AddCheckpoint(uint8_t bits) {
  // The current span ends here; with bits > 0 its last byte is also the next span's first.
  digests_.push_back(span_hasher_.Finish());
  if (bits) span_hasher_.Update(std::string_view(&last_byte_, 1));
  Checkpoint c;
  c.in = in_total_;
  c.out = out_total_;
  c.bits = bits;
  c.window = Window();
  checkpoints_.push_back(std::move(c));
  last_checkpoint_out_ = out_total_;
}

absl::Status GzipIndexer::Emit(const char* data, size_t n) {
  // ISA-L's CRC-32 (PCLMUL) costs a tenth of zlib's, which was ~9% of a zTOC build.
  member_crc_ = crc32_gzip_refl(member_crc_, reinterpret_cast<const unsigned char*>(data), n);
  member_out_ += n;
  out_total_ += static_cast<int64_t>(n);
  // Keep only the tail that can still be in the window.
  const char* p = data;
  size_t left = n;
  if (left > ring_.size()) {
    p += left - ring_.size();
    left = ring_.size();
  }
  while (left > 0) {
    size_t take = std::min(left, ring_.size() - ring_pos_);
    std::memcpy(ring_.data() + ring_pos_, p, take);
    ring_pos_ = (ring_pos_ + take) % ring_.size();
    p += take;
    left -= take;
  }
  return sink_(std::string_view(data, n));
}

absl::Status GzipIndexer::Inflate(std::string_view data, size_t* used) {
  strm_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  strm_.avail_in = static_cast<uInt>(data.size());
  size_t pos = 0;
  while (true) {
    strm_.next_out = reinterpret_cast<Bytef*>(out_buf_.get());
    strm_.avail_out = static_cast<uInt>(kOutBufSize);
    // Z_BLOCK returns at every deflate block end, where a checkpoint may be taken.
    int ret = inflate(&strm_, Z_BLOCK);
    if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR) {
      return absl::DataLossError(absl::StrCat("gzip: corrupt deflate data near offset ",
                                              in_total_, ": ", strm_.msg ? strm_.msg : "?"));
    }
    size_t consumed = data.size() - pos - strm_.avail_in;
    Consumed(data.substr(pos, consumed));
    pos += consumed;
    size_t produced = kOutBufSize - strm_.avail_out;
    if (produced > 0) SS_RETURN_IF_ERROR(Emit(out_buf_.get(), produced));
    if (ret == Z_STREAM_END) {
      stage_ = Stage::kTrailer;
      trailer_.clear();
      break;
    }
    // Bit 128: stopped right after a block's end-of-block code; bit 64: that was the last
    // block, whose end is the member's end and never a checkpoint (see the class comment).
    bool boundary = (strm_.data_type & 128) && !(strm_.data_type & 64);
    if (boundary && out_total_ - last_checkpoint_out_ > span_size_) {
      AddCheckpoint(static_cast<uint8_t>(strm_.data_type & 7));
    }
    if (strm_.avail_in == 0 && strm_.avail_out > 0) break;  // all input used, output drained
    if (ret == Z_BUF_ERROR && strm_.avail_out > 0) {
      return absl::InternalError("gzip: inflate made no progress");
    }
  }
  *used = pos;
  return absl::OkStatus();
}

absl::Status GzipIndexer::Trailer(std::string_view data, size_t* used) {
  size_t take = std::min(kGzipTrailerSize - trailer_.size(), data.size());
  trailer_.append(data.substr(0, take));
  *used = take;
  if (trailer_.size() < kGzipTrailerSize) return absl::OkStatus();
  if (Le32(trailer_, 0) != member_crc_ || Le32(trailer_, 4) != static_cast<uint32_t>(member_out_)) {
    return absl::DataLossError(absl::StrCat(
        "gzip: member ending at offset ", in_total_ + static_cast<int64_t>(take),
        " fails its CRC-32/size check"));
  }
  stage_ = Stage::kBetween;
  return absl::OkStatus();
}

absl::Status GzipIndexer::Write(std::string_view data) {
  while (!data.empty()) {
    size_t used = 0;
    switch (stage_) {
      case Stage::kHeader: {
        int64_t at = in_total_;
        SS_RETURN_IF_ERROR(Annotate(header_.Consume(data, &used),
                                    absl::StrCat("gzip member at offset ", at - header_.length())));
        Consumed(data.substr(0, used));
        if (header_.done()) {
          if (!hashing_) {
            // Checkpoint 0: where the first member's deflate data starts.
            Checkpoint first;
            first.in = in_total_;
            first.window.assign(kWindowSize, '\0');
            checkpoints_.push_back(std::move(first));
            hashing_ = true;
          }
          int ret = strm_ready_ ? inflateReset(&strm_) : inflateInit2(&strm_, -15);
          if (ret != Z_OK) return absl::InternalError("gzip: cannot initialise zlib");
          strm_ready_ = true;
          member_crc_ = 0;  // CRC-32 of nothing
          member_out_ = 0;
          stage_ = Stage::kDeflate;
        }
        break;
      }
      case Stage::kDeflate:
        SS_RETURN_IF_ERROR(Inflate(data, &used));
        break;
      case Stage::kTrailer:
        SS_RETURN_IF_ERROR(Trailer(data, &used));
        Consumed(data.substr(0, used));
        break;
      case Stage::kBetween:
        // Another member, or zero padding up to the end.
        if (static_cast<uint8_t>(data[0]) == 0x1f) {
          header_.Reset();
          stage_ = Stage::kHeader;
        } else if (data[0] == '\0') {
          stage_ = Stage::kPadding;
        } else {
          return absl::DataLossError(
              absl::StrCat("gzip: garbage after the member ending at offset ", in_total_));
        }
        break;
      case Stage::kPadding:
        if (data.find_first_not_of('\0') != std::string_view::npos) {
          return absl::DataLossError(
              absl::StrCat("gzip: garbage after the last member at offset ", in_total_));
        }
        used = data.size();
        Consumed(data);
        break;
    }
    data.remove_prefix(used);
  }
  return absl::OkStatus();
}

absl::Status GzipIndexer::Finish() {
  if (!hashing_) return absl::DataLossError("gzip: stream holds no complete gzip header");
  if (stage_ != Stage::kBetween && stage_ != Stage::kPadding) {
    return absl::DataLossError(
        absl::StrCat("gzip: stream truncated at offset ", in_total_, " inside a member"));
  }
  digests_.push_back(span_hasher_.Finish());
  return absl::OkStatus();
}

}  // namespace slipstream::index
