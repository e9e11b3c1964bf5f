// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace slipstream::remote {

// Media types of the OCI image spec and Docker's image manifest v2 schema 2, and the
// small predicates over them (header-only: they are table lookups).

// OCI image spec.
inline constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
inline constexpr std::string_view kOciConfig = "application/vnd.oci.image.config.v1+json";
inline constexpr std::string_view kOciLayer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr std::string_view kOciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr std::string_view kOciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr std::string_view kOciLayerNondistributable =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
inline constexpr std::string_view kOciLayerNondistributableGzip =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
inline constexpr std::string_view kOciLayerNondistributableZstd =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";
// The empty descriptor ("{}") used as config of artifacts.
inline constexpr std::string_view kOciEmpty = "application/vnd.oci.empty.v1+json";

// Docker image manifest v2 schema 2.
inline constexpr std::string_view kDockerManifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr std::string_view kDockerManifestList =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr std::string_view kDockerConfig = "application/vnd.docker.container.image.v1+json";
inline constexpr std::string_view kDockerLayerGzip =
    "application/vnd.docker.image.rootfs.diff.tar.gzip";
inline constexpr std::string_view kDockerLayerForeignGzip =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
// Docker schema 1 (unsupported; recognized only to give a clear error).
inline constexpr std::string_view kDockerManifestSchema1 =
    "application/vnd.docker.distribution.manifest.v1+json";
inline constexpr std::string_view kDockerManifestSchema1Signed =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// True for an OCI image index or a Docker manifest list.
inline bool IsIndexMediaType(std::string_view media_type) {
  return media_type == kOciIndex || media_type == kDockerManifestList;
}
// True for an OCI image manifest or a Docker schema 2 manifest.
inline bool IsManifestMediaType(std::string_view media_type) {
  return media_type == kOciManifest || media_type == kDockerManifest;
}

// How a layer blob is compressed.
enum class Compression { kNone, kGzip, kZstd };

// The compression of a layer with `media_type` (OCI layers, their nondistributable variants,
// Docker gzip and foreign layers). InvalidArgument naming the media type for anything else.
inline absl::StatusOr<Compression> LayerCompression(std::string_view media_type) {
  if (media_type == kOciLayer || media_type == kOciLayerNondistributable) {
    return Compression::kNone;
  }
  if (media_type == kOciLayerGzip || media_type == kOciLayerNondistributableGzip ||
      media_type == kDockerLayerGzip || media_type == kDockerLayerForeignGzip) {
    return Compression::kGzip;
  }
  if (media_type == kOciLayerZstd || media_type == kOciLayerNondistributableZstd) {
    return Compression::kZstd;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported layer media type \"", absl::CHexEscape(absl::string_view(media_type.data(), std::min<size_t>(media_type.size(), 200))), "\""));
}

// The Accept header value for manifest requests: OCI index and manifest first, then the
// Docker list and manifest (all four; registries pick what they have).
inline std::string ManifestAcceptHeader() {
  std::string out;
  for (std::string_view type : {kOciIndex, kOciManifest, kDockerManifestList, kDockerManifest}) {
    if (!out.empty()) out += ", ";
    out += type;
  }
  return out;
}

}  // namespace slipstream::remote
