// SPDX-License-Identifier: Apache-2.0
#include "index/ztoc.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::index {
namespace {

bool KnownType(std::string_view type) {
  return type == kTypeDir || type == kTypeReg || type == kTypeSymlink || type == kTypeHardlink ||
         type == kTypeChar || type == kTypeBlock || type == kTypeFifo;
}

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("invalid zTOC: ", AV(what)));
}

absl::Status ValidateSpans(const Ztoc& z) {
  if (z.span_size <= 0 || z.span_size > kMaxSpanSize) {
    return Invalid(absl::StrCat("span size ", z.span_size, " out of range"));
  }
  if (z.compression == CompressionAlgorithm::kUncompressed) {
    if (!z.checkpoints.empty()) return Invalid("uncompressed layer with gzip checkpoints");
    if (z.compressed_archive_size != z.uncompressed_archive_size) {
      return Invalid("uncompressed layer whose compressed and uncompressed sizes differ");
    }
    if (z.compressed_archive_size <= 0) return Invalid("empty uncompressed layer");
  } else if (z.compression == CompressionAlgorithm::kGzip) {
    if (z.checkpoints.empty()) return Invalid("gzip layer without checkpoints");
    const Checkpoint* prev = nullptr;
    for (size_t i = 0; i < z.checkpoints.size(); ++i) {
      const Checkpoint& c = z.checkpoints[i];
      std::string at = absl::StrCat("checkpoint ", i);
      if (c.bits > 7) return Invalid(absl::StrCat(at, " has ", c.bits, " bits"));
      if (c.window.size() != static_cast<size_t>(kWindowSize)) {
        return Invalid(absl::StrCat(at, " window is ", c.window.size(), " bytes"));
      }
      // in - 1 must exist when bits are primed from it, and every span must hold at least one
      // byte of the archive.
      if (c.in < (c.bits ? 1 : 0) || c.in > z.compressed_archive_size) {
        return Invalid(absl::StrCat(at, " compressed offset ", c.in, " outside the archive"));
      }
      if (c.out < 0 || c.out > z.uncompressed_archive_size) {
        return Invalid(absl::StrCat(at, " uncompressed offset ", c.out, " outside the archive"));
      }
      if (prev == nullptr && c.out != 0) return Invalid("checkpoint 0 does not start at 0");
      if (prev != nullptr && (c.in <= prev->in || c.out <= prev->out)) {
        return Invalid(absl::StrCat(at, " does not follow checkpoint ", i - 1));
      }
      prev = &c;
    }
  } else {
    return Invalid(absl::StrCat("unknown compression algorithm ", static_cast<int>(z.compression)));
  }
  if (static_cast<int64_t>(z.span_digests.size()) != z.SpanCount()) {
    return Invalid(absl::StrCat(z.span_digests.size(), " span digests for ", z.SpanCount(),
                                " spans"));
  }
  for (const Digest& d : z.span_digests) {
    if (d.algorithm() != "sha256") return Invalid(absl::StrCat("span digest ", d.str()));
  }
  return absl::OkStatus();
}

absl::Status ValidateEntries(const Ztoc& z) {
  int64_t prev_end = 0;
  for (size_t i = 0; i < z.entries.size(); ++i) {
    const FileMetadata& e = z.entries[i];
    if (e.name.empty()) return Invalid(absl::StrCat("entry ", i, " has an empty name"));
    if (e.name.find('\0') != std::string::npos || e.linkname.find('\0') != std::string::npos) {
      return Invalid(absl::StrCat("entry ", i, " name contains NUL"));
    }
    if (!KnownType(e.type)) return Invalid(absl::StrCat("entry ", e.name, " type ", e.type));
    if (e.uncompressed_offset < 0 || e.uncompressed_size < 0 ||
        e.uncompressed_offset > z.uncompressed_archive_size ||
        e.uncompressed_size > z.uncompressed_archive_size - e.uncompressed_offset) {
      return Invalid(absl::StrCat("entry ", e.name, " data outside the archive"));
    }
    // Entries are in tar order, so data ranges never go backwards or overlap.
    if (e.uncompressed_offset < prev_end) {
      return Invalid(absl::StrCat("entry ", e.name, " overlaps the previous entry"));
    }
    prev_end = e.uncompressed_offset + e.uncompressed_size;
    for (const Xattr& x : e.xattrs) {
      if (x.key.empty()) return Invalid(absl::StrCat("entry ", e.name, " has an empty xattr key"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int64_t Ztoc::SpanCount() const {
  if (compression == CompressionAlgorithm::kUncompressed) {
    if (span_size <= 0 || compressed_archive_size <= 0) return 0;
    // Rounded up without size + span_size - 1, which overflows for sizes near INT64_MAX.
    return compressed_archive_size / span_size + (compressed_archive_size % span_size != 0);
  }
  return static_cast<int64_t>(checkpoints.size());
}

int64_t Ztoc::SpanUncompressedStart(int64_t span) const {
  if (compression == CompressionAlgorithm::kUncompressed) return span * span_size;
  return checkpoints[span].out;
}

int64_t Ztoc::SpanUncompressedEnd(int64_t span) const {
  if (span + 1 >= SpanCount()) return uncompressed_archive_size;
  return SpanUncompressedStart(span + 1);
}

int64_t Ztoc::SpanCompressedStart(int64_t span) const {
  if (compression == CompressionAlgorithm::kUncompressed) return span * span_size;
  const Checkpoint& c = checkpoints[span];
  return c.bits ? c.in - 1 : c.in;
}

int64_t Ztoc::SpanCompressedEnd(int64_t span) const {
  if (span + 1 >= SpanCount()) return compressed_archive_size;
  if (compression == CompressionAlgorithm::kUncompressed) return (span + 1) * span_size;
  return checkpoints[span + 1].in;
}

int64_t Ztoc::SpanForUncompressedOffset(int64_t offset) const {
  int64_t count = SpanCount();
  if (count <= 1 || offset <= 0) return 0;
  if (compression == CompressionAlgorithm::kUncompressed) {
    return std::min(offset / span_size, count - 1);
  }
  // The last checkpoint whose out <= offset.
  auto it = std::upper_bound(checkpoints.begin(), checkpoints.end(), offset,
                             [](int64_t v, const Checkpoint& c) { return v < c.out; });
  return static_cast<int64_t>(it - checkpoints.begin()) - 1;
}

absl::Status ValidateZtoc(const Ztoc& z) {
  if (z.version != kZtocVersion) {
    return Invalid(absl::StrCat("unsupported version \"", z.version, "\""));
  }
  if (z.compressed_archive_size < 0 || z.uncompressed_archive_size < 0) {
    return Invalid("negative archive size");
  }
  SS_RETURN_IF_ERROR(ValidateSpans(z));
  return ValidateEntries(z);
}

}  // namespace slipstream::index
