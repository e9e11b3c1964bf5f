// SPDX-License-Identifier: Apache-2.0
#include "unpack/tar_reader.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::unpack {
namespace {

// Extension payloads (long names, PAX records) are held in memory: bound them.
constexpr int64_t kMaxExtensionSize = 1 << 20;

int64_t Padding(int64_t size) {
  const int64_t rem = size % static_cast<int64_t>(kTarBlockSize);
  return rem == 0 ? 0 : static_cast<int64_t>(kTarBlockSize) - rem;
}

std::string Quote(std::string_view name) {
  return absl::StrCat("\"", absl::CHexEscape(AV(name.substr(0, 512))), "\"");
}

std::string TypeflagText(char t) {
  return t >= 0x20 && t < 0x7f ? std::string(1, t) : absl::StrCat("\\x", absl::Hex(static_cast<uint8_t>(t)));
}

}  // namespace

absl::Status TarReader::Remember(absl::Status s) {
  if (!s.ok() && status_.ok()) status_ = s;
  return s;
}

absl::Status TarReader::Write(std::string_view data) {
  SS_RETURN_IF_ERROR(status_);
  return Remember(WriteImpl(data));
}

absl::Status TarReader::WriteImpl(std::string_view data) {
  while (!data.empty()) {
    switch (state_) {
      case State::kEnd:
        // Record padding after the end marker: hashed by the caller, otherwise ignored.
        offset_ += static_cast<int64_t>(data.size());
        return absl::OkStatus();
      case State::kHeader: {
        const size_t take = std::min(kTarBlockSize - block_.size(), data.size());
        block_.append(data.data(), take);
        data.remove_prefix(take);
        offset_ += static_cast<int64_t>(take);
        if (block_.size() == kTarBlockSize) {
          SS_RETURN_IF_ERROR(OnHeaderBlock());
          block_.clear();
        }
        break;
      }
      case State::kExtension: {
        const size_t take = static_cast<size_t>(std::min<int64_t>(ext_remaining_, data.size()));
        ext_body_.append(data.data(), take);
        data.remove_prefix(take);
        offset_ += static_cast<int64_t>(take);
        ext_remaining_ -= static_cast<int64_t>(take);
        if (ext_remaining_ == 0) SS_RETURN_IF_ERROR(OnExtensionDone());
        break;
      }
      case State::kData: {
        const size_t take = static_cast<size_t>(std::min<int64_t>(data_remaining_, data.size()));
        SS_RETURN_IF_ERROR(handler_->OnData(data.substr(0, take)));
        data.remove_prefix(take);
        offset_ += static_cast<int64_t>(take);
        data_remaining_ -= static_cast<int64_t>(take);
        if (data_remaining_ == 0) SS_RETURN_IF_ERROR(EndEntry());
        break;
      }
      case State::kPadding: {
        const size_t take = static_cast<size_t>(std::min<int64_t>(padding_remaining_, data.size()));
        data.remove_prefix(take);
        offset_ += static_cast<int64_t>(take);
        padding_remaining_ -= static_cast<int64_t>(take);
        if (padding_remaining_ == 0) state_ = State::kHeader;
        break;
      }
    }
  }
  return absl::OkStatus();
}

std::string TarReader::Where() const {
  const int64_t block_offset = offset_ - static_cast<int64_t>(kTarBlockSize);
  return absl::StrCat("tar header at offset ", block_offset);
}

absl::Status TarReader::OnHeaderBlock() {
  const int64_t block_offset = offset_ - static_cast<int64_t>(kTarBlockSize);
  if (IsZeroBlock(block_)) {
    if (zero_block_seen_) {
      if (ext_first_offset_ >= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("tar extension header at offset ", ext_first_offset_,
                         " is followed by the end of the archive"));
      }
      state_ = State::kEnd;
    }
    zero_block_seen_ = true;
    return absl::OkStatus();
  }
  if (zero_block_seen_) {
    return absl::InvalidArgumentError(
        absl::StrCat(Where(), ": a single zero block is followed by more headers"));
  }
  absl::StatusOr<TarHeaderBlock> h = ParseTarHeaderBlock(block_);
  if (!h.ok()) return Annotate(h.status(), Where());
  switch (h->typeflag) {
    case 'L':
    case 'K':
    case 'x':
    case 'g':
      if (h->size > kMaxExtensionSize) {
        return absl::InvalidArgumentError(absl::StrCat(Where(), ": extension header '",
                                                       TypeflagText(h->typeflag), "' of ",
                                                       h->size, " bytes is too large"));
      }
      if (ext_first_offset_ < 0 && h->typeflag != 'g') ext_first_offset_ = block_offset;
      ext_type_ = h->typeflag;
      ext_remaining_ = h->size;
      padding_remaining_ = Padding(h->size);
      ext_body_.clear();
      state_ = State::kExtension;
      if (ext_remaining_ == 0) return OnExtensionDone();
      return absl::OkStatus();
    default:
      return StartEntry(*h, block_offset);
  }
}

absl::Status TarReader::OnExtensionDone() {
  const int64_t at = offset_ - static_cast<int64_t>(ext_body_.size()) -
                     static_cast<int64_t>(kTarBlockSize);
  switch (ext_type_) {
    case 'L':
    case 'K': {
      std::string value = ext_body_.substr(0, ext_body_.find('\0'));
      (ext_type_ == 'L' ? long_name_ : long_link_) = std::move(value);
      break;
    }
    case 'x':
    case 'g': {
      absl::StatusOr<std::vector<std::pair<std::string, std::string>>> records =
          ParsePaxRecords(ext_body_);
      if (!records.ok()) {
        return Annotate(records.status(), absl::StrCat("PAX header at offset ", at));
      }
      if (ext_type_ == 'x') {
        pax_local_.insert(pax_local_.end(), records->begin(), records->end());
        break;
      }
      for (auto& [key, value] : *records) {
        if (absl::StartsWith(key, "GNU.sparse.")) {
          return absl::InvalidArgumentError(absl::StrCat(
              "PAX global header at offset ", at, ": GNU sparse records are not supported"));
        }
        // An empty value removes a global record (POSIX).
        if (value.empty()) {
          pax_global_.erase(key);
        } else {
          pax_global_[key] = value;
        }
      }
      break;
    }
  }
  ext_body_.clear();
  state_ = padding_remaining_ > 0 ? State::kPadding : State::kHeader;
  return absl::OkStatus();
}

absl::Status TarReader::ApplyPax(const std::string& key, const std::string& value, bool global,
                                 TarEntry& entry) {
  auto annotate = [&](absl::Status s) {
    return Annotate(s, absl::StrCat("PAX record ", AV(key)));
  };
  if (key == "path" || key == "linkpath" || key == "size") {
    if (global) return absl::OkStatus();
    if (key == "path") {
      entry.name = value;
    } else if (key == "linkpath") {
      entry.linkname = value;
    } else {
      absl::StatusOr<int64_t> v = ParsePaxDecimal(value);
      if (!v.ok()) return annotate(v.status());
      entry.size = *v;
    }
  } else if (key == "uid" || key == "gid") {
    absl::StatusOr<int64_t> v = ParsePaxDecimal(value);
    if (!v.ok()) return annotate(v.status());
    (key == "uid" ? entry.uid : entry.gid) = *v;
  } else if (key == "uname") {
    entry.uname = value;
  } else if (key == "gname") {
    entry.gname = value;
  } else if (key == "mtime" || key == "atime") {
    absl::StatusOr<TarTime> t = ParsePaxTime(value);
    if (!t.ok()) return annotate(t.status());
    if (key == "mtime") {
      entry.mtime = *t;
    } else {
      entry.atime = *t;
    }
  } else if (absl::StartsWith(key, "SCHILY.xattr.")) {
    const std::string name = key.substr(std::string_view("SCHILY.xattr.").size());
    if (name.empty()) return annotate(absl::InvalidArgumentError("empty xattr name"));
    entry.xattrs[name] = value;
  } else if (absl::StartsWith(key, "GNU.sparse.")) {
    return absl::InvalidArgumentError("GNU sparse files are not supported");
  }
  // Everything else (ctime, comment, charset, SCHILY.dev/ino/nlink, LIBARCHIVE.*) carries
  // nothing a layer needs.
  return absl::OkStatus();
}

absl::Status TarReader::StartEntry(const TarHeaderBlock& h, int64_t block_offset) {
  TarEntry entry;
  entry.name = long_name_.has_value() ? *long_name_ : h.name;
  entry.linkname = long_link_.has_value() ? *long_link_ : h.linkname;
  entry.header_offset = ext_first_offset_ >= 0 ? ext_first_offset_ : block_offset;
  entry.mode = static_cast<uint32_t>(h.mode & 07777);
  entry.uid = h.uid;
  entry.gid = h.gid;
  entry.uname = h.uname;
  entry.gname = h.gname;
  entry.mtime = TarTime{h.mtime, 0};
  entry.devmajor = static_cast<uint32_t>(h.devmajor);
  entry.devminor = static_cast<uint32_t>(h.devminor);
  entry.size = h.size;
  const std::string where =
      absl::StrCat("tar entry ", Quote(entry.name), " at offset ", entry.header_offset);
  bool has_data = false;
  switch (h.typeflag) {
    case '0':
    case '7':  // contiguous file: a regular file everywhere that matters
      entry.type = TarEntryType::kRegular;
      has_data = true;
      break;
    case '\0':
      // Pre-POSIX archives marked directories only by a trailing slash.
      entry.type = absl::EndsWith(entry.name, "/") ? TarEntryType::kDirectory
                                                   : TarEntryType::kRegular;
      has_data = entry.type == TarEntryType::kRegular;
      break;
    case '1':
      entry.type = TarEntryType::kHardlink;
      break;
    case '2':
      entry.type = TarEntryType::kSymlink;
      break;
    case '3':
      entry.type = TarEntryType::kCharDevice;
      break;
    case '4':
      entry.type = TarEntryType::kBlockDevice;
      break;
    case '5':
      entry.type = TarEntryType::kDirectory;
      break;
    case '6':
      entry.type = TarEntryType::kFifo;
      break;
    case 'S':
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": GNU sparse files (type 'S') are not supported"));
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": unsupported tar entry type '", TypeflagText(h.typeflag), "'"));
  }
  for (const auto& [key, value] : pax_global_) {
    absl::Status s = ApplyPax(key, value, /*global=*/true, entry);
    if (!s.ok()) return Annotate(s, where);
  }
  for (const auto& [key, value] : pax_local_) {
    absl::Status s = ApplyPax(key, value, /*global=*/false, entry);
    if (!s.ok()) return Annotate(s, absl::StrCat("tar entry ", Quote(entry.name), " at offset ",
                                                 entry.header_offset));
  }
  if (entry.name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tar entry at offset ", entry.header_offset, " has an empty name"));
  }
  // Links, directories, devices and fifos never carry content, whatever their size field
  // says (the same rule as Go's archive/tar, so both read the same members).
  if (!has_data) entry.size = 0;

  long_name_.reset();
  long_link_.reset();
  pax_local_.clear();
  ext_first_offset_ = -1;
  ++entries_;
  entry_name_ = entry.name;
  SS_RETURN_IF_ERROR(handler_->OnEntry(entry));
  data_remaining_ = entry.size;
  padding_remaining_ = Padding(entry.size);
  if (data_remaining_ > 0) {
    state_ = State::kData;
    return absl::OkStatus();
  }
  return EndEntry();
}

absl::Status TarReader::EndEntry() {
  SS_RETURN_IF_ERROR(handler_->OnEntryEnd());
  state_ = padding_remaining_ > 0 ? State::kPadding : State::kHeader;
  return absl::OkStatus();
}

absl::Status TarReader::Finish() {
  SS_RETURN_IF_ERROR(status_);
  switch (state_) {
    case State::kEnd:
      return absl::OkStatus();
    case State::kHeader:
      if (block_.empty() && ext_first_offset_ < 0 && !long_name_ && !long_link_ &&
          pax_local_.empty()) {
        return absl::OkStatus();
      }
      return Remember(absl::DataLossError(
          absl::StrCat("truncated tar stream: it ends inside a header at offset ", offset_)));
    case State::kExtension:
      return Remember(absl::DataLossError(absl::StrCat(
          "truncated tar stream: it ends inside an extension header at offset ", offset_)));
    case State::kData:
    case State::kPadding:
      return Remember(absl::DataLossError(
          absl::StrCat("truncated tar stream: entry ", Quote(entry_name_), " ends early at offset ",
                       offset_)));
  }
  return absl::OkStatus();
}

}  // namespace slipstream::unpack
