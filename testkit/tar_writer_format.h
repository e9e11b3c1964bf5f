// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

// Byte-level encoding of tar headers, used by TarWriter and exposed for its tests.
// Stateless functions; thread-safe.
namespace slipstream::testkit::tar_format {

inline constexpr size_t kBlockSize = 512;

// Field offsets and widths of a ustar header block.
inline constexpr size_t kNameOffset = 0, kNameSize = 100;
inline constexpr size_t kModeOffset = 100, kModeSize = 8;
inline constexpr size_t kUidOffset = 108, kUidSize = 8;
inline constexpr size_t kGidOffset = 116, kGidSize = 8;
inline constexpr size_t kSizeOffset = 124, kSizeSize = 12;
inline constexpr size_t kMtimeOffset = 136, kMtimeSize = 12;
inline constexpr size_t kChecksumOffset = 148, kChecksumSize = 8;
inline constexpr size_t kTypeOffset = 156;
inline constexpr size_t kLinkOffset = 157, kLinkSize = 100;
inline constexpr size_t kMagicOffset = 257;  // magic[6] + version[2]
inline constexpr size_t kUnameOffset = 265, kUnameSize = 32;
inline constexpr size_t kGnameOffset = 297, kGnameSize = 32;
inline constexpr size_t kDevMajorOffset = 329, kDevMajorSize = 8;
inline constexpr size_t kDevMinorOffset = 337, kDevMinorSize = 8;
inline constexpr size_t kPrefixOffset = 345, kPrefixSize = 155;

// Writes `value` as zero-padded octal digits followed by a NUL into the `width`-byte field at
// `field`. When it does not fit and `base256` is set, writes GNU base-256 (first byte 0x80,
// then big-endian) instead. Returns false (field left zeroed) when neither encoding fits or
// the value is negative.
bool PutNumber(char* field, size_t width, int64_t value, bool base256);

// Copies at most `width` bytes of `text` into the field (NUL-padded, not necessarily
// NUL-terminated when `text` fills it). Returns false when `text` was truncated.
bool PutString(char* field, size_t width, std::string_view text);

// Fills the checksum field: the sum of all header bytes with the field itself counted as
// spaces, written as six octal digits, NUL, space.
void PutChecksum(char* block);

// Splits a name of 101..256 bytes at a '/' so that the prefix fits 155 bytes and the rest
// (non-empty) fits 100. nullopt when no such '/' exists.
std::optional<std::pair<std::string_view, std::string_view>> SplitUstarName(
    std::string_view name);

// One PAX extended header record: "<length> <key>=<value>\n" where <length> counts the whole
// record including its own digits.
std::string PaxRecord(std::string_view key, std::string_view value);

// "<seconds>.<9 digits>" for a time given as Unix seconds and nanoseconds (0..999999999);
// the fraction is trimmed of trailing zeros, and dropped when zero.
std::string PaxTime(int64_t seconds, int32_t nanos);

}  // namespace slipstream::testkit::tar_format
