// SPDX-License-Identifier: Apache-2.0
#include "index/tar_toc_fields.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/strings.h"

namespace slipstream::index {
namespace {

absl::Status BadField(std::string_view name, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("tar header field ", AV(name), ": ", AV(why)));
}

// Parses decimal digits into a non-negative int64; false on anything else or overflow.
bool ParseDecimal(std::string_view s, int64_t* out) {
  if (s.empty()) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    if (v > (std::numeric_limits<int64_t>::max() - (c - '0')) / 10) return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

}  // namespace

std::string TarString(std::string_view field) {
  size_t nul = field.find('\0');
  return std::string(field.substr(0, nul));
}

absl::StatusOr<int64_t> TarNumber(std::string_view field, std::string_view name) {
  if (!field.empty() && (static_cast<uint8_t>(field[0]) & 0x80)) {
    // GNU base-256: big-endian two's complement with the marker bit in the first byte.
    bool negative = static_cast<uint8_t>(field[0]) == 0xff;
    if (!negative && static_cast<uint8_t>(field[0]) != 0x80) {
      return BadField(name, "bad base-256 marker");
    }
    uint64_t v = 0;
    for (size_t i = 1; i < field.size(); ++i) {
      uint8_t byte = static_cast<uint8_t>(field[i]);
      if (negative) byte = static_cast<uint8_t>(~byte);
      if (v >> 55) return BadField(name, "base-256 value too large");
      v = (v << 8) | byte;
    }
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return BadField(name, "base-256 value too large");
    }
    return negative ? -static_cast<int64_t>(v) - 1 : static_cast<int64_t>(v);
  }
  size_t begin = 0, end = field.size();
  while (begin < end && (field[begin] == ' ' || field[begin] == '\0')) ++begin;
  while (end > begin && (field[end - 1] == ' ' || field[end - 1] == '\0')) --end;
  int64_t v = 0;
  for (size_t i = begin; i < end; ++i) {
    char c = field[i];
    if (c < '0' || c > '7') return BadField(name, "not octal");
    if (v > (std::numeric_limits<int64_t>::max() >> 3)) return BadField(name, "too large");
    v = (v << 3) | (c - '0');
  }
  return v;
}

bool TarChecksumOk(std::string_view header) {
  if (header.size() != kTarBlockSize) return false;
  absl::StatusOr<int64_t> stored = TarNumber(header.substr(148, 8), "chksum");
  if (!stored.ok()) return false;
  int64_t unsigned_sum = 0, signed_sum = 0;
  for (size_t i = 0; i < header.size(); ++i) {
    bool in_field = i >= 148 && i < 156;
    unsigned_sum += in_field ? ' ' : static_cast<uint8_t>(header[i]);
    signed_sum += in_field ? ' ' : static_cast<int8_t>(header[i]);
  }
  return *stored == unsigned_sum || *stored == signed_sum;
}

absl::Status ParsePaxRecords(std::string_view body, std::map<std::string, std::string>* records) {
  while (!body.empty()) {
    // A trailing run of NULs pads some writers' bodies; it carries no records.
    if (body.find_first_not_of('\0') == std::string_view::npos) break;
    size_t space = body.find(' ');
    int64_t len = 0;
    if (space == std::string_view::npos || space > 20 || !ParseDecimal(body.substr(0, space), &len) ||
        len <= static_cast<int64_t>(space) + 1 || len > static_cast<int64_t>(body.size())) {
      return absl::InvalidArgumentError("tar PAX header: bad record length");
    }
    std::string_view record = body.substr(space + 1, len - space - 1);
    body.remove_prefix(len);
    if (record.empty() || record.back() != '\n') {
      return absl::InvalidArgumentError("tar PAX header: record does not end in a newline");
    }
    record.remove_suffix(1);
    size_t eq = record.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError("tar PAX header: record without key");
    }
    std::string_view key = record.substr(0, eq);
    if (key.find('\0') != std::string_view::npos) {
      return absl::InvalidArgumentError("tar PAX header: key contains NUL");
    }
    (*records)[std::string(key)] = std::string(record.substr(eq + 1));
  }
  return absl::OkStatus();
}

absl::Status ParsePaxTime(std::string_view text, int64_t* seconds, int32_t* nanos) {
  bool negative = !text.empty() && text[0] == '-';
  if (negative) text.remove_prefix(1);
  size_t dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);
  int64_t s = 0;
  if (!ParseDecimal(whole, &s)) {
    return absl::InvalidArgumentError(absl::StrCat("tar PAX time \"", AV(text), "\""));
  }
  int64_t n = 0;
  for (size_t i = 0; i < 9; ++i) {
    char c = i < frac.size() ? frac[i] : '0';
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(absl::StrCat("tar PAX time \"", AV(text), "\""));
    }
    n = n * 10 + (c - '0');
  }
  for (size_t i = 9; i < frac.size(); ++i) {
    if (frac[i] < '0' || frac[i] > '9') {
      return absl::InvalidArgumentError(absl::StrCat("tar PAX time \"", AV(text), "\""));
    }
  }
  *seconds = negative ? -s : s;
  *nanos = static_cast<int32_t>(negative ? -n : n);
  return absl::OkStatus();
}

std::string FormatModTime(int64_t seconds, int32_t nanos) {
  absl::Time t = absl::FromUnixSeconds(seconds) + absl::Nanoseconds(nanos);
  // %E*S prints the seconds with the shortest exact fraction (none when it is zero).
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

}  // namespace slipstream::index
