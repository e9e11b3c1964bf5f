// SPDX-License-Identifier: Apache-2.0
#pragma once

// The byte-level pieces of the tar format (POSIX ustar/pax and GNU), as pure functions over
// blocks and strings. TarReader strings them together; tests use them directly.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "unpack/tar_entry.h"

namespace slipstream::unpack {

inline constexpr size_t kTarBlockSize = 512;

// The fields of one 512-byte header block, decoded but not yet interpreted.
struct TarHeaderBlock {
  std::string name;      // name field, or "prefix/name" for POSIX ustar with a prefix
  std::string linkname;
  char typeflag = '0';
  int64_t mode = 0;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t size = 0;
  int64_t mtime = 0;
  std::string uname;
  std::string gname;
  int64_t devmajor = 0;
  int64_t devminor = 0;
  bool gnu = false;    // GNU magic "ustar  \0" (its prefix area holds other things)
};

// True when all 512 bytes are zero (end-of-archive marker).
bool IsZeroBlock(std::string_view block);

// Parses a numeric header field: octal digits (leading spaces allowed, ended by space or NUL;
// all-NUL is 0) or GNU/star base-256 (first byte 0x80 or 0xff, big-endian two's complement).
// InvalidArgument when neither.
absl::StatusOr<int64_t> ParseTarNumber(std::string_view field);

// Decodes a header block (exactly 512 bytes). DataLoss when the checksum does not match
// (both the unsigned and the historic signed sums are accepted); InvalidArgument naming the
// field when a numeric field is malformed or a size is negative.
absl::StatusOr<TarHeaderBlock> ParseTarHeaderBlock(std::string_view block);

// Splits the body of a PAX extended header into (key, value) records "<len> key=value\n".
// Values may be binary. InvalidArgument when a record is malformed.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParsePaxRecords(
    std::string_view body);

// Parses a PAX time "<sec>[.<fraction>]" (possibly negative; fraction digits past 9 are
// truncated). InvalidArgument when malformed.
absl::StatusOr<TarTime> ParsePaxTime(std::string_view value);

// Parses a non-negative decimal PAX number (size, uid, gid). InvalidArgument when malformed.
absl::StatusOr<int64_t> ParsePaxDecimal(std::string_view value);

}  // namespace slipstream::unpack
