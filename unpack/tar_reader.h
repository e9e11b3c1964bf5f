// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "unpack/tar_entry.h"
#include "unpack/tar_header.h"

namespace slipstream::unpack {

// A push-style tar parser: feed it the (decompressed) tar stream in pieces of any size with
// Write(); it calls the handler for every member and streams member content through without
// buffering whole files (only 512-byte header blocks and extension records, which are capped
// at 1 MiB each, are held).
//
// Formats: POSIX ustar (with prefix), GNU (long names 'L', long link targets 'K', base-256
// numbers, GNU magic), and PAX: local 'x' headers (path, linkpath, size, uid, gid, uname,
// gname, mtime, atime with fractions, SCHILY.xattr.*) and global 'g' headers, whose records
// apply to every later member as POSIX says, except path, linkpath and size, which make no
// sense for many members and are ignored there. Other PAX keys are ignored (POSIX allows it).
// Unsupported members (GNU sparse 'S' or GNU.sparse.* records, multi-volume 'M', volume
// labels 'V', dumpdirs 'D', unknown types) are InvalidArgument naming the member.
//
// End of archive is two zero blocks; whatever follows is ignored (writers pad the record with
// zeros). A stream that stops cleanly at a header boundary without the marker is accepted,
// as Go's archive/tar (which produces and reads most layers) does.
//
// Owned by the caller; the handler must outlive it. Not thread-safe. Errors are sticky.
class TarReader {
 public:
  explicit TarReader(TarEntryHandler* handler) : handler_(handler) {}

  // Parses `data`, calling the handler. InvalidArgument for malformed or unsupported headers,
  // DataLoss for a header checksum mismatch, each naming the stream offset (and the member
  // when known); otherwise the handler's own status.
  absl::Status Write(std::string_view data);

  // Declares the end of the stream. DataLoss when it stopped inside a member, its padding, an
  // extension header or a header block.
  absl::Status Finish();

  // Bytes consumed so far.
  int64_t offset() const { return offset_; }
  // Members handed to the handler so far.
  int64_t entries() const { return entries_; }

 private:
  enum class State { kHeader, kExtension, kData, kPadding, kEnd };

  absl::Status WriteImpl(std::string_view data);
  absl::Status OnHeaderBlock();
  absl::Status OnExtensionDone();
  absl::Status StartEntry(const TarHeaderBlock& h, int64_t block_offset);
  absl::Status ApplyPax(const std::string& key, const std::string& value, bool global,
                        TarEntry& entry);
  absl::Status EndEntry();
  absl::Status Remember(absl::Status s);
  std::string Where() const;

  TarEntryHandler* const handler_;
  State state_ = State::kHeader;
  int64_t offset_ = 0;
  int64_t entries_ = 0;
  std::string block_;           // partial header block
  bool zero_block_seen_ = false;

  // Extension headers seen for the member that comes next.
  char ext_type_ = 0;
  int64_t ext_remaining_ = 0;
  std::string ext_body_;
  int64_t ext_first_offset_ = -1;
  std::optional<std::string> long_name_;
  std::optional<std::string> long_link_;
  std::vector<std::pair<std::string, std::string>> pax_local_;
  std::map<std::string, std::string> pax_global_;

  // The member whose content is streaming.
  std::string entry_name_;
  int64_t data_remaining_ = 0;
  int64_t padding_remaining_ = 0;
  absl::Status status_;
};

}  // namespace slipstream::unpack
