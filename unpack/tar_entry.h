// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace slipstream::unpack {

enum class TarEntryType {
  kRegular,
  kDirectory,
  kSymlink,
  kHardlink,
  kCharDevice,
  kBlockDevice,
  kFifo,
};

// "regular", "directory", ... for messages.
std::string_view TarEntryTypeName(TarEntryType type);

// A timestamp with nanoseconds (PAX times carry fractions; ustar ones whole seconds).
struct TarTime {
  int64_t sec = 0;
  int32_t nsec = 0;
  friend bool operator==(const TarTime&, const TarTime&) = default;
};

// One archive member after GNU long-name/long-link and PAX (local and global) records have
// been applied. A plain value type.
struct TarEntry {
  std::string name;      // as in the archive (may start with "./", end with "/")
  TarEntryType type = TarEntryType::kRegular;
  std::string linkname;  // symlink target or hardlink target (a name in the archive)
  int64_t size = 0;      // content bytes that follow (0 for all but regular files)
  uint32_t mode = 0;     // permission bits incl. setuid/setgid/sticky (mask 07777)
  int64_t uid = 0;
  int64_t gid = 0;
  std::string uname;
  std::string gname;
  TarTime mtime;
  std::optional<TarTime> atime;  // only when a PAX "atime" record gave one
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  // Extended attributes from PAX "SCHILY.xattr.<name>" records; values are binary.
  std::map<std::string, std::string> xattrs;
  // Offset in the tar stream of this member's first header block (its PAX/GNU extension
  // header, if any), for error messages.
  int64_t header_offset = 0;
};

// Receives the members of a tar stream from TarReader, in archive order: OnEntry, then the
// content in one or more OnData calls (none for an empty file), then OnEntryEnd. A non-OK
// status from any of them stops the reader, which returns it unchanged.
class TarEntryHandler {
 public:
  virtual ~TarEntryHandler() = default;
  virtual absl::Status OnEntry(const TarEntry& entry) = 0;
  virtual absl::Status OnData(std::string_view data) = 0;
  virtual absl::Status OnEntryEnd() = 0;
};

}  // namespace slipstream::unpack
