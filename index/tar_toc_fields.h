// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream::index {

// Field-level helpers of the zTOC builder's tar parser (TarTocParser). Pure functions,
// exposed for tests. All return InvalidArgument naming the field on malformed input.

inline constexpr size_t kTarBlockSize = 512;

// A NUL-terminated header string field (the whole field when it has no NUL).
std::string TarString(std::string_view field);

// A numeric header field: octal text (leading/trailing spaces and NULs allowed, empty = 0)
// or GNU base-256 (first byte 0x80 positive / 0xff negative). InvalidArgument on bad digits
// or values that do not fit in int64.
absl::StatusOr<int64_t> TarNumber(std::string_view field, std::string_view name);

// True when the header's checksum field matches the unsigned or the signed byte sum (both
// exist in the wild), computed with the checksum field read as spaces.
bool TarChecksumOk(std::string_view header);

// Parses a PAX extended header body ("<len> <key>=<value>\n" records) into `records`
// (sorted by key; a repeated key keeps the last value).
absl::Status ParsePaxRecords(std::string_view body, std::map<std::string, std::string>* records);

// Parses a PAX time ("<seconds>[.<fraction>]", optionally negative) into seconds and
// nanoseconds (fraction truncated to 9 digits; nanos has the sign of the value).
absl::Status ParsePaxTime(std::string_view text, int64_t* seconds, int32_t* nanos);

// RFC 3339 in UTC with the fraction trimmed of trailing zeros and left out when zero, like
// Go's "2006-01-02T15:04:05.999999999Z07:00": "2023-01-02T03:04:05.5Z".
std::string FormatModTime(int64_t seconds, int32_t nanos);

}  // namespace slipstream::index
