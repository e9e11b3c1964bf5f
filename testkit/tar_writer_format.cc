// SPDX-License-Identifier: Apache-2.0
#include "testkit/tar_writer_format.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"

namespace slipstream::testkit::tar_format {

bool PutNumber(char* field, size_t width, int64_t value, bool base256) {
  std::memset(field, 0, width);
  if (value < 0) return false;
  // width-1 octal digits leave room for the terminating NUL that every reader accepts.
  const size_t digits = width - 1;
  const int64_t octal_limit = digits >= 21 ? INT64_MAX : (int64_t{1} << (3 * digits)) - 1;
  if (value <= octal_limit) {
    uint64_t v = static_cast<uint64_t>(value);
    for (size_t i = digits; i-- > 0;) {
      field[i] = static_cast<char>('0' + (v & 7));
      v >>= 3;
    }
    return true;
  }
  if (!base256) return false;
  // Base-256: 0x80 marks the encoding; the remaining width-1 bytes hold the value, which
  // always fits for width >= 8 and a non-negative int64.
  uint64_t v = static_cast<uint64_t>(value);
  for (size_t i = width; i-- > 1;) {
    field[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  field[0] = static_cast<char>(0x80);
  return true;
}

bool PutString(char* field, size_t width, std::string_view text) {
  std::memset(field, 0, width);
  const size_t n = std::min(width, text.size());
  // An empty string_view may carry a null data(); memcpy must not see it even for n == 0.
  if (n > 0) std::memcpy(field, text.data(), n);
  return n == text.size();
}

void PutChecksum(char* block) {
  std::memset(block + kChecksumOffset, ' ', kChecksumSize);
  unsigned sum = 0;
  for (size_t i = 0; i < kBlockSize; ++i) sum += static_cast<unsigned char>(block[i]);
  // Six digits, NUL, space: the form GNU tar and the POSIX reference write.
  std::string digits = absl::StrFormat("%06o", sum);
  std::memcpy(block + kChecksumOffset, digits.data(), 6);
  block[kChecksumOffset + 6] = '\0';
  block[kChecksumOffset + 7] = ' ';
}

std::optional<std::pair<std::string_view, std::string_view>> SplitUstarName(
    std::string_view name) {
  if (name.size() <= kNameSize || name.size() > kPrefixSize + 1 + kNameSize) return std::nullopt;
  // The earliest '/' leaving a suffix of at most 100 bytes gives the longest suffix, which
  // is also what GNU tar picks.
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] != '/') continue;
    const size_t suffix = name.size() - i - 1;
    if (suffix > kNameSize) continue;
    if (i > kPrefixSize || suffix == 0) return std::nullopt;
    return std::make_pair(name.substr(0, i), name.substr(i + 1));
  }
  return std::nullopt;
}

std::string PaxRecord(std::string_view key, std::string_view value) {
  // The length prefix counts its own digits, so grow it until it is self-consistent.
  const size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t length = body + 1;
  while (absl::StrCat(length).size() + body != length) {
    length = absl::StrCat(length).size() + body;
  }
  return absl::StrCat(length, " ", AV(key), "=", AV(value), "\n");
}

std::string PaxTime(int64_t seconds, int32_t nanos) {
  if (nanos == 0) return absl::StrCat(seconds);
  // PAX writes a signed decimal: -1.5 s is seconds -2 plus 0.5 s of nanos.
  std::string sign;
  if (seconds < 0) {
    sign = "-";
    seconds = -(seconds + 1);
    nanos = 1000000000 - nanos;
  }
  std::string fraction = absl::StrFormat("%09d", nanos);
  while (!fraction.empty() && fraction.back() == '0') fraction.pop_back();
  return absl::StrCat(sign, seconds, ".", fraction);
}

}  // namespace slipstream::testkit::tar_format
