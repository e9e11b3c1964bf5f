// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "index/ztoc.h"

namespace slipstream::index {

// Incremental tar parser that turns an uncompressed tar stream, pushed in chunks of any size,
// into zTOC entries (FileMetadata) without keeping the stream: it holds one header block and
// at most one PAX header or GNU long name (each capped at 1 MiB). Understands ustar (with
// prefix), GNU (long names 'L'/'K', base-256 numbers) and PAX ('x' records, all of which go
// to `xattrs`). Global PAX headers ('g') are skipped and, like Go's archive/tar, not applied
// to later entries; entry types the zTOC cannot express (GNU sparse, volume labels, ...) are
// skipped with their data. Parsing stops at the first all-zero block.
// Owned by one ZtocBuilder; not thread-safe.
class TarTocParser {
 public:
  // Parses the next bytes of the stream. InvalidArgument (with the stream offset) on a bad
  // header checksum, bad numeric field, malformed PAX record, or oversized metadata entry.
  absl::Status Feed(std::string_view data);
  // Ends the stream. InvalidArgument when it stopped inside a header or an entry's data; a
  // stream that ends on a block boundary without the end-of-archive blocks is accepted.
  absl::Status Finish();
  // The entries parsed so far, in tar order; leaves the parser without them.
  std::vector<FileMetadata> TakeEntries() { return std::move(entries_); }
  // Bytes of the stream consumed so far.
  int64_t offset() const { return offset_; }

 private:
  enum class State { kHeader, kMeta, kSkip, kEnd };
  enum class MetaKind { kPax, kLongName, kLongLink };

  absl::Status OnHeader();
  absl::Status OnMetaDone();
  absl::Status AddEntry(std::string_view h, char typeflag, int64_t header_size);

  State state_ = State::kHeader;
  int64_t offset_ = 0;
  std::string block_;    // the header block being assembled
  MetaKind meta_kind_ = MetaKind::kPax;
  std::string meta_;     // body of a PAX header / long name being assembled
  int64_t meta_left_ = 0;
  int64_t meta_pad_ = 0;
  int64_t skip_left_ = 0;  // data and padding to skip

  // Metadata headers waiting for the entry they describe.
  std::optional<std::map<std::string, std::string>> pax_;
  std::optional<std::string> long_name_;
  std::optional<std::string> long_link_;

  std::vector<FileMetadata> entries_;
};

}  // namespace slipstream::index
