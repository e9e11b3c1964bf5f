// SPDX-License-Identifier: Apache-2.0
#include "index/tar_toc_parser.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "index/tar_toc_fields.h"

namespace slipstream::index {
namespace {

// Same cap as Go's archive/tar puts on PAX headers and GNU long names.
constexpr int64_t kMaxMetaSize = 1 << 20;

int64_t Padding(int64_t size) {
  return (static_cast<int64_t>(kTarBlockSize) - size % kTarBlockSize) % kTarBlockSize;
}

bool AllZero(std::string_view s) { return s.find_first_not_of('\0') == std::string_view::npos; }

// Maps a typeflag to the zTOC's type name; empty for types the zTOC cannot express.
std::string_view TypeName(char typeflag, std::string_view name) {
  switch (typeflag) {
    case '0':
    case '7':
      return kTypeReg;
    case '\0':
      // Pre-POSIX archives mark directories only by a trailing slash.
      return !name.empty() && name.back() == '/' ? kTypeDir : kTypeReg;
    case '1':
      return kTypeHardlink;
    case '2':
      return kTypeSymlink;
    case '3':
      return kTypeChar;
    case '4':
      return kTypeBlock;
    case '5':
      return kTypeDir;
    case '6':
      return kTypeFifo;
    default:
      return {};
  }
}

}  // namespace

absl::Status TarTocParser::Feed(std::string_view data) {
  while (!data.empty()) {
    switch (state_) {
      case State::kEnd:
        // Whatever follows the end-of-archive marker (usually zero padding) is not tar.
        offset_ += static_cast<int64_t>(data.size());
        return absl::OkStatus();
      case State::kHeader: {
        size_t take = std::min(kTarBlockSize - block_.size(), data.size());
        block_.append(data.substr(0, take));
        data.remove_prefix(take);
        offset_ += static_cast<int64_t>(take);
        if (block_.size() == kTarBlockSize) {
          SS_RETURN_IF_ERROR(OnHeader());
          block_.clear();
        }
        break;
      }
      case State::kMeta: {
        size_t take = static_cast<size_t>(std::min<int64_t>(meta_left_, data.size()));
        meta_.append(data.substr(0, take));
        data.remove_prefix(take);
        offset_ += static_cast<int64_t>(take);
        meta_left_ -= static_cast<int64_t>(take);
        if (meta_left_ == 0) SS_RETURN_IF_ERROR(OnMetaDone());
        break;
      }
      case State::kSkip: {
        size_t take = static_cast<size_t>(std::min<int64_t>(skip_left_, data.size()));
        data.remove_prefix(take);
        offset_ += static_cast<int64_t>(take);
        skip_left_ -= static_cast<int64_t>(take);
        if (skip_left_ == 0) state_ = State::kHeader;
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status TarTocParser::Finish() {
  if (state_ == State::kEnd || (state_ == State::kHeader && block_.empty())) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("tar stream truncated at offset ", offset_, " inside an entry"));
}

absl::Status TarTocParser::OnHeader() {
  std::string_view h = block_;
  int64_t header_offset = offset_ - static_cast<int64_t>(kTarBlockSize);
  if (AllZero(h)) {
    state_ = State::kEnd;
    return absl::OkStatus();
  }
  if (!TarChecksumOk(h)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tar header checksum mismatch at offset ", header_offset));
  }
  absl::StatusOr<int64_t> size = TarNumber(h.substr(124, 12), "size");
  if (!size.ok()) return Annotate(size.status(), absl::StrCat("tar header at ", header_offset));
  if (*size < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("tar header at ", header_offset, ": negative size"));
  }
  char typeflag = h[156];
  switch (typeflag) {
    case 'x':
    case 'L':
    case 'K':
      if (*size > kMaxMetaSize) {
        return absl::InvalidArgumentError(absl::StrCat("tar header at ", header_offset, ": ",
                                                       *size, "-byte metadata entry"));
      }
      meta_kind_ = typeflag == 'x' ? MetaKind::kPax
                   : typeflag == 'L' ? MetaKind::kLongName
                                     : MetaKind::kLongLink;
      meta_.clear();
      meta_left_ = *size;
      meta_pad_ = Padding(*size);
      state_ = State::kMeta;
      if (meta_left_ == 0) return OnMetaDone();
      return absl::OkStatus();
    case 'g':
      skip_left_ = *size + Padding(*size);
      state_ = skip_left_ > 0 ? State::kSkip : State::kHeader;
      return absl::OkStatus();
    default:
      return AddEntry(h, typeflag, *size);
  }
}

absl::Status TarTocParser::OnMetaDone() {
  switch (meta_kind_) {
    case MetaKind::kPax: {
      std::map<std::string, std::string> records;
      SS_RETURN_IF_ERROR(Annotate(ParsePaxRecords(meta_, &records),
                                  absl::StrCat("tar stream offset ", offset_)));
      pax_ = std::move(records);
      break;
    }
    case MetaKind::kLongName:
      long_name_ = TarString(meta_);
      break;
    case MetaKind::kLongLink:
      long_link_ = TarString(meta_);
      break;
  }
  meta_.clear();
  skip_left_ = meta_pad_;
  state_ = skip_left_ > 0 ? State::kSkip : State::kHeader;
  return absl::OkStatus();
}

absl::Status TarTocParser::AddEntry(std::string_view h, char typeflag, int64_t header_size) {
  int64_t data_offset = offset_;
  std::string at = absl::StrCat("tar header at ", data_offset - kTarBlockSize);
  bool ustar = h.substr(257, 6) == std::string_view("ustar\0", 6);
  bool gnu = h.substr(257, 8) == std::string_view("ustar  \0", 8);

  FileMetadata e;
  e.name = TarString(h.substr(0, 100));
  if (ustar) {
    std::string prefix = TarString(h.substr(345, 155));
    if (!prefix.empty()) e.name = absl::StrCat(prefix, "/", e.name);
  }
  e.linkname = TarString(h.substr(157, 100));
  e.uname = TarString(h.substr(265, 32));
  e.gname = TarString(h.substr(297, 32));
  auto number = [&](size_t pos, size_t len, std::string_view name) {
    absl::StatusOr<int64_t> v = TarNumber(h.substr(pos, len), name);
    return v.ok() ? v : absl::StatusOr<int64_t>(Annotate(v.status(), at));
  };
  SS_ASSIGN_OR_RETURN(e.mode, number(100, 8, "mode"));
  SS_ASSIGN_OR_RETURN(int64_t uid, number(108, 8, "uid"));
  SS_ASSIGN_OR_RETURN(int64_t gid, number(116, 8, "gid"));
  SS_ASSIGN_OR_RETURN(int64_t mtime, number(136, 12, "mtime"));
  int32_t mtime_nanos = 0;
  int64_t size = header_size;
  if (ustar || gnu) {
    SS_ASSIGN_OR_RETURN(e.devmajor, number(329, 8, "devmajor"));
    SS_ASSIGN_OR_RETURN(e.devminor, number(337, 8, "devminor"));
  }

  // PAX records override the header fields they name; all of them are kept as xattrs.
  if (pax_.has_value()) {
    for (const auto& [key, value] : *pax_) {
      if (key == "path") {
        e.name = value;
      } else if (key == "linkpath") {
        e.linkname = value;
      } else if (key == "uname") {
        e.uname = value;
      } else if (key == "gname") {
        e.gname = value;
      } else if (key == "size" || key == "uid" || key == "gid") {
        int64_t v = 0;
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos ||
            value.size() > 18 || (v = std::stoll(value)) < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(at, ": PAX ", key, " \"", value, "\""));
        }
        (key == "size" ? size : key == "uid" ? uid : gid) = v;
      } else if (key == "mtime") {
        SS_RETURN_IF_ERROR(Annotate(ParsePaxTime(value, &mtime, &mtime_nanos), at));
      }
      e.xattrs.push_back({key, value});
    }
    pax_.reset();
  }
  // Like Go's archive/tar, a GNU long name or link wins over everything else.
  if (long_name_.has_value()) e.name = *std::move(long_name_);
  if (long_link_.has_value()) e.linkname = *std::move(long_link_);
  long_name_.reset();
  long_link_.reset();

  e.uid = static_cast<uint32_t>(uid);
  e.gid = static_cast<uint32_t>(gid);
  e.mod_time = FormatModTime(mtime, mtime_nanos);
  std::string_view type = TypeName(typeflag, e.name);
  // Links, devices, directories and fifos have no data whatever their size field says.
  bool has_data = type.empty() || type == kTypeReg;
  int64_t data_size = has_data ? size : 0;
  skip_left_ = data_size + Padding(data_size);
  state_ = skip_left_ > 0 ? State::kSkip : State::kHeader;
  if (type.empty()) return absl::OkStatus();
  if (e.name.empty() || e.name.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(at, ": empty or invalid name"));
  }
  e.type = std::string(type);
  e.uncompressed_offset = data_offset;
  e.uncompressed_size = data_size;
  entries_.push_back(std::move(e));
  return absl::OkStatus();
}

}  // namespace slipstream::index
