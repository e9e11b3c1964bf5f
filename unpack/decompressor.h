// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "remote/media_types.h"
#include "unpack/byte_sink.h"

namespace slipstream::unpack {

using remote::Compression;

// A push-style streaming decompressor: the caller feeds compressed bytes with Write() as they
// arrive, and the decompressor hands every decompressed byte to its ByteSink before Write()
// returns. Finish() tells it the input has ended and checks that the stream ended cleanly.
// Implementations: gzip over ISA-L (igzip) or zlib, zstd over libzstd, a pass-through for
// uncompressed tar, and the sniffing decompressor from NewLayerDecompressor.
//
// Owned by whoever drives the stream (the layer unpacker). Not thread-safe: one thread at a
// time. Errors are sticky: after a failure every later call returns the same status.
class Decompressor {
 public:
  virtual ~Decompressor() = default;

  // Decompresses `compressed` (any size, may be empty) into the sink. DataLoss when the bytes
  // are not a valid stream of this format (bad magic, corrupt data, checksum mismatch,
  // trailing garbage); otherwise the sink's own status if it refused the output.
  virtual absl::Status Write(std::string_view compressed) = 0;

  // Declares the end of the input. DataLoss when the stream is empty or truncated (ends in the
  // middle of a gzip member or zstd frame). Must be called once, after the last Write().
  virtual absl::Status Finish() = 0;

  // Bytes handed to the sink so far.
  virtual int64_t bytes_out() const = 0;
};

// Which inflate implementation decodes gzip. ISA-L is several times faster; zlib is the
// portable fallback (and a cross-check in tests).
enum class GzipBackend { kIsal, kZlib };

// gzip (RFC 1952), single or multi-member (pigz, concatenated files). Every member's CRC-32 and
// length are verified; bytes after a member must start another member.
std::unique_ptr<Decompressor> NewGzipDecompressor(ByteSink sink,
                                                  GzipBackend backend = GzipBackend::kIsal);
// zstd, one or more concatenated frames (skippable frames are skipped); checksums verified
// when the frame carries one.
std::unique_ptr<Decompressor> NewZstdDecompressor(ByteSink sink);
// No compression: bytes go to the sink unchanged.
std::unique_ptr<Decompressor> NewPassthroughDecompressor(ByteSink sink);

// What the first bytes of a blob say about its format: gzip (1f 8b), zstd (28 b5 2f fd),
// kNone for a tar with the ustar magic at offset 257, nullopt when the bytes say nothing
// (too short, or e.g. an old v7 tar without magic).
std::optional<Compression> SniffCompression(std::string_view head);

// A decompressor for a layer whose media type declared `declared`. It buffers the first bytes
// of the stream (up to 262) and lets the magic bytes decide: a gzip or zstd magic wins even
// against the declared type (with a warning, like containerd's applier); a blob without a
// compression magic is tar when `declared` is kNone or the ustar magic is present, and
// DataLoss otherwise ("declared gzip but ...").
std::unique_ptr<Decompressor> NewLayerDecompressor(Compression declared, ByteSink sink,
                                                   GzipBackend backend = GzipBackend::kIsal);

// "gzip", "zstd" or "none", for logs and messages.
std::string_view CompressionName(Compression compression);

}  // namespace slipstream::unpack
