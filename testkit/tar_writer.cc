// SPDX-License-Identifier: Apache-2.0
#include "testkit/tar_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "testkit/tar_writer_format.h"

namespace slipstream::testkit {

namespace tf = tar_format;

namespace {

constexpr std::string_view kUstarMagic("ustar\0" "00", 8);
constexpr std::string_view kGnuMagic("ustar  \0", 8);

// Splits an absl::Time into whole Unix seconds (floored) and the nanoseconds past them.
void SplitTime(absl::Time t, int64_t* seconds, int32_t* nanos) {
  const absl::Duration since = t - absl::UnixEpoch();
  absl::Duration rest;
  // IDivDuration truncates toward zero; a negative remainder is folded into the seconds.
  *seconds = absl::IDivDuration(since, absl::Seconds(1), &rest);
  if (rest < absl::ZeroDuration()) {
    *seconds -= 1;
    rest += absl::Seconds(1);
  }
  *nanos = static_cast<int32_t>(absl::ToInt64Nanoseconds(rest));
}

// The last path component of `name` (ignoring a trailing '/'), for PAX header names.
std::string_view BaseName(std::string_view name) {
  while (name.size() > 1 && name.back() == '/') name.remove_suffix(1);
  const size_t slash = name.rfind('/');
  return slash == std::string_view::npos ? name : name.substr(slash + 1);
}

}  // namespace

TarWriter::TarWriter(remote::BodySink sink, LongNameStyle style)
    : sink_(std::move(sink)), style_(style) {}

remote::BodySink TarWriter::StringSink(std::string* out) {
  return [out](std::string_view chunk) {
    out->append(chunk);
    return absl::OkStatus();
  };
}

absl::Status TarWriter::Fail(absl::Status status) {
  if (error_.ok()) error_ = std::move(status);
  return error_;
}

absl::Status TarWriter::CheckWritable() const {
  if (!error_.ok()) return error_;
  if (finished_) return absl::FailedPreconditionError("tar writer: entry added after Finish");
  return absl::OkStatus();
}

absl::Status TarWriter::Emit(std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (bytes.empty()) return absl::OkStatus();
  absl::Status status = sink_(bytes);
  if (!status.ok()) return Fail(status);
  bytes_written_ += static_cast<int64_t>(bytes.size());
  return absl::OkStatus();
}

absl::Status TarWriter::WritePadding(int64_t size) {
  const int64_t rem = size % static_cast<int64_t>(tf::kBlockSize);
  if (rem == 0) return absl::OkStatus();
  const std::string zeros(tf::kBlockSize - static_cast<size_t>(rem), '\0');
  return Emit(zeros);
}

absl::Status TarWriter::WriteGnuLongLink(char type, std::string_view value) {
  // GNU stores the full name NUL-terminated in the body of a pseudo-entry.
  std::string body(value);
  body.push_back('\0');
  std::string block(tf::kBlockSize, '\0');
  char* b = block.data();
  tf::PutString(b + tf::kNameOffset, tf::kNameSize, "././@LongLink");
  tf::PutNumber(b + tf::kModeOffset, tf::kModeSize, 0, true);
  tf::PutNumber(b + tf::kUidOffset, tf::kUidSize, 0, true);
  tf::PutNumber(b + tf::kGidOffset, tf::kGidSize, 0, true);
  tf::PutNumber(b + tf::kSizeOffset, tf::kSizeSize, static_cast<int64_t>(body.size()), true);
  tf::PutNumber(b + tf::kMtimeOffset, tf::kMtimeSize, 0, true);
  b[tf::kTypeOffset] = type;
  std::memcpy(b + tf::kMagicOffset, kGnuMagic.data(), kGnuMagic.size());
  tf::PutString(b + tf::kUnameOffset, tf::kUnameSize, "root");
  tf::PutString(b + tf::kGnameOffset, tf::kGnameSize, "root");
  tf::PutChecksum(b);
  SS_RETURN_IF_ERROR(Emit(block));
  SS_RETURN_IF_ERROR(Emit(body));
  return WritePadding(static_cast<int64_t>(body.size()));
}

absl::Status TarWriter::WritePaxHeader(char type, std::string_view name,
                                       std::string_view records) {
  std::string block(tf::kBlockSize, '\0');
  char* b = block.data();
  // The header's own name only matters to readers that do not understand PAX and extract
  // it as a file; keep it short and recognizable.
  std::string pax_name = type == 'g' ? std::string("pax_global_header")
                                     : absl::StrCat("PaxHeaders/", AV(BaseName(name).substr(0, 80)));
  tf::PutString(b + tf::kNameOffset, tf::kNameSize, pax_name);
  tf::PutNumber(b + tf::kModeOffset, tf::kModeSize, 0644, false);
  tf::PutNumber(b + tf::kUidOffset, tf::kUidSize, 0, false);
  tf::PutNumber(b + tf::kGidOffset, tf::kGidSize, 0, false);
  if (!tf::PutNumber(b + tf::kSizeOffset, tf::kSizeSize, static_cast<int64_t>(records.size()),
                     false)) {
    return Fail(absl::InvalidArgumentError("tar writer: PAX records too large"));
  }
  tf::PutNumber(b + tf::kMtimeOffset, tf::kMtimeSize, 0, false);
  b[tf::kTypeOffset] = type;
  const std::string_view magic = style_ == LongNameStyle::kGnu ? kGnuMagic : kUstarMagic;
  std::memcpy(b + tf::kMagicOffset, magic.data(), magic.size());
  tf::PutChecksum(b);
  SS_RETURN_IF_ERROR(Emit(block));
  SS_RETURN_IF_ERROR(Emit(records));
  return WritePadding(static_cast<int64_t>(records.size()));
}

absl::Status TarWriter::WriteHeaders(char type, std::string_view name, std::string_view link,
                                     int64_t size, uint32_t major, uint32_t minor,
                                     const TarEntryOptions& options, uint32_t default_mode) {
  SS_RETURN_IF_ERROR(CheckWritable());
  if (name.empty()) return Fail(absl::InvalidArgumentError("tar writer: empty entry name"));
  const bool gnu = style_ == LongNameStyle::kGnu;
  std::string pax;
  std::string_view name_field = name;
  std::string_view prefix_field;
  std::string_view link_field = link;

  if (gnu) {
    if (link.size() > tf::kLinkSize) {
      SS_RETURN_IF_ERROR(WriteGnuLongLink('K', link));
      link_field = link.substr(0, tf::kLinkSize);
    }
    if (name.size() > tf::kNameSize) {
      SS_RETURN_IF_ERROR(WriteGnuLongLink('L', name));
      name_field = name.substr(0, tf::kNameSize);
    }
  } else {
    if (name.size() > tf::kNameSize) {
      if (auto split = tf::SplitUstarName(name)) {
        prefix_field = split->first;
        name_field = split->second;
      } else {
        pax += tf::PaxRecord("path", name);
        name_field = name.substr(0, tf::kNameSize);
      }
    }
    if (link.size() > tf::kLinkSize) {
      pax += tf::PaxRecord("linkpath", link);
      link_field = link.substr(0, tf::kLinkSize);
    }
  }

  std::string block(tf::kBlockSize, '\0');
  char* b = block.data();
  tf::PutString(b + tf::kNameOffset, tf::kNameSize, name_field);
  tf::PutString(b + tf::kPrefixOffset, tf::kPrefixSize, prefix_field);
  tf::PutString(b + tf::kLinkOffset, tf::kLinkSize, link_field);
  const uint32_t mode = options.mode.value_or(default_mode) & 07777;
  tf::PutNumber(b + tf::kModeOffset, tf::kModeSize, mode, gnu);

  // Numbers that overflow their octal field: GNU writes base-256, PAX adds a record.
  auto number = [&](size_t offset, size_t width, int64_t value, const char* key) {
    if (!tf::PutNumber(b + offset, width, value, gnu)) pax += tf::PaxRecord(key, absl::StrCat(value));
  };
  number(tf::kUidOffset, tf::kUidSize, options.uid, "uid");
  number(tf::kGidOffset, tf::kGidSize, options.gid, "gid");
  number(tf::kSizeOffset, tf::kSizeSize, size, "size");

  int64_t seconds = 0;
  int32_t nanos = 0;
  SplitTime(options.mtime, &seconds, &nanos);
  if (!tf::PutNumber(b + tf::kMtimeOffset, tf::kMtimeSize, seconds, gnu) || nanos != 0) {
    pax += tf::PaxRecord("mtime", tf::PaxTime(seconds, nanos));
  }
  if (!tf::PutString(b + tf::kUnameOffset, tf::kUnameSize, options.uname)) {
    pax += tf::PaxRecord("uname", options.uname);
  }
  if (!tf::PutString(b + tf::kGnameOffset, tf::kGnameSize, options.gname)) {
    pax += tf::PaxRecord("gname", options.gname);
  }
  tf::PutNumber(b + tf::kDevMajorOffset, tf::kDevMajorSize, major, gnu);
  tf::PutNumber(b + tf::kDevMinorOffset, tf::kDevMinorSize, minor, gnu);
  for (const auto& [key, value] : options.xattrs) {
    pax += tf::PaxRecord(absl::StrCat("SCHILY.xattr.", key), value);
  }
  for (const auto& [key, value] : options.pax_records) pax += tf::PaxRecord(key, value);

  b[tf::kTypeOffset] = type;
  const std::string_view magic = gnu ? kGnuMagic : kUstarMagic;
  std::memcpy(b + tf::kMagicOffset, magic.data(), magic.size());
  tf::PutChecksum(b);

  if (!pax.empty()) SS_RETURN_IF_ERROR(WritePaxHeader('x', name, pax));
  return Emit(block);
}

absl::Status TarWriter::AddFile(std::string_view name, std::string_view content,
                                const TarEntryOptions& options) {
  const auto size = static_cast<int64_t>(content.size());
  SS_RETURN_IF_ERROR(WriteHeaders('0', name, "", size, 0, 0, options, 0644));
  SS_RETURN_IF_ERROR(Emit(content));
  return WritePadding(size);
}

absl::Status TarWriter::AddFileFromFd(std::string_view name, int fd, int64_t size,
                                      const TarEntryOptions& options) {
  SS_RETURN_IF_ERROR(WriteHeaders('0', name, "", size, 0, 0, options, 0644));
  constexpr int64_t kChunk = 1 << 20;
  std::string buf(static_cast<size_t>(std::min(size, kChunk)), '\0');
  int64_t done = 0;
  while (done < size) {
    const size_t want = static_cast<size_t>(std::min(size - done, kChunk));
    const ssize_t n = ::pread(fd, buf.data(), want, done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail(LastErrnoStatus(absl::StrCat("tar writer: read ", AV(name))));
    }
    if (n == 0) {
      // The header already promised `size` bytes; the stream cannot be repaired.
      return Fail(absl::FailedPreconditionError(
          absl::StrCat("tar writer: ", AV(name), " shrank to ", done, " bytes, header says ", size)));
    }
    SS_RETURN_IF_ERROR(Emit(std::string_view(buf.data(), static_cast<size_t>(n))));
    done += n;
  }
  return WritePadding(size);
}

absl::Status TarWriter::AddSpecial(char type, std::string_view name, std::string_view link,
                                   uint32_t major, uint32_t minor,
                                   const TarEntryOptions& options, uint32_t default_mode) {
  return WriteHeaders(type, name, link, 0, major, minor, options, default_mode);
}

absl::Status TarWriter::AddDir(std::string_view name, const TarEntryOptions& options) {
  std::string dir(name);
  if (!dir.empty() && dir.back() != '/') dir.push_back('/');
  return AddSpecial('5', dir, "", 0, 0, options, 0755);
}

absl::Status TarWriter::AddSymlink(std::string_view name, std::string_view target,
                                   const TarEntryOptions& options) {
  return AddSpecial('2', name, target, 0, 0, options, 0777);
}

absl::Status TarWriter::AddHardlink(std::string_view name, std::string_view target,
                                    const TarEntryOptions& options) {
  return AddSpecial('1', name, target, 0, 0, options, 0644);
}

absl::Status TarWriter::AddCharDevice(std::string_view name, uint32_t major, uint32_t minor,
                                      const TarEntryOptions& options) {
  return AddSpecial('3', name, "", major, minor, options, 0644);
}

absl::Status TarWriter::AddBlockDevice(std::string_view name, uint32_t major, uint32_t minor,
                                       const TarEntryOptions& options) {
  return AddSpecial('4', name, "", major, minor, options, 0644);
}

absl::Status TarWriter::AddFifo(std::string_view name, const TarEntryOptions& options) {
  return AddSpecial('6', name, "", 0, 0, options, 0644);
}

absl::Status TarWriter::AddWhiteout(std::string_view dir, std::string_view name,
                                    const TarEntryOptions& options) {
  if (name.empty() || name.find('/') != std::string_view::npos) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("tar writer: whiteout name must be one path component: \"", AV(name), "\"")));
  }
  std::string path(dir);
  if (!path.empty() && path.back() != '/') path.push_back('/');
  return AddFile(absl::StrCat(path, ".wh.", AV(name)), "", options);
}

absl::Status TarWriter::AddOpaqueWhiteout(std::string_view dir, const TarEntryOptions& options) {
  std::string path(dir);
  if (!path.empty() && path.back() != '/') path.push_back('/');
  return AddFile(absl::StrCat(path, ".wh..wh..opq"), "", options);
}

absl::Status TarWriter::AddGlobalPax(
    const std::vector<std::pair<std::string, std::string>>& records) {
  SS_RETURN_IF_ERROR(CheckWritable());
  std::string body;
  for (const auto& [key, value] : records) body += tf::PaxRecord(key, value);
  return WritePaxHeader('g', "", body);
}

absl::Status TarWriter::AddRaw(std::string_view bytes) {
  SS_RETURN_IF_ERROR(CheckWritable());
  return Emit(bytes);
}

absl::Status TarWriter::Finish() {
  SS_RETURN_IF_ERROR(CheckWritable());
  finished_ = true;
  const std::string end(2 * tf::kBlockSize, '\0');
  return Emit(end);
}

}  // namespace slipstream::testkit
