// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "index/ztoc.h"
#include "remote/manifest.h"
#include "remote/platform.h"
#include "remote/reference.h"
#include "remote/registry_client.h"

namespace slipstream::index {

// SOCI index manifests (index/soci_index.cc builds and discovers, index/soci_push.cc
// publishes): the OCI manifest that lists the zTOCs of an image's layers, how it is
// built from an image in a registry, published (v2: next to the image in a new image index;
// v1: as a referrer of the image manifest) and found again. Free functions over a
// RegistryClient (thread-safe), holding no state of their own.

// Artifact types (the media type of the index manifest's empty config).
inline constexpr std::string_view kSociIndexV2 = "application/vnd.amazon.soci.index.v2+json";
inline constexpr std::string_view kSociIndexV1 = "application/vnd.amazon.soci.index.v1+json";
// Media type of a zTOC blob in the index manifest.
inline constexpr std::string_view kZtocMediaType = "application/octet-stream";
// Annotations of the zTOC descriptors.
inline constexpr std::string_view kAnnotationLayerDigest = "com.amazon.soci.image-layer-digest";
inline constexpr std::string_view kAnnotationLayerMediaType =
    "com.amazon.soci.image-layer-mediaType";
inline constexpr std::string_view kAnnotationSpanSize = "com.amazon.soci.span-size";
inline constexpr std::string_view kAnnotationDisableXattrs = "com.amazon.soci.disable-xattrs";
// Annotation of the index manifest.
inline constexpr std::string_view kAnnotationBuildTool = "com.amazon.soci.build-tool-identifier";
// v2: on the image manifest (its SOCI index) and on the index's entry in the image index
// (the image manifest it serves).
inline constexpr std::string_view kAnnotationIndexDigest = "com.amazon.soci.index-digest";
inline constexpr std::string_view kAnnotationImageManifestDigest =
    "com.amazon.soci.image-manifest-digest";
// The empty JSON blob "{}" used as the index manifest's config.
inline constexpr std::string_view kEmptyJson = "{}";

enum class SociVersion { kV1, kV2 };

struct SociIndexOptions {
  int64_t span_size = kDefaultSpanSize;
  // Layers whose compressed blob is smaller get no zTOC.
  int64_t min_layer_size = kDefaultMinLayerSize;
  SociVersion version = SociVersion::kV2;
  std::string build_tool_identifier = "slipstream";
  remote::Platform platform;  // empty os = this host's platform
  // Called on the building thread as each layer streams through the zTOC builder: the layer
  // and how many of its bytes were read so far (for progress bars). Optional.
  std::function<void(const remote::Descriptor& layer, int64_t bytes_read)> on_progress;
};

// One zTOC of a SOCI index: its serialized bytes, its descriptor in the index manifest and
// what it contains.
struct BuiltZtoc {
  remote::Descriptor descriptor;  // octet-stream blob with the three layer annotations
  remote::Descriptor layer;       // the image layer it indexes
  std::string bytes;              // SerializeZtoc output
  int64_t spans = 0;
  int64_t entries = 0;
};

// A SOCI index built for one image manifest, not yet pushed. A plain value type.
struct SociIndex {
  SociVersion version = SociVersion::kV2;
  remote::Manifest manifest;     // the index manifest
  std::string manifest_json;     // the bytes to push (manifest.ToJson())
  Digest manifest_digest;
  std::vector<BuiltZtoc> ztocs;  // in layer order; layers without a zTOC are absent
  remote::RegistryClient::ResolvedImage image;  // the image it indexes
};

// Resolves `image` (through its index for options.platform), streams every gzip or tar layer
// of at least min_layer_size once through BuildZtoc, checking the layer's digest on the way
// (zstd layers and small ones get no zTOC), and assembles the index manifest: config = empty
// descriptor typed kSociIndexV2 (or V1, with `subject` = the image manifest), layers = zTOC
// descriptors, build-tool annotation. DataLoss when a layer does not match its digest; errors
// of the registry and of the zTOC builder, annotated with the layer.
absl::StatusOr<SociIndex> BuildSociIndex(remote::RegistryClient& client,
                                         const remote::Reference& image,
                                         const SociIndexOptions& options);

// What PushSociIndexV2 wrote.
struct ConvertedImage {
  Digest index_manifest_digest;  // the SOCI index manifest
  Digest image_manifest_digest;  // the new image manifest carrying kAnnotationIndexDigest
  Digest image_index_digest;     // the new image index, tagged as `destination`
};

// Publishes a v2 index: the zTOCs, the empty config and the index manifest (by digest), a new
// image manifest annotated with kAnnotationIndexDigest, and a new image index (the source
// index's other entries kept) listing it and the SOCI index manifest (artifactType, platform,
// kAnnotationImageManifestDigest), pushed under destination's tag. The image's blobs are
// copied when `destination` is another repository. InvalidArgument when `index` is not v2
// or `destination` has no tag.
absl::StatusOr<ConvertedImage> PushSociIndexV2(remote::RegistryClient& client,
                                               const SociIndex& index,
                                               const remote::Reference& destination);

// Publishes a v1 index into the image's repository: zTOCs, empty config, index manifest by
// digest, then adds it to the referrers tag "sha256-<hex of the image manifest>" (an image
// index of referrers, as OCI's referrers tag schema says) for registries without the
// referrers API. Returns the index manifest digest. InvalidArgument when `index` is not v1.
absl::StatusOr<Digest> PushSociIndexV1(remote::RegistryClient& client, const SociIndex& index);

// A SOCI index manifest found for an image.
struct DiscoveredIndex {
  SociVersion version = SociVersion::kV2;
  Digest digest;
  remote::Manifest manifest;
  std::string body;    // the manifest bytes as the registry sent them
  std::string source;  // "explicit", "annotation", "referrers" or "referrers-tag"
  remote::RegistryClient::ResolvedImage image;

  // The zTOC descriptors (the manifest's layers typed kZtocMediaType).
  std::vector<remote::Descriptor> Ztocs() const;
  // The zTOC descriptor of image layer `layer`, or nullptr.
  const remote::Descriptor* ZtocFor(const Digest& layer) const;
};

// Finds the SOCI index of `image` for `platform`: the manifest `explicit_digest` names when
// set, else the image manifest's kAnnotationIndexDigest (v2), else the referrers API (v1),
// else the referrers tag. NotFound when there is none; InvalidArgument when the manifest
// found is not a SOCI index.
absl::StatusOr<DiscoveredIndex> DiscoverSociIndex(remote::RegistryClient& client,
                                                  const remote::Reference& image,
                                                  const remote::Platform& platform,
                                                  std::optional<Digest> explicit_digest = {});

// Fetches a zTOC blob of `repo` and parses it (ParseZtoc: validated, untrusted input). With
// `raw`, the blob's bytes (digest-verified) are also handed back, e.g. to be stored as is.
absl::StatusOr<Ztoc> FetchZtoc(remote::RegistryClient& client, const remote::Reference& repo,
                               const remote::Descriptor& ztoc, std::string* raw = nullptr);

// "sha256-<hex>": the OCI referrers tag of `subject`.
std::string ReferrersTag(const Digest& subject);

}  // namespace slipstream::index
