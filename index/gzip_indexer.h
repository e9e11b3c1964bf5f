// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <zlib.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/digest.h"
#include "index/gzip_member.h"
#include "index/ztoc.h"

namespace slipstream::index {

// Inflates a gzip layer once, as it streams in, and records what a zTOC needs: a checkpoint
// at the first deflate block boundary after every `span_size` uncompressed bytes (zran
// style, using zlib's Z_BLOCK), the sha256 of each span's compressed bytes, and the sizes.
// The uncompressed bytes go to `sink` in order (the tar parser) and are not kept; memory is
// the inflater, a 32 KiB window and the checkpoints (32 KiB each).
//
// Multi-member files (concatenated gzip, some pigz modes) are followed across members: each
// member's trailer (CRC-32, ISIZE) is verified and the inflater reset for the next one. Rule:
// checkpoints are only taken at block boundaries strictly inside a member (never at a member
// start or end), so every checkpoint resumes raw deflate of one member, and a span may
// contain member ends; the span decoder steps over the trailer and the next header. Zero
// bytes after the last member are accepted as padding and belong to the last span.
// Owned by one ZtocBuilder; not thread-safe.
class GzipIndexer {
 public:
  using Sink = std::function<absl::Status(std::string_view uncompressed)>;

  GzipIndexer(int64_t span_size, Sink sink);
  ~GzipIndexer();
  GzipIndexer(const GzipIndexer&) = delete;
  GzipIndexer& operator=(const GzipIndexer&) = delete;

  // Consumes the next compressed bytes. DataLoss on a corrupt gzip/deflate stream or a
  // member whose CRC-32/ISIZE does not match; the sink's error is passed through.
  absl::Status Write(std::string_view compressed);
  // Ends the stream. DataLoss when it ends inside a member or holds no member at all.
  absl::Status Finish();

  int64_t compressed_size() const { return in_total_; }
  int64_t uncompressed_size() const { return out_total_; }
  // Valid after a successful Finish().
  std::vector<Checkpoint> TakeCheckpoints() { return std::move(checkpoints_); }
  std::vector<Digest> TakeSpanDigests() { return std::move(digests_); }

 private:
  enum class Stage { kHeader, kDeflate, kTrailer, kBetween, kPadding };

  absl::Status Inflate(std::string_view data, size_t* used);
  absl::Status Trailer(std::string_view data, size_t* used);
  absl::Status Emit(const char* data, size_t n);
  void Consumed(std::string_view bytes);
  void AddCheckpoint(uint8_t bits);
  std::string Window() const;

  const int64_t span_size_;
  Sink sink_;
  Stage stage_ = Stage::kHeader;
  GzipHeaderParser header_;
  z_stream strm_{};
  bool strm_ready_ = false;
  std::unique_ptr<char[]> out_buf_;

  int64_t in_total_ = 0;
  int64_t out_total_ = 0;
  bool hashing_ = false;     // set once the first member's header has been consumed
  char last_byte_ = 0;       // last compressed byte consumed (shared by two spans when bits>0)
  uint32_t member_crc_ = 0;
  uint64_t member_out_ = 0;
  std::string trailer_;
  int64_t last_checkpoint_out_ = 0;
  std::string ring_;         // last kWindowSize uncompressed bytes, circular
  size_t ring_pos_ = 0;

  Sha256Hasher span_hasher_;
  std::vector<Checkpoint> checkpoints_;
  std::vector<Digest> digests_;
};

}  // namespace slipstream::index
