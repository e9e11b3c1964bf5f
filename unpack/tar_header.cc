// SPDX-License-Identifier: Apache-2.0
#include "unpack/tar_header.h"

#include <algorithm>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::unpack {
namespace {

// Field offsets and lengths of the ustar header (POSIX.1-2001 "ustar Interchange Format").
struct Field {
  size_t offset;
  size_t length;
};
constexpr Field kName{0, 100};
constexpr Field kMode{100, 8};
constexpr Field kUid{108, 8};
constexpr Field kGid{116, 8};
constexpr Field kSize{124, 12};
constexpr Field kMtime{136, 12};
constexpr Field kChksum{148, 8};
constexpr size_t kTypeflag = 156;
constexpr Field kLinkname{157, 100};
constexpr Field kMagic{257, 6};
constexpr Field kVersion{263, 2};
constexpr Field kUname{265, 32};
constexpr Field kGname{297, 32};
constexpr Field kDevmajor{329, 8};
constexpr Field kDevminor{337, 8};
constexpr Field kPrefix{345, 155};

std::string_view Slice(std::string_view block, Field f) { return block.substr(f.offset, f.length); }

// A NUL-terminated string field (which may fill the field without a NUL).
std::string CString(std::string_view block, Field f) {
  std::string_view s = Slice(block, f);
  return std::string(s.substr(0, s.find('\0')));
}

absl::StatusOr<int64_t> Number(std::string_view block, Field f, std::string_view what) {
  absl::StatusOr<int64_t> v = ParseTarNumber(Slice(block, f));
  if (!v.ok()) return Annotate(v.status(), absl::StrCat("header field ", AV(what)));
  return v;
}

}  // namespace

std::string_view TarEntryTypeName(TarEntryType type) {
  switch (type) {
    case TarEntryType::kRegular:
      return "regular file";
    case TarEntryType::kDirectory:
      return "directory";
    case TarEntryType::kSymlink:
      return "symlink";
    case TarEntryType::kHardlink:
      return "hardlink";
    case TarEntryType::kCharDevice:
      return "character device";
    case TarEntryType::kBlockDevice:
      return "block device";
    case TarEntryType::kFifo:
      return "fifo";
  }
  return "unknown";
}

bool IsZeroBlock(std::string_view block) {
  return std::all_of(block.begin(), block.end(), [](char c) { return c == '\0'; });
}

absl::StatusOr<int64_t> ParseTarNumber(std::string_view field) {
  if (!field.empty() && (static_cast<uint8_t>(field[0]) & 0x80) != 0) {
    // Base-256: the marker bit is dropped and bit 6 of the first byte is the sign.
    uint8_t first = static_cast<uint8_t>(field[0]) & 0x7f;
    if ((first & 0x40) != 0) first |= 0x80;
    int64_t v = static_cast<int8_t>(first);
    for (size_t i = 1; i < field.size(); ++i) {
      if (v > (std::numeric_limits<int64_t>::max() >> 8) ||
          v < (std::numeric_limits<int64_t>::min() >> 8)) {
        return absl::InvalidArgumentError("base-256 number overflows 64 bits");
      }
      v = v * 256 + static_cast<uint8_t>(field[i]);
    }
    return v;
  }
  size_t i = 0;
  while (i < field.size() && (field[i] == ' ' || field[i] == '\0')) {
    // An all-NUL/space field is 0; a NUL before the digits ends an empty field.
    if (field[i] == '\0') {
      bool rest_empty = std::all_of(field.begin() + i, field.end(),
                                    [](char c) { return c == '\0' || c == ' '; });
      if (rest_empty) return 0;
    }
    ++i;
  }
  int64_t v = 0;
  size_t digits = 0;
  for (; i < field.size() && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (v > (std::numeric_limits<int64_t>::max() >> 3)) {
      return absl::InvalidArgumentError("octal number overflows 64 bits");
    }
    v = v * 8 + (field[i] - '0');
  }
  for (; i < field.size(); ++i) {
    if (field[i] != ' ' && field[i] != '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("bad octal number \"", absl::CHexEscape(AV(field)), "\""));
    }
  }
  if (digits == 0) return 0;
  return v;
}

absl::StatusOr<TarHeaderBlock> ParseTarHeaderBlock(std::string_view block) {
  if (block.size() != kTarBlockSize) return absl::InternalError("tar header block is not 512 bytes");
  SS_ASSIGN_OR_RETURN(int64_t stored, Number(block, kChksum, "chksum"));
  // The checksum treats its own field as eight spaces. Some old tars summed signed chars.
  int64_t unsigned_sum = 0;
  int64_t signed_sum = 0;
  for (size_t i = 0; i < kTarBlockSize; ++i) {
    const bool in_chksum = i >= kChksum.offset && i < kChksum.offset + kChksum.length;
    const char c = in_chksum ? ' ' : block[i];
    unsigned_sum += static_cast<uint8_t>(c);
    signed_sum += static_cast<int8_t>(c);
  }
  if (stored != unsigned_sum && stored != signed_sum) {
    return absl::DataLossError(absl::StrCat("header checksum mismatch (stored ", stored,
                                            ", computed ", unsigned_sum, ")"));
  }
  TarHeaderBlock h;
  const std::string_view magic = Slice(block, kMagic);
  const std::string_view version = Slice(block, kVersion);
  const bool posix = magic == std::string_view("ustar\0", 6);
  h.gnu = magic == std::string_view("ustar ", 6) && version == std::string_view(" \0", 2);
  h.name = CString(block, kName);
  if (posix) {
    std::string prefix = CString(block, kPrefix);
    if (!prefix.empty()) h.name = absl::StrCat(prefix, "/", h.name);
  }
  h.linkname = CString(block, kLinkname);
  h.typeflag = block[kTypeflag];
  SS_ASSIGN_OR_RETURN(h.mode, Number(block, kMode, "mode"));
  SS_ASSIGN_OR_RETURN(h.uid, Number(block, kUid, "uid"));
  SS_ASSIGN_OR_RETURN(h.gid, Number(block, kGid, "gid"));
  SS_ASSIGN_OR_RETURN(h.size, Number(block, kSize, "size"));
  SS_ASSIGN_OR_RETURN(h.mtime, Number(block, kMtime, "mtime"));
  if (posix || h.gnu) {
    h.uname = CString(block, kUname);
    h.gname = CString(block, kGname);
    SS_ASSIGN_OR_RETURN(h.devmajor, Number(block, kDevmajor, "devmajor"));
    SS_ASSIGN_OR_RETURN(h.devminor, Number(block, kDevminor, "devminor"));
  }
  if (h.size < 0) return absl::InvalidArgumentError(absl::StrCat("negative size ", h.size));
  if (h.uid < 0 || h.gid < 0) return absl::InvalidArgumentError("negative uid or gid");
  if (h.devmajor < 0 || h.devminor < 0 || h.devmajor > 0xffffffffLL || h.devminor > 0xffffffffLL) {
    return absl::InvalidArgumentError("device number out of range");
  }
  return h;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParsePaxRecords(
    std::string_view body) {
  std::vector<std::pair<std::string, std::string>> records;
  size_t pos = 0;
  while (pos < body.size()) {
    // GNU tar pads nothing, but tolerate trailing NULs some writers leave.
    if (body[pos] == '\0' &&
        std::all_of(body.begin() + pos, body.end(), [](char c) { return c == '\0'; })) {
      break;
    }
    const size_t space = body.find(' ', pos);
    if (space == std::string_view::npos || space == pos || space - pos > 20) {
      return absl::InvalidArgumentError(absl::StrCat("malformed PAX record at byte ", pos));
    }
    uint64_t len = 0;
    for (size_t i = pos; i < space; ++i) {
      if (body[i] < '0' || body[i] > '9') {
        return absl::InvalidArgumentError(absl::StrCat("malformed PAX record length at byte ", pos));
      }
      len = len * 10 + (body[i] - '0');
    }
    if (len < space - pos + 3 || len > body.size() - pos || body[pos + len - 1] != '\n') {
      return absl::InvalidArgumentError(absl::StrCat("malformed PAX record at byte ", pos));
    }
    const std::string_view kv = body.substr(space + 1, pos + len - 1 - (space + 1));
    const size_t eq = kv.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("PAX record without key at byte ", pos));
    }
    records.emplace_back(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    pos += len;
  }
  return records;
}

absl::StatusOr<int64_t> ParsePaxDecimal(std::string_view value) {
  if (value.empty() || value.size() > 18) {
    return absl::InvalidArgumentError(absl::StrCat("bad PAX number \"", absl::CHexEscape(AV(value)), "\""));
  }
  int64_t v = 0;
  for (char c : value) {
    if (c < '0' || c > '9') {
      return absl::InvalidArgumentError(absl::StrCat("bad PAX number \"", absl::CHexEscape(AV(value)), "\""));
    }
    v = v * 10 + (c - '0');
  }
  return v;
}

absl::StatusOr<TarTime> ParsePaxTime(std::string_view value) {
  const bool negative = !value.empty() && value[0] == '-';
  std::string_view rest = negative ? value.substr(1) : value;
  const size_t dot = rest.find('.');
  std::string_view whole = rest.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("bad PAX time \"", absl::CHexEscape(AV(value)), "\""));
  };
  if (whole.empty() && frac.empty()) return bad();
  int64_t sec = 0;
  if (!whole.empty()) {
    absl::StatusOr<int64_t> s = ParsePaxDecimal(whole);
    if (!s.ok()) return bad();
    sec = *s;
  }
  int64_t nsec = 0;
  int digits = 0;
  for (char c : frac) {
    if (c < '0' || c > '9') return bad();
    if (digits < 9) {
      nsec = nsec * 10 + (c - '0');
      ++digits;
    }
  }
  for (; digits < 9; ++digits) nsec *= 10;
  TarTime t;
  if (!negative) {
    t.sec = sec;
    t.nsec = static_cast<int32_t>(nsec);
  } else if (nsec == 0) {
    t.sec = -sec;
  } else {
    // -1.25 s is 2 s before the epoch plus 0.75 s.
    t.sec = -sec - 1;
    t.nsec = static_cast<int32_t>(1000000000 - nsec);
  }
  return t;
}

}  // namespace slipstream::unpack
