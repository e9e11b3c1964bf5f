// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/digest.h"

namespace slipstream::index {

// The zTOC version this code reads and writes.
inline constexpr std::string_view kZtocVersion = "0.9";
// Default span size and the layer size under which no zTOC is built (SOCI's defaults).
inline constexpr int64_t kDefaultSpanSize = 4 << 20;
inline constexpr int64_t kDefaultMinLayerSize = 10 << 20;
// Size of the uncompressed history a gzip checkpoint carries (deflate's maximum distance).
inline constexpr int64_t kWindowSize = 32768;
// Largest span size a zTOC may declare; anything bigger is treated as corrupt.
inline constexpr int64_t kMaxSpanSize = int64_t{1} << 30;

// Values of the flatbuffer enum CompressionAlgorithm.
enum class CompressionAlgorithm : int8_t { kGzip = 1, kUncompressed = 2 };

// Entry types as the zTOC spells them.
inline constexpr std::string_view kTypeDir = "dir";
inline constexpr std::string_view kTypeReg = "reg";
inline constexpr std::string_view kTypeSymlink = "symlink";
inline constexpr std::string_view kTypeHardlink = "hardlink";
inline constexpr std::string_view kTypeChar = "char";
inline constexpr std::string_view kTypeBlock = "block";
inline constexpr std::string_view kTypeFifo = "fifo";

// One PAX record of a tar entry.
struct Xattr {
  std::string key;
  std::string value;
  friend bool operator==(const Xattr&, const Xattr&) = default;
};

// One tar entry of the layer, as the zTOC's FileMetadata table describes it.
struct FileMetadata {
  std::string name;              // tar header name as written (no normalisation)
  std::string type;              // one of the kType* values
  int64_t uncompressed_offset = 0;  // where the entry's data starts in the tar stream
  int64_t uncompressed_size = 0;    // data size (0 for header-only types)
  std::string linkname;
  int64_t mode = 0;              // tar header mode field
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string uname;
  std::string gname;
  std::string mod_time;          // RFC 3339 with nanoseconds when present
  int64_t devmajor = 0;
  int64_t devminor = 0;
  std::vector<Xattr> xattrs;     // all PAX records of the entry, sorted by key
  friend bool operator==(const FileMetadata&, const FileMetadata&) = default;
};

// A resume point in a gzip layer: inflating raw deflate from compressed offset `in` (after
// priming `bits` bits of byte in-1) with `window` as dictionary yields the uncompressed
// stream from offset `out`.
struct Checkpoint {
  int64_t in = 0;
  int64_t out = 0;
  uint8_t bits = 0;    // 0..7
  std::string window;  // exactly kWindowSize bytes: the uncompressed data before `out`
  friend bool operator==(const Checkpoint&, const Checkpoint&) = default;
};

// The in-memory form of one zTOC: the table of contents of a layer and what is needed to
// decompress any span of it independently. A plain value type (thread-compatible): build it
// with ZtocBuilder or ParseZtoc, share it read-only (e.g. std::shared_ptr<const Ztoc>).
//
// Spans: a gzip layer has one span per checkpoint; span i covers compressed bytes
// [in_i - (bits_i ? 1 : 0), in_{i+1}) (the last one to the end of the blob) and uncompressed
// bytes [out_i, out_{i+1}). An uncompressed layer has fixed `span_size` slices and no
// checkpoints. The span geometry methods below assume a validated Ztoc (ValidateZtoc).
struct Ztoc {
  std::string version = std::string(kZtocVersion);
  std::string build_tool_identifier;
  int64_t compressed_archive_size = 0;
  int64_t uncompressed_archive_size = 0;
  std::vector<FileMetadata> entries;  // tar order (non-decreasing uncompressed_offset)

  CompressionAlgorithm compression = CompressionAlgorithm::kGzip;
  int64_t span_size = kDefaultSpanSize;
  std::vector<Digest> span_digests;     // one per span
  std::vector<Checkpoint> checkpoints;  // gzip: one per span; uncompressed: empty
  // Version field of the TarZinfo checkpoints of an uncompressed layer.
  int32_t tar_zinfo_version = 2;

  friend bool operator==(const Ztoc&, const Ztoc&) = default;

  // Number of spans (>= 1 for a valid zTOC).
  int64_t SpanCount() const;
  // Uncompressed range [start, end) of span `span`.
  int64_t SpanUncompressedStart(int64_t span) const;
  int64_t SpanUncompressedEnd(int64_t span) const;
  // Compressed range [start, end) holding span `span`, including the shared byte in_i - 1
  // when the span starts mid-byte.
  int64_t SpanCompressedStart(int64_t span) const;
  int64_t SpanCompressedEnd(int64_t span) const;
  // The span holding uncompressed offset `offset` (clamped to [0, SpanCount()-1]).
  int64_t SpanForUncompressedOffset(int64_t offset) const;
};

// Checks every invariant the readers rely on; used by ParseZtoc on untrusted input and by the
// builder on its own output. InvalidArgument naming the first violated one: unsupported
// version, negative sizes, span count and digest count mismatch, non-sha256 digests,
// checkpoints not strictly increasing or outside the archive, bits > 7, bad window size,
// span_size out of (0, kMaxSpanSize], empty names or names containing NUL, unknown entry
// types, entry data outside the archive or overlapping the previous entry.
absl::Status ValidateZtoc(const Ztoc& ztoc);

}  // namespace slipstream::index
