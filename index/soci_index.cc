// SPDX-License-Identifier: Apache-2.0
// SOCI index manifests: building one from an image, and finding one for an image.
#include "index/soci_index.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"
#include "index/ztoc_builder.h"
#include "index/ztoc_format.h"
#include "remote/media_types.h"

namespace slipstream::index {
namespace {

remote::Descriptor EmptyConfig(SociVersion version) {
  remote::Descriptor d;
  d.media_type = std::string(version == SociVersion::kV2 ? kSociIndexV2 : kSociIndexV1);
  d.digest = Sha256Of(kEmptyJson);
  d.size = static_cast<int64_t>(kEmptyJson.size());
  return d;
}

// Hashes what BuildZtoc reads (sequentially, from offset 0) so that a zTOC is never built
// from, and published for, bytes that are not the layer: Range reads cannot be verified one
// by one, the whole stream can. Single-threaded use only, like BuildZtoc.
class VerifyingBlobReader : public remote::BlobReader {
 public:
  VerifyingBlobReader(std::unique_ptr<remote::BlobReader> inner,
                      std::function<void(int64_t bytes_read)> on_progress)
      : inner_(std::move(inner)), on_progress_(std::move(on_progress)) {}
  const Digest& digest() const override { return inner_->digest(); }
  int64_t size() const override { return inner_->size(); }
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override {
    absl::StatusOr<std::string> got = inner_->ReadAt(offset, length);
    if (got.ok() && offset == hashed_) {
      hasher_.Update(*got);
      hashed_ += static_cast<int64_t>(got->size());
      if (on_progress_) on_progress_(hashed_);
    }
    return got;
  }
  // DataLoss unless the whole blob was read in order and hashes to its digest.
  absl::Status Verify() {
    if (hashed_ != size()) {
      return absl::DataLossError(absl::StrCat("layer ", digest().str(), ": read ", hashed_,
                                              " of ", size(), " bytes in order"));
    }
    const Digest got = hasher_.Finish();
    if (got != digest()) {
      return absl::DataLossError(
          absl::StrCat("layer ", digest().str(), ": content hashes to ", got.str()));
    }
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<remote::BlobReader> inner_;
  std::function<void(int64_t bytes_read)> on_progress_;
  Sha256Hasher hasher_;
  int64_t hashed_ = 0;
};

// The zTOC of one layer, or std::nullopt when the layer gets none (too small, or zstd, which
// zTOC version 0.9 cannot describe).
absl::StatusOr<std::optional<BuiltZtoc>> BuildLayerZtoc(remote::RegistryClient& client,
                                                        const remote::Reference& repo,
                                                        const remote::Descriptor& layer,
                                                        const SociIndexOptions& options) {
  SS_ASSIGN_OR_RETURN(remote::Compression compression,
                      remote::LayerCompression(layer.media_type));
  if (compression == remote::Compression::kZstd) {
    log::Info("soci: zstd layer gets no zTOC", {{"layer", layer.digest.str()}});
    return std::nullopt;
  }
  if (layer.size < options.min_layer_size) return std::nullopt;
  ZtocBuilderOptions zopts;
  zopts.span_size = options.span_size;
  zopts.min_layer_size = options.min_layer_size;
  zopts.build_tool_identifier = options.build_tool_identifier;
  zopts.compression = compression == remote::Compression::kGzip ? LayerCompression::kGzip
                                                               : LayerCompression::kUncompressed;
  std::function<void(int64_t)> progress;
  if (options.on_progress) {
    progress = [&options, &layer](int64_t n) { options.on_progress(layer, n); };
  }
  VerifyingBlobReader blob(client.OpenBlob(repo, layer), std::move(progress));
  SS_ASSIGN_OR_RETURN(std::optional<Ztoc> ztoc, BuildZtoc(blob, zopts));
  if (!ztoc.has_value()) return std::nullopt;
  SS_RETURN_IF_ERROR(blob.Verify());
  BuiltZtoc out;
  SS_ASSIGN_OR_RETURN(out.bytes, SerializeZtoc(*ztoc));
  out.layer = layer;
  out.spans = ztoc->SpanCount();
  out.entries = static_cast<int64_t>(ztoc->entries.size());
  out.descriptor.media_type = std::string(kZtocMediaType);
  out.descriptor.digest = Sha256Of(out.bytes);
  out.descriptor.size = static_cast<int64_t>(out.bytes.size());
  auto& notes = out.descriptor.annotations;
  notes[std::string(kAnnotationLayerDigest)] = layer.digest.str();
  notes[std::string(kAnnotationLayerMediaType)] = layer.media_type;
  notes[std::string(kAnnotationSpanSize)] = std::to_string(ztoc->span_size);
  bool any_xattrs = false;
  for (const FileMetadata& entry : ztoc->entries) any_xattrs |= !entry.xattrs.empty();
  // Readers skip xattr lookups for the whole layer when told there are none.
  if (!any_xattrs) notes[std::string(kAnnotationDisableXattrs)] = "true";
  return out;
}

absl::StatusOr<SociVersion> VersionOf(const remote::Manifest& m, const Digest& digest) {
  if (m.config.media_type == kSociIndexV2) return SociVersion::kV2;
  if (m.config.media_type == kSociIndexV1) return SociVersion::kV1;
  return absl::InvalidArgumentError(absl::StrCat("manifest ", digest.str(),
                                                 " is not a SOCI index (config media type \"",
                                                 m.config.media_type, "\")"));
}

// Fetches and parses manifest `digest` of `repo` as a SOCI index.
absl::StatusOr<DiscoveredIndex> FetchIndex(remote::RegistryClient& client,
                                           const remote::Reference& repo, const Digest& digest,
                                           std::string source) {
  remote::Reference ref = repo;
  ref.tag.clear();
  ref.digest = digest.str();
  SS_ASSIGN_OR_RETURN(remote::RegistryClient::ManifestResult got, client.GetManifest(ref));
  absl::StatusOr<remote::Manifest> m = remote::Manifest::Parse(got.body);
  if (!m.ok()) return Annotate(m.status(), "SOCI index " + digest.str());
  DiscoveredIndex out;
  SS_ASSIGN_OR_RETURN(out.version, VersionOf(*m, digest));
  out.digest = digest;
  out.manifest = *std::move(m);
  out.body = std::move(got.body);
  out.source = std::move(source);
  return out;
}

// The newest v1 SOCI index among `referrers` (the last listed: tag indexes append), if any.
std::optional<Digest> PickV1(const remote::ImageIndex& referrers) {
  std::optional<Digest> found;
  for (const remote::Descriptor& d : referrers.manifests) {
    if (d.artifact_type == kSociIndexV1) found = d.digest;
  }
  return found;
}

}  // namespace

std::string ReferrersTag(const Digest& subject) {
  return absl::StrCat(AV(subject.algorithm()), "-", AV(subject.hex()));
}

absl::StatusOr<SociIndex> BuildSociIndex(remote::RegistryClient& client,
                                         const remote::Reference& image,
                                         const SociIndexOptions& options) {
  const remote::Platform platform =
      options.platform.os.empty() ? remote::Platform::Host() : options.platform;
  SociIndex out;
  out.version = options.version;
  SS_ASSIGN_OR_RETURN(out.image, client.ResolveImage(image, platform));
  for (const remote::Descriptor& layer : out.image.manifest.layers) {
    absl::StatusOr<std::optional<BuiltZtoc>> built =
        BuildLayerZtoc(client, out.image.ref, layer, options);
    if (!built.ok()) return Annotate(built.status(), "zTOC of layer " + layer.digest.str());
    if (built->has_value()) out.ztocs.push_back(**std::move(built));
  }

  remote::Manifest& m = out.manifest;
  m.media_type = std::string(remote::kOciManifest);
  m.config = EmptyConfig(options.version);
  for (const BuiltZtoc& z : out.ztocs) m.layers.push_back(z.descriptor);
  m.annotations[std::string(kAnnotationBuildTool)] = options.build_tool_identifier;
  if (options.version == SociVersion::kV1) {
    remote::Descriptor subject;
    subject.media_type = out.image.manifest.media_type.empty()
                             ? std::string(remote::kOciManifest)
                             : out.image.manifest.media_type;
    subject.digest = out.image.manifest_digest;
    subject.size = static_cast<int64_t>(out.image.manifest_body.size());
    m.subject = std::move(subject);
  }
  out.manifest_json = m.ToJson();
  out.manifest_digest = Sha256Of(out.manifest_json);
  return out;
}

std::vector<remote::Descriptor> DiscoveredIndex::Ztocs() const {
  std::vector<remote::Descriptor> out;
  for (const remote::Descriptor& d : manifest.layers) {
    if (d.media_type == kZtocMediaType) out.push_back(d);
  }
  return out;
}

const remote::Descriptor* DiscoveredIndex::ZtocFor(const Digest& layer) const {
  for (const remote::Descriptor& d : manifest.layers) {
    auto it = d.annotations.find(std::string(kAnnotationLayerDigest));
    if (d.media_type == kZtocMediaType && it != d.annotations.end() && it->second == layer.str()) {
      return &d;
    }
  }
  return nullptr;
}

absl::StatusOr<DiscoveredIndex> DiscoverSociIndex(remote::RegistryClient& client,
                                                  const remote::Reference& image,
                                                  const remote::Platform& platform,
                                                  std::optional<Digest> explicit_digest) {
  SS_ASSIGN_OR_RETURN(remote::RegistryClient::ResolvedImage resolved,
                      client.ResolveImage(image, platform));
  auto finish = [&](absl::StatusOr<DiscoveredIndex> found) -> absl::StatusOr<DiscoveredIndex> {
    if (found.ok()) found->image = std::move(resolved);
    return found;
  };
  if (explicit_digest.has_value()) {
    return finish(FetchIndex(client, image, *explicit_digest, "explicit"));
  }
  const auto& notes = resolved.manifest.annotations;
  if (auto it = notes.find(std::string(kAnnotationIndexDigest)); it != notes.end()) {
    absl::StatusOr<Digest> digest = Digest::Parse(it->second);
    if (!digest.ok()) {
      return Annotate(digest.status(), absl::StrCat("annotation ", AV(kAnnotationIndexDigest),
                                                    " of ", resolved.manifest_digest.str()));
    }
    return finish(FetchIndex(client, image, *digest, "annotation"));
  }

  const Digest& subject = resolved.manifest_digest;
  absl::StatusOr<remote::ImageIndex> referrers =
      client.GetReferrers(image, subject, kSociIndexV1);
  if (referrers.ok()) {
    if (std::optional<Digest> d = PickV1(*referrers)) {
      return finish(FetchIndex(client, image, *d, "referrers"));
    }
  } else if (!absl::IsNotFound(referrers.status())) {
    return referrers.status();
  }

  // No referrers API (or nothing there): the referrers tag fallback.
  remote::Reference tag_ref = image;
  tag_ref.digest.clear();
  tag_ref.tag = ReferrersTag(subject);
  absl::StatusOr<remote::RegistryClient::ManifestResult> tagged = client.GetManifest(tag_ref);
  if (absl::IsNotFound(tagged.status())) {
    return absl::NotFoundError(absl::StrCat("no SOCI index for ", image.String(), " (manifest ",
                                            subject.str(), ")"));
  }
  if (!tagged.ok()) return tagged.status();
  if (remote::IsIndexMediaType(tagged->media_type)) {
    absl::StatusOr<remote::ImageIndex> list = remote::ImageIndex::Parse(tagged->body);
    if (!list.ok()) return Annotate(list.status(), "referrers tag " + tag_ref.tag);
    std::optional<Digest> d = PickV1(*list);
    if (!d.has_value()) {
      return absl::NotFoundError(absl::StrCat("no SOCI index among the referrers of ",
                                              subject.str()));
    }
    return finish(FetchIndex(client, image, *d, "referrers-tag"));
  }
  // Some tools tag the index manifest itself.
  return finish(FetchIndex(client, image, tagged->digest, "referrers-tag"));
}

absl::StatusOr<Ztoc> FetchZtoc(remote::RegistryClient& client, const remote::Reference& repo,
                               const remote::Descriptor& ztoc, std::string* raw) {
  SS_ASSIGN_OR_RETURN(std::string bytes, client.ReadBlob(repo, ztoc));
  absl::StatusOr<Ztoc> parsed = ParseZtoc(bytes);
  if (!parsed.ok()) return Annotate(parsed.status(), "zTOC " + ztoc.digest.str());
  if (raw != nullptr) *raw = std::move(bytes);
  return parsed;
}

}  // namespace slipstream::index
