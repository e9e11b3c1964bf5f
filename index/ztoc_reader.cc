// SPDX-License-Identifier: Apache-2.0
#include "index/ztoc_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "index/span_decoder.h"

namespace slipstream::index {

std::string CleanEntryPath(std::string_view name) {
  while (true) {
    if (name.substr(0, 2) == "./") {
      name.remove_prefix(2);
    } else if (!name.empty() && name.front() == '/') {
      name.remove_prefix(1);
    } else {
      break;
    }
  }
  while (!name.empty() && name.back() == '/') name.remove_suffix(1);
  return std::string(name);
}

ZtocReader::ZtocReader(std::shared_ptr<const Ztoc> ztoc, remote::BlobReader& blob,
                       ZtocReaderOptions options)
    : ztoc_(std::move(ztoc)), blob_(blob), options_(options) {
  by_path_.reserve(ztoc_->entries.size());
  for (size_t i = 0; i < ztoc_->entries.size(); ++i) {
    by_path_[CleanEntryPath(ztoc_->entries[i].name)] = i;
  }
}

const FileMetadata* ZtocReader::Find(std::string_view path) const {
  auto it = by_path_.find(CleanEntryPath(path));
  return it == by_path_.end() ? nullptr : &ztoc_->entries[it->second];
}

absl::Status ZtocReader::ReadSpanRun(int64_t first, int64_t last, int64_t begin, int64_t end,
                                     std::string* out, ReadStats* stats) const {
  const Ztoc& z = *ztoc_;
  int64_t base = z.SpanCompressedStart(first);
  int64_t length = z.SpanCompressedEnd(last) - base;
  SS_ASSIGN_OR_RETURN(std::string compressed, blob_.ReadAt(base, length));
  if (stats != nullptr) {
    ++stats->fetches;
    stats->compressed_bytes_fetched += static_cast<int64_t>(compressed.size());
  }
  if (static_cast<int64_t>(compressed.size()) != length) {
    return absl::DataLossError(absl::StrCat("blob ", blob_.digest().Short(), " returned ",
                                            compressed.size(), " of ", length, " bytes at ",
                                            base));
  }
  for (int64_t span = first; span <= last; ++span) {
    std::string_view bytes = std::string_view(compressed).substr(
        z.SpanCompressedStart(span) - base, z.SpanCompressedEnd(span) - z.SpanCompressedStart(span));
    SS_ASSIGN_OR_RETURN(std::string data, DecodeSpan(z, span, bytes));
    if (stats != nullptr) ++stats->spans_decoded;
    int64_t span_start = z.SpanUncompressedStart(span);
    int64_t from = std::max(begin, span_start) - span_start;
    int64_t to = std::min<int64_t>(end - span_start, static_cast<int64_t>(data.size()));
    if (to > from) out->append(data, from, to - from);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZtocReader::ReadUncompressed(int64_t offset, int64_t length,
                                                         ReadStats* stats) const {
  if (offset < 0 || length < 0) {
    return absl::InvalidArgumentError(absl::StrCat("read of ", length, " bytes at ", offset));
  }
  const Ztoc& z = *ztoc_;
  std::string out;
  if (offset >= z.uncompressed_archive_size || length == 0) return out;
  int64_t end = offset + std::min(length, z.uncompressed_archive_size - offset);
  // Reserve what a real read needs, not what a lying zTOC could make a huge read ask for.
  out.reserve(static_cast<size_t>(std::min<int64_t>(end - offset, 64 << 20)));
  int64_t first = z.SpanForUncompressedOffset(offset);
  int64_t last = z.SpanForUncompressedOffset(end - 1);
  // Coalesce adjacent spans into runs of at most max_fetch_bytes (at least one span each).
  int64_t run_start = first;
  for (int64_t span = first; span <= last; ++span) {
    bool run_full = span + 1 <= last &&
                    z.SpanCompressedEnd(span + 1) - z.SpanCompressedStart(run_start) >
                        options_.max_fetch_bytes;
    if (span == last || run_full) {
      SS_RETURN_IF_ERROR(ReadSpanRun(run_start, span, offset, end, &out, stats));
      run_start = span + 1;
    }
  }
  return out;
}

absl::StatusOr<std::string> ZtocReader::ReadFile(const FileMetadata& entry, int64_t offset,
                                                 int64_t length, ReadStats* stats) const {
  const FileMetadata* file = &entry;
  if (entry.type == kTypeHardlink) {
    file = Find(entry.linkname);
    if (file == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("hardlink ", entry.name, " to missing ", entry.linkname));
    }
  }
  if (file->type != kTypeReg) {
    return absl::InvalidArgumentError(
        absl::StrCat(file->name, " is a ", file->type, ", not a regular file"));
  }
  if (offset < 0 || length < 0) {
    return absl::InvalidArgumentError(absl::StrCat("read of ", length, " bytes at ", offset));
  }
  if (offset >= file->uncompressed_size) return std::string();
  length = std::min(length, file->uncompressed_size - offset);
  return ReadUncompressed(file->uncompressed_offset + offset, length, stats);
}

absl::StatusOr<std::string> ZtocReader::ReadFile(std::string_view path, int64_t offset,
                                                 int64_t length, ReadStats* stats) const {
  const FileMetadata* entry = Find(path);
  if (entry == nullptr) {
    return absl::NotFoundError(absl::StrCat(AV(path), " is not in the layer"));
  }
  return ReadFile(*entry, offset, length, stats);
}

}  // namespace slipstream::index
