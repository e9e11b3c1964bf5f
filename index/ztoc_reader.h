// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "index/ztoc.h"
#include "remote/blob_reader.h"

namespace slipstream::index {

// What one read cost; summed by the caller for metrics and tests.
struct ReadStats {
  int64_t fetches = 0;                  // BlobReader::ReadAt calls
  int64_t compressed_bytes_fetched = 0;
  int64_t spans_decoded = 0;
};

struct ZtocReaderOptions {
  // Adjacent spans are fetched with one ReadAt, up to this many compressed bytes per fetch.
  int64_t max_fetch_bytes = 64 << 20;
};

// Random access to the files of one layer through its zTOC: a read of an uncompressed range
// fetches only the spans covering it from a remote::BlobReader, each run of adjacent spans in
// one ReadAt, verifies every span's digest and inflates it from its checkpoint. Holds the
// zTOC (shared, read-only) and a non-owning reference to the blob reader, which must outlive
// it. Immutable after construction: thread-safe when the BlobReader is (as BlobReaders are).
// Keeps no cache; put a chunk cache in front of the BlobReader for that.
class ZtocReader {
 public:
  ZtocReader(std::shared_ptr<const Ztoc> ztoc, remote::BlobReader& blob,
             ZtocReaderOptions options = {});

  const Ztoc& ztoc() const { return *ztoc_; }

  // The entry named `path` (leading "./" and "/" and trailing "/" ignored; the last entry of
  // that name wins, as when extracting). nullptr when there is none.
  const FileMetadata* Find(std::string_view path) const;

  // Up to `length` bytes of the layer's uncompressed tar stream at `offset` (fewer at its
  // end). InvalidArgument for negative arguments; errors of the BlobReader pass through;
  // DataLoss when a fetched span does not match its digest or does not inflate.
  absl::StatusOr<std::string> ReadUncompressed(int64_t offset, int64_t length,
                                               ReadStats* stats = nullptr) const;

  // Up to `length` bytes of a regular file's data at `offset` (empty at or past its end).
  // Hardlinks read their target's data. InvalidArgument for other entry types or negative
  // arguments; NotFound when `path` (or a hardlink's target) is not in the layer.
  absl::StatusOr<std::string> ReadFile(const FileMetadata& entry, int64_t offset, int64_t length,
                                       ReadStats* stats = nullptr) const;
  absl::StatusOr<std::string> ReadFile(std::string_view path, int64_t offset, int64_t length,
                                       ReadStats* stats = nullptr) const;

 private:
  absl::Status ReadSpanRun(int64_t first, int64_t last, int64_t begin, int64_t end,
                           std::string* out, ReadStats* stats) const;

  std::shared_ptr<const Ztoc> ztoc_;
  remote::BlobReader& blob_;
  ZtocReaderOptions options_;
  absl::flat_hash_map<std::string, size_t> by_path_;
};

// The lookup key for a tar entry name: "./a/b/", "/a/b" and "a/b" all give "a/b".
std::string CleanEntryPath(std::string_view name);

}  // namespace slipstream::index
