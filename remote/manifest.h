// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "remote/platform.h"

namespace slipstream::remote {

// Manifests and indexes larger than this are refused (ResourceExhausted), as registries do.
inline constexpr size_t kMaxManifestBytes = 4 << 20;
// At most this many layers in a manifest or entries in an index.
inline constexpr size_t kMaxManifestEntries = 10000;

// An OCI content descriptor: what a manifest says about one blob or sub-manifest.
// A plain value type; thread-compatible.
struct Descriptor {
  std::string media_type;
  Digest digest;
  int64_t size = 0;
  std::vector<std::string> urls;                   // foreign/nondistributable sources
  std::map<std::string, std::string> annotations;
  std::optional<Platform> platform;                // index entries only
  std::string artifact_type;

  friend bool operator==(const Descriptor&, const Descriptor&) = default;
};

// An OCI image manifest or Docker schema 2 manifest. A plain value type; thread-compatible.
struct Manifest {
  int schema_version = 2;
  std::string media_type;     // may be empty in OCI manifests
  std::string artifact_type;
  Descriptor config;
  std::vector<Descriptor> layers;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  // Parses and validates a manifest body. InvalidArgument naming the offending field for
  // malformed JSON, schemaVersion other than 2, a mediaType that is not a manifest type, a
  // descriptor without a valid digest or with a negative size, or more than
  // kMaxManifestEntries layers. ResourceExhausted over kMaxManifestBytes. Unimplemented for
  // Docker schema 1. A body that is an index gives InvalidArgument saying so.
  static absl::StatusOr<Manifest> Parse(std::string_view json);

  // Compact, deterministic JSON (keys in a fixed order, empty optional fields omitted): the
  // bytes we push and hash. Parse(ToJson()) yields an equal Manifest. Fields Manifest does
  // not model are dropped, so never re-serialize a pulled manifest to compute its digest:
  // hash the bytes the registry sent.
  std::string ToJson() const;

  friend bool operator==(const Manifest&, const Manifest&) = default;
};

// An OCI image index or Docker manifest list. A plain value type; thread-compatible.
struct ImageIndex {
  int schema_version = 2;
  std::string media_type;
  std::string artifact_type;
  std::vector<Descriptor> manifests;
  std::optional<Descriptor> subject;
  std::map<std::string, std::string> annotations;

  // Like Manifest::Parse for indexes; a body that is a manifest gives InvalidArgument.
  static absl::StatusOr<ImageIndex> Parse(std::string_view json);
  // Compact deterministic JSON; Parse(ToJson()) round-trips.
  std::string ToJson() const;

  friend bool operator==(const ImageIndex&, const ImageIndex&) = default;
};

// The parts slipstream uses of an image config blob. A plain value type; thread-compatible.
struct ImageConfig {
  Platform platform;               // os, architecture, variant, os.version
  std::vector<Digest> diff_ids;    // rootfs.diff_ids: digests of the uncompressed layers
  std::string created;             // RFC 3339 as written, may be empty
  std::vector<std::string> env, entrypoint, cmd;
  std::string working_dir, user;

  // Parses a config blob. InvalidArgument naming the field for malformed JSON, a missing or
  // non-"layers" rootfs type, or an invalid diff_id; ResourceExhausted over kMaxManifestBytes.
  static absl::StatusOr<ImageConfig> Parse(std::string_view json);
};

// The kind of a manifest body as announced by its mediaType field (or, when absent, guessed
// from its shape: "manifests" → index, "layers"/"config" → manifest).
enum class ManifestKind { kManifest, kIndex };
// InvalidArgument for malformed JSON or an unknown mediaType; Unimplemented for schema 1.
absl::StatusOr<ManifestKind> DetectManifestKind(std::string_view json);

// True for attestation or other non-image entries of an index (annotation
// "vnd.docker.reference.type", e.g. "attestation-manifest").
bool IsAttestation(const Descriptor& entry);

// The best manifest for `want` in `index`: the first exact platform match
// (Platform::ExactlyMatches), else the most capable compatible one (Platform::Matches; e.g.
// arm/v7 before arm/v6 for an arm/v8 host). Attestation entries are skipped. An index whose
// only image entry has no platform yields that entry. NotFound listing the platforms present
// when nothing fits.
absl::StatusOr<Descriptor> SelectPlatform(const ImageIndex& index, const Platform& want);

}  // namespace slipstream::remote
