// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "remote/http.h"
#include "remote/media_types.h"

namespace slipstream::testkit {

struct CompressOptions {
  // Compression level; -1 means the library default (zlib 6, zstd 3). gzip accepts 0..9,
  // zstd 1..19 (and negative "fast" levels other than -1).
  int level = -1;
  // When > 0, end the current gzip member / zstd frame after every this many uncompressed
  // bytes and start a new one, giving the multi-member streams some tools (pigz -i style,
  // seekable zstd) produce. Boundaries fall exactly at multiples of this many input bytes,
  // however Update() calls split the input.
  int64_t member_size = 0;
};

// Streaming compression into a sink: the role every layer writer in the test bench uses.
// Implementations: GzipCompressor (zlib), ZstdCompressor (libzstd), and a pass-through for
// Compression::kNone, all made by MakeCompressor. Output is buffered and handed to the sink in
// pieces of up to 256 KiB. Output is deterministic for the same input, options and library
// version (gzip headers carry no name and mtime 0).
//
// Errors are sticky: after one failure (library error or sink error) every call returns it.
// Owned by the caller; not thread-safe.
class Compressor {
 public:
  virtual ~Compressor() = default;
  // Compresses `data` (may be empty).
  virtual absl::Status Update(std::string_view data) = 0;
  // Ends the stream and flushes everything to the sink. Update after Finish is
  // FailedPrecondition.
  virtual absl::Status Finish() = 0;
};

// A compressor for `compression` writing into `sink`. InvalidArgument for a level the
// library rejects; Internal when the library cannot allocate its state.
absl::StatusOr<std::unique_ptr<Compressor>> MakeCompressor(remote::Compression compression,
                                                           remote::BodySink sink,
                                                           const CompressOptions& options = {});

// Compresses `data` in one call.
absl::StatusOr<std::string> CompressString(remote::Compression compression,
                                           std::string_view data,
                                           const CompressOptions& options = {});

// Decompresses a whole gzip (all members) or zstd (all frames) stream in memory, for tests.
// DataLoss for corrupt or truncated input; ResourceExhausted past `max_output` bytes.
absl::StatusOr<std::string> DecompressString(remote::Compression compression,
                                             std::string_view data,
                                             size_t max_output = 256u << 20);

// "gzip", "zstd" or "none".
std::string_view CompressionName(remote::Compression compression);
// Parses "gzip"/"gz", "zstd"/"zst" and "none"/"uncompressed". InvalidArgument otherwise.
absl::StatusOr<remote::Compression> ParseCompression(std::string_view name);
// The OCI layer media type for `compression` (tar, tar+gzip, tar+zstd).
std::string_view LayerMediaType(remote::Compression compression);

}  // namespace slipstream::testkit
