// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/status.h"

namespace slipstream::index {

// Incremental parser of one gzip member header (RFC 1952: magic, CM=8, flags, mtime, XFL, OS,
// then the optional FEXTRA, FNAME, FCOMMENT and FHCRC fields). It stores nothing but a few
// counters, so headers of any length cost no memory. Used to find where a member's deflate
// data starts, both while building a zTOC and when a span crosses into the next member.
// Not thread-safe; one per stream.
class GzipHeaderParser {
 public:
  // Consumes bytes of `in` up to the end of the header and returns how many it used (all of
  // `in` when the header continues past it). DataLoss when the bytes are not a gzip header
  // (bad magic, compression method other than deflate, reserved flag bits).
  absl::Status Consume(std::string_view in, size_t* used);
  bool done() const { return stage_ == Stage::kDone; }
  // Bytes of header consumed so far.
  int64_t length() const { return length_; }
  void Reset() { *this = GzipHeaderParser(); }

 private:
  enum class Stage { kFixed, kExtraLen, kExtra, kName, kComment, kHcrc, kDone };
  void AdvanceFrom(Stage done_stage);

  Stage stage_ = Stage::kFixed;
  uint8_t flags_ = 0;
  int64_t length_ = 0;
  uint32_t need_ = 10;  // bytes left in the current fixed-size stage
  uint32_t extra_len_ = 0;
};

// Size of the trailer after each member's deflate data: CRC-32 and ISIZE, little-endian.
inline constexpr size_t kGzipTrailerSize = 8;

}  // namespace slipstream::index
