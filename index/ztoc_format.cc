// SPDX-License-Identifier: Apache-2.0
#include "index/ztoc_format.h"

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "flatbuffers/flatbuffers.h"
#include "index/checkpoints.h"
#include "index/ztoc_generated.h"

namespace slipstream::index {
namespace {

namespace fb = ::slipstream::index::fbs;

// Leave headroom under flatbuffers' 2 GiB limit for vtables and offsets.
constexpr uint64_t kMaxSerializedEstimate = (uint64_t{1} << 31) - (uint64_t{64} << 20);

// The verifier bounds vector lengths by the buffer, but one small table or string can be
// referenced from many slots. Real builders spend well over this many bytes per element, so
// demanding it caps what a crafted zTOC can make us allocate.
constexpr uint64_t kMinBytesPerElement = 16;

uint64_t EstimateSize(const Ztoc& z) {
  uint64_t n = 1024 + z.checkpoints.size() * kCheckpointRecordSize + z.span_digests.size() * 96;
  for (const FileMetadata& e : z.entries) {
    n += 160 + e.name.size() + e.linkname.size() + e.uname.size() + e.gname.size() +
         e.mod_time.size();
    for (const Xattr& x : e.xattrs) n += 32 + x.key.size() + x.value.size();
  }
  return n;
}

flatbuffers::Offset<flatbuffers::String> OptionalString(flatbuffers::FlatBufferBuilder& b,
                                                        const std::string& s) {
  // Absent and empty read back the same; leaving empty strings out keeps the index small.
  return s.empty() ? 0 : b.CreateString(s);
}

flatbuffers::Offset<fb::FileMetadata> BuildEntry(flatbuffers::FlatBufferBuilder& b,
                                                 const FileMetadata& e) {
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Xattr>>> xattrs = 0;
  if (!e.xattrs.empty()) {
    std::vector<flatbuffers::Offset<fb::Xattr>> list;
    list.reserve(e.xattrs.size());
    for (const Xattr& x : e.xattrs) {
      list.push_back(fb::CreateXattr(b, b.CreateString(x.key), b.CreateString(x.value)));
    }
    xattrs = b.CreateVector(list);
  }
  return fb::CreateFileMetadata(b, b.CreateString(e.name), b.CreateString(e.type),
                                e.uncompressed_offset, e.uncompressed_size,
                                OptionalString(b, e.linkname), e.mode, e.uid, e.gid,
                                OptionalString(b, e.uname), OptionalString(b, e.gname),
                                OptionalString(b, e.mod_time), e.devmajor, e.devminor, xattrs);
}

// Tracks how many bytes conversion copies out of shared strings (see kMinBytesPerElement).
class CopyBudget {
 public:
  explicit CopyBudget(size_t input_size) : left_(2 * uint64_t{input_size} + (1u << 20)) {}
  bool Take(uint64_t n) {
    if (n > left_) return false;
    left_ -= n;
    return true;
  }

 private:
  uint64_t left_;
};

absl::Status TooMuch(std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid zTOC: ", AV(what), " reference more data than the zTOC holds"));
}

bool CopyString(const flatbuffers::String* s, CopyBudget& budget, std::string* out) {
  if (s == nullptr) return true;
  if (!budget.Take(s->size())) return false;
  out->assign(s->data(), s->size());
  return true;
}

absl::Status ConvertEntries(const fb::TOC* toc, size_t input_size, CopyBudget& budget,
                            std::vector<FileMetadata>* out) {
  if (toc == nullptr || toc->metadata() == nullptr) return absl::OkStatus();
  const auto& list = *toc->metadata();
  if (uint64_t{list.size()} * kMinBytesPerElement > input_size) return TooMuch("TOC entries");
  out->reserve(list.size());
  uint64_t xattr_count = 0;
  for (const fb::FileMetadata* m : list) {
    FileMetadata e;
    bool ok = CopyString(m->name(), budget, &e.name) && CopyString(m->type(), budget, &e.type) &&
              CopyString(m->linkname(), budget, &e.linkname) &&
              CopyString(m->uname(), budget, &e.uname) &&
              CopyString(m->gname(), budget, &e.gname) &&
              CopyString(m->mod_time(), budget, &e.mod_time);
    if (!ok) return TooMuch("TOC strings");
    e.uncompressed_offset = m->uncompressed_offset();
    e.uncompressed_size = m->uncompressed_size();
    e.mode = m->mode();
    e.uid = m->uid();
    e.gid = m->gid();
    e.devmajor = m->devmajor();
    e.devminor = m->devminor();
    if (m->xattrs() != nullptr) {
      xattr_count += m->xattrs()->size();
      if (xattr_count * kMinBytesPerElement > input_size) return TooMuch("xattrs");
      e.xattrs.reserve(m->xattrs()->size());
      for (const fb::Xattr* x : *m->xattrs()) {
        Xattr kv;
        if (!CopyString(x->key(), budget, &kv.key) || !CopyString(x->value(), budget, &kv.value)) {
          return TooMuch("xattr strings");
        }
        e.xattrs.push_back(std::move(kv));
      }
    }
    out->push_back(std::move(e));
  }
  return absl::OkStatus();
}

absl::Status ConvertCompression(const fb::CompressionInfo* ci, size_t input_size, Ztoc* z) {
  if (ci == nullptr) return absl::InvalidArgumentError("invalid zTOC: no compression info");
  if (ci->max_span_id() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid zTOC: max_span_id ", ci->max_span_id()));
  }
  int64_t spans = int64_t{ci->max_span_id()} + 1;
  std::string_view blob;
  if (ci->checkpoints() != nullptr) {
    blob = std::string_view(reinterpret_cast<const char*>(ci->checkpoints()->data()),
                            ci->checkpoints()->size());
  }
  switch (ci->compression_algorithm()) {
    case fb::CompressionAlgorithm_Gzip: {
      z->compression = CompressionAlgorithm::kGzip;
      auto decoded = DecodeGzipCheckpoints(blob, spans);
      if (!decoded.ok()) return Annotate(decoded.status(), "invalid zTOC");
      z->span_size = decoded->span_size;
      z->checkpoints = std::move(decoded->checkpoints);
      break;
    }
    case fb::CompressionAlgorithm_Uncompressed: {
      z->compression = CompressionAlgorithm::kUncompressed;
      auto zinfo = DecodeTarZinfo(blob);
      if (!zinfo.ok()) return Annotate(zinfo.status(), "invalid zTOC");
      z->span_size = zinfo->span_size;
      z->tar_zinfo_version = zinfo->version;
      if (zinfo->size != z->compressed_archive_size) {
        return absl::InvalidArgumentError(absl::StrCat("invalid zTOC: tar checkpoints describe ",
                                                       zinfo->size, " bytes, the archive has ",
                                                       z->compressed_archive_size));
      }
      if (z->span_size <= 0 || z->span_size > kMaxSpanSize || z->SpanCount() != spans) {
        return absl::InvalidArgumentError(absl::StrCat(
            "invalid zTOC: tar span size ", z->span_size, " does not give ", spans, " spans"));
      }
      break;
    }
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid zTOC: compression algorithm ", static_cast<int>(ci->compression_algorithm())));
  }
  const auto* digests = ci->span_digests();
  int64_t digest_count = digests == nullptr ? 0 : digests->size();
  if (digest_count != spans) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid zTOC: ", digest_count, " span digests for ", spans, " spans"));
  }
  if (uint64_t(digest_count) * kMinBytesPerElement > input_size) return TooMuch("span digests");
  z->span_digests.reserve(digest_count);
  for (const flatbuffers::String* s : *digests) {
    if (s == nullptr) return absl::InvalidArgumentError("invalid zTOC: null span digest");
    auto d = Digest::Parse(s->string_view());
    if (!d.ok()) return Annotate(d.status(), "invalid zTOC: span digest");
    z->span_digests.push_back(*std::move(d));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> SerializeZtoc(const Ztoc& z) {
  SS_RETURN_IF_ERROR(ValidateZtoc(z));
  if (EstimateSize(z) > kMaxSerializedEstimate) {
    return absl::ResourceExhaustedError("zTOC exceeds the 2 GiB flatbuffer limit");
  }
  flatbuffers::FlatBufferBuilder b(1 << 16);
  std::vector<flatbuffers::Offset<fb::FileMetadata>> entries;
  entries.reserve(z.entries.size());
  for (const FileMetadata& e : z.entries) entries.push_back(BuildEntry(b, e));
  auto toc = fb::CreateTOC(b, b.CreateVector(entries));

  std::vector<flatbuffers::Offset<flatbuffers::String>> digests;
  digests.reserve(z.span_digests.size());
  for (const Digest& d : z.span_digests) digests.push_back(b.CreateString(d.str()));
  std::string blob = z.compression == CompressionAlgorithm::kGzip
                         ? EncodeGzipCheckpoints(z.span_size, z.checkpoints)
                         : EncodeTarZinfo({z.tar_zinfo_version, z.span_size,
                                           z.compressed_archive_size});
  auto info = fb::CreateCompressionInfo(
      b, static_cast<fb::CompressionAlgorithm>(z.compression),
      static_cast<int32_t>(z.SpanCount() - 1), b.CreateVector(digests),
      b.CreateVector(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
  auto root = fb::CreateZtoc(b, b.CreateString(z.version),
                             b.CreateString(z.build_tool_identifier), z.compressed_archive_size,
                             z.uncompressed_archive_size, toc, info);
  b.Finish(root);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

absl::StatusOr<Ztoc> ParseZtoc(std::string_view bytes) {
  // Flatbuffers reads scalars in place; a misaligned view (a fuzzer's, a slice of a larger
  // buffer) gets an aligned copy so those reads stay defined.
  std::string copy;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 8 != 0) {
    copy.assign(bytes);
    bytes = copy;
  }
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  // Every table needs at least 4 bytes, so this table limit never rejects a real zTOC.
  flatbuffers::Verifier verifier(data, bytes.size(), /*max_depth=*/16,
                                 /*max_tables=*/static_cast<flatbuffers::uoffset_t>(
                                     std::min<size_t>(bytes.size() / 4 + 16, 1u << 30)));
  if (bytes.size() < 8 || !verifier.VerifyBuffer<fb::Ztoc>(nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid zTOC: ", bytes.size(), " bytes are not a zTOC flatbuffer"));
  }
  const fb::Ztoc* root = flatbuffers::GetRoot<fb::Ztoc>(data);
  Ztoc z;
  CopyBudget budget(bytes.size());
  z.version.clear();
  if (!CopyString(root->version(), budget, &z.version) ||
      !CopyString(root->build_tool_identifier(), budget, &z.build_tool_identifier)) {
    return TooMuch("strings");
  }
  if (z.version != kZtocVersion) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid zTOC: unsupported version \"", z.version, "\""));
  }
  z.compressed_archive_size = root->compressed_archive_size();
  z.uncompressed_archive_size = root->uncompressed_archive_size();
  SS_RETURN_IF_ERROR(ConvertCompression(root->compression_info(), bytes.size(), &z));
  SS_RETURN_IF_ERROR(ConvertEntries(root->toc(), bytes.size(), budget, &z.entries));
  SS_RETURN_IF_ERROR(ValidateZtoc(z));
  return z;
}

}  // namespace slipstream::index
