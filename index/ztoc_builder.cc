// SPDX-License-Identifier: Apache-2.0
#include "index/ztoc_builder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "index/gzip_indexer.h"
#include "index/tar_toc_parser.h"

namespace slipstream::index {

// Spans of an uncompressed layer are fixed slices of the blob; only their digests are needed.
struct ZtocBuilder::Impl {
  TarTocParser tar;
  std::unique_ptr<GzipIndexer> gzip;
  Sha256Hasher slice_hasher;
  int64_t slice_fill = 0;
  std::vector<Digest> slice_digests;

  absl::Status HashSlices(std::string_view data, int64_t span_size) {
    while (!data.empty()) {
      size_t take = static_cast<size_t>(
          std::min<int64_t>(span_size - slice_fill, static_cast<int64_t>(data.size())));
      slice_hasher.Update(data.substr(0, take));
      slice_fill += static_cast<int64_t>(take);
      data.remove_prefix(take);
      if (slice_fill == span_size) {
        slice_digests.push_back(slice_hasher.Finish());
        slice_fill = 0;
      }
    }
    return absl::OkStatus();
  }
};

ZtocBuilder::ZtocBuilder(ZtocBuilderOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  if (options_.span_size <= 0 || options_.span_size > kMaxSpanSize) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat("zTOC span size ", options_.span_size, " out of range"));
  }
}

ZtocBuilder::~ZtocBuilder() = default;

absl::Status ZtocBuilder::Start(std::string_view first) {
  started_ = true;
  bool gzip_magic = first.size() >= 2 && static_cast<uint8_t>(first[0]) == 0x1f &&
                    static_cast<uint8_t>(first[1]) == 0x8b;
  bool zstd_magic = first.size() >= 4 && first.substr(0, 4) == std::string_view("\x28\xb5\x2f\xfd");
  switch (options_.compression) {
    case LayerCompression::kAuto:
      if (zstd_magic) return absl::UnimplementedError("zTOC for zstd layers is not supported");
      gzip_ = gzip_magic;
      break;
    case LayerCompression::kGzip:
      gzip_ = true;
      break;
    case LayerCompression::kUncompressed:
      gzip_ = false;
      break;
  }
  if (gzip_) {
    TarTocParser* tar = &impl_->tar;
    impl_->gzip = std::make_unique<GzipIndexer>(
        options_.span_size, [tar](std::string_view out) { return tar->Feed(out); });
  }
  return absl::OkStatus();
}

absl::Status ZtocBuilder::Write(std::string_view bytes) {
  if (!error_.ok()) return error_;
  if (bytes.empty()) return absl::OkStatus();
  total_ += static_cast<int64_t>(bytes.size());
  std::string held;
  if (!started_) {
    // The compression is decided on the first 4 bytes; hold tiny first writes until then.
    sniff_.append(bytes);
    if (sniff_.size() < 4) return absl::OkStatus();
    held = std::move(sniff_);
    sniff_.clear();
    bytes = held;
    error_ = Start(bytes);
    if (!error_.ok()) return error_;
  }
  if (gzip_) {
    error_ = impl_->gzip->Write(bytes);
  } else {
    error_ = impl_->HashSlices(bytes, options_.span_size);
    if (error_.ok()) error_ = impl_->tar.Feed(bytes);
  }
  return error_;
}

absl::StatusOr<std::optional<Ztoc>> ZtocBuilder::Finish() {
  if (!error_.ok()) return error_;
  if (total_ < options_.min_layer_size) return std::optional<Ztoc>();
  if (!started_) {
    std::string held = std::move(sniff_);
    sniff_.clear();
    SS_RETURN_IF_ERROR(error_ = Start(held));
    if (gzip_) {
      error_ = impl_->gzip->Write(held);
    } else {
      error_ = impl_->HashSlices(held, options_.span_size);
      if (error_.ok()) error_ = impl_->tar.Feed(held);
    }
    SS_RETURN_IF_ERROR(error_);
  }
  Ztoc z;
  z.build_tool_identifier = options_.build_tool_identifier;
  z.span_size = options_.span_size;
  z.compressed_archive_size = total_;
  if (gzip_) {
    SS_RETURN_IF_ERROR(error_ = impl_->gzip->Finish());
    z.compression = CompressionAlgorithm::kGzip;
    z.uncompressed_archive_size = impl_->gzip->uncompressed_size();
    z.checkpoints = impl_->gzip->TakeCheckpoints();
    z.span_digests = impl_->gzip->TakeSpanDigests();
  } else {
    z.compression = CompressionAlgorithm::kUncompressed;
    z.uncompressed_archive_size = total_;
    if (impl_->slice_fill > 0) {
      impl_->slice_digests.push_back(impl_->slice_hasher.Finish());
      impl_->slice_fill = 0;
    }
    z.span_digests = std::move(impl_->slice_digests);
  }
  SS_RETURN_IF_ERROR(error_ = impl_->tar.Finish());
  z.entries = impl_->tar.TakeEntries();
  absl::Status valid = ValidateZtoc(z);
  if (!valid.ok()) {
    error_ = absl::InternalError(
        absl::StrCat("zTOC builder produced an invalid zTOC: ", valid.message()));
    return error_;
  }
  return std::optional<Ztoc>(std::move(z));
}

absl::StatusOr<std::optional<Ztoc>> BuildZtoc(remote::BlobReader& blob,
                                              const ZtocBuilderOptions& options,
                                              int64_t chunk_size) {
  ZtocBuilder builder(options);
  std::string context = absl::StrCat("build zTOC of ", blob.digest().Short());
  if (blob.size() < options.min_layer_size) return std::optional<Ztoc>();
  for (int64_t off = 0; off < blob.size(); off += chunk_size) {
    auto chunk = blob.ReadAt(off, std::min(chunk_size, blob.size() - off));
    if (!chunk.ok()) return Annotate(chunk.status(), context);
    if (chunk->empty()) {
      return absl::DataLossError(absl::StrCat(context, ": blob ended at ", off));
    }
    SS_RETURN_IF_ERROR(Annotate(builder.Write(*chunk), context));
    // A short read means the blob ended early; continue from what we got.
    off -= chunk_size - static_cast<int64_t>(chunk->size());
  }
  auto result = builder.Finish();
  if (!result.ok()) return Annotate(result.status(), context);
  return result;
}

}  // namespace slipstream::index
