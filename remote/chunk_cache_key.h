// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/digest.h"

namespace slipstream::remote {

// Names one cached byte range of one blob: `length` bytes at `offset` of the blob `blob`.
// Blobs are immutable and content-addressed, so the key alone identifies the bytes: two
// readers that use different chunk sizes simply produce different keys, never wrong data.
// Plain value type; thread-compatible.
struct ChunkKey {
  Digest blob;
  int64_t offset = 0;
  int64_t length = 0;

  // "sha256:0123456789ab@4096+1024", for logs and error messages.
  std::string ToString() const { return absl::StrCat(blob.Short(), "@", offset, "+", length); }

  friend bool operator==(const ChunkKey& a, const ChunkKey& b) {
    return a.offset == b.offset && a.length == b.length && a.blob == b.blob;
  }
  friend bool operator!=(const ChunkKey& a, const ChunkKey& b) { return !(a == b); }
  template <typename H>
  friend H AbslHashValue(H h, const ChunkKey& k) {
    return H::combine(std::move(h), k.blob, k.offset, k.length);
  }
};

}  // namespace slipstream::remote
