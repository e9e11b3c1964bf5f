// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "index/ztoc.h"

namespace slipstream::index {

// The `checkpoints` bytes of a zTOC's CompressionInfo: pure encode/decode functions, no
// state, safe to call from any thread (and from a fuzz target).
//
// Gzip layers: little-endian, tightly packed
//   int32 count; int64 span_size; count x { int64 in; int64 out; uint8 bits; byte window[32768] }
// The older "v1" variant omits checkpoint 0 (its blob is one record shorter than `count`
// says); checkpoint 0 is then {in: 10, out: 0, bits: 0, zero window}.
//
// Uncompressed layers: TarZinfo {int32 version; int64 span_size; int64 size}, written as 20
// packed little-endian bytes (what SOCI-compatible tools read); a TarZinfo flatbuffer is
// accepted on input as well.

inline constexpr size_t kCheckpointRecordSize = 8 + 8 + 1 + kWindowSize;
inline constexpr size_t kCheckpointBlobHeaderSize = 4 + 8;
inline constexpr size_t kTarZinfoPackedSize = 4 + 8 + 8;

struct GzipCheckpoints {
  int64_t span_size = 0;
  std::vector<Checkpoint> checkpoints;
  // True when the blob was the v1 variant without checkpoint 0.
  bool v1 = false;
};

// Encodes `checkpoints` in the current (v2) layout. Windows shorter than kWindowSize are
// zero-padded in front (only checkpoint 0's window is allowed to be empty).
std::string EncodeGzipCheckpoints(int64_t span_size, const std::vector<Checkpoint>& checkpoints);

// Decodes a v2 or v1 blob. InvalidArgument when the length does not match `count`, when
// `count` is not positive, or when `expected_count` (the zTOC's span count; -1 to skip) differs.
// Never allocates more than the blob's own size.
absl::StatusOr<GzipCheckpoints> DecodeGzipCheckpoints(std::string_view blob,
                                                      int64_t expected_count = -1);

struct TarZinfo {
  int32_t version = 2;
  int64_t span_size = 0;
  int64_t size = 0;
};

// The 20-byte packed form.
std::string EncodeTarZinfo(const TarZinfo& zinfo);
// Accepts the 20-byte packed form or a TarZinfo flatbuffer; InvalidArgument otherwise.
absl::StatusOr<TarZinfo> DecodeTarZinfo(std::string_view blob);

}  // namespace slipstream::index
