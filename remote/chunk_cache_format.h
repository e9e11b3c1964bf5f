// SPDX-License-Identifier: Apache-2.0
// The on-disk format of one chunk cache entry: where its file lives and what is inside.
// Used by ChunkCache; exposed so tests can build, inspect and damage entries.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "remote/chunk_cache_key.h"

namespace slipstream::remote {

// CRC-32C (Castagnoli), the checksum of iSCSI and ext4 metadata. `crc` is the value returned
// by a previous call (0 to start), so a checksum can be computed in pieces.
// Crc32c(0, "123456789") == 0xE3069283. Thread-safe (pure function).
// Uses the CPU's crc32 instruction (SSE 4.2) when it has one, else Crc32cPortable.
uint32_t Crc32c(uint32_t crc, std::string_view data);
// The same checksum from lookup tables, for any CPU (and for tests of Crc32c).
uint32_t Crc32cPortable(uint32_t crc, std::string_view data);

// InvalidArgument unless `key` names a real blob with offset >= 0 and length >= 0.
absl::Status ValidateChunkKey(const ChunkKey& key);

// The file of `key` relative to the cache directory:
//   "<algorithm>/<first two hex digits>/<hex>/<offset>-<length>"
// Built only from the validated digest and integers, so it can never escape the directory.
// `key` must be valid (ValidateChunkKey).
std::string ChunkRelativePath(const ChunkKey& key);

// Inverse of ChunkRelativePath for one file found on disk: the four path components.
// InvalidArgument naming the path when it is not a chunk file of this layout.
absl::StatusOr<ChunkKey> ParseChunkRelativePath(std::string_view algorithm,
                                                std::string_view prefix, std::string_view hex,
                                                std::string_view name);

// Exact size in bytes of the file that stores `key` (header + payload). The cache counts
// this size against its bound, and a file of any other size is torn.
int64_t ChunkFileBytes(const ChunkKey& key);

// Size of the header that precedes the payload in the file of `key`.
int64_t ChunkHeaderBytes(const ChunkKey& key);

// The header to write in front of `payload` for `key`. The header repeats the key (so a file
// moved to another name is caught) and carries CRC-32Cs of itself and of the payload (so a
// torn or bit-rotten file is caught). `payload.size()` must equal `key.length`.
std::string EncodeChunkHeader(const ChunkKey& key, std::string_view payload);

// Checks a header read from the file of `key` against that key, and returns the payload
// checksum it records. DataLoss naming the key when the header is damaged, from another
// format version, or describes another key.
absl::StatusOr<uint32_t> DecodeChunkHeader(const ChunkKey& key, std::string_view header);

// Reads the file at `path`, which must hold `key`, and returns the verified payload.
// Opens, reads and closes: no descriptor outlives the call. NotFound when the file is gone;
// DataLoss when it has the wrong size, a damaged header or a payload failing its checksum;
// other I/O errors as ErrnoToStatus.
absl::StatusOr<std::string> ReadChunkFile(const std::string& path, const ChunkKey& key);

}  // namespace slipstream::remote
