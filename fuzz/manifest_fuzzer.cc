// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the registry JSON parsers (remote/manifest.h): every input goes to
// Manifest::Parse, ImageIndex::Parse, ImageConfig::Parse and DetectManifestKind, as a
// registry's answer may be any of them. What parses is checked the way slipstream uses it:
// manifests and indexes re-serialize and parse back equal (we push ToJson() bytes), agree
// with DetectManifestKind, stay within the entry limit; a platform picked from an index is
// one of its entries; a manifest read as a SOCI index (index/soci_index.h: the zTOC
// descriptors, the zTOC of a layer) gives the zTOC of every layer it annotates. Seeds:
// fuzz/corpus/manifest_fuzzer, OCI and Docker manifests, indexes, configs and SOCI indexes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "index/soci_index.h"
#include "remote/manifest.h"
#include "remote/platform.h"

namespace slipstream::fuzz {
namespace {

void CheckDescriptor(const remote::Descriptor& d) {
  FUZZ_CHECK(d.size >= 0);
  FUZZ_CHECK(Digest::Parse(d.digest.str()).ok());
}

void CheckManifest(const remote::Manifest& m, std::string_view json) {
  FUZZ_CHECK(m.schema_version == 2);
  FUZZ_CHECK(m.layers.size() <= remote::kMaxManifestEntries);
  CheckDescriptor(m.config);
  for (const remote::Descriptor& d : m.layers) CheckDescriptor(d);
  absl::StatusOr<remote::ManifestKind> kind = remote::DetectManifestKind(json);
  FUZZ_CHECK(kind.ok() && *kind == remote::ManifestKind::kManifest);
  const std::string out = m.ToJson();
  absl::StatusOr<remote::Manifest> again = remote::Manifest::Parse(out);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == m);
  FUZZ_CHECK(again->ToJson() == out);

  // The same bytes as a SOCI index manifest.
  index::DiscoveredIndex soci;
  soci.manifest = m;
  for (const remote::Descriptor& z : soci.Ztocs()) FUZZ_CHECK(z.media_type == index::kZtocMediaType);
  for (const remote::Descriptor& d : m.layers) {
    auto it = d.annotations.find(std::string(index::kAnnotationLayerDigest));
    if (d.media_type != index::kZtocMediaType || it == d.annotations.end()) continue;
    absl::StatusOr<Digest> layer = Digest::Parse(it->second);
    if (!layer.ok()) continue;
    const remote::Descriptor* found = soci.ZtocFor(*layer);
    FUZZ_CHECK(found != nullptr && found->annotations.at(std::string(index::kAnnotationLayerDigest)) ==
                                       layer->str());
  }
}

void CheckIndex(const remote::ImageIndex& index, std::string_view json) {
  FUZZ_CHECK(index.schema_version == 2);
  FUZZ_CHECK(index.manifests.size() <= remote::kMaxManifestEntries);
  for (const remote::Descriptor& d : index.manifests) CheckDescriptor(d);
  absl::StatusOr<remote::ManifestKind> kind = remote::DetectManifestKind(json);
  FUZZ_CHECK(kind.ok() && *kind == remote::ManifestKind::kIndex);
  const std::string out = index.ToJson();
  absl::StatusOr<remote::ImageIndex> again = remote::ImageIndex::Parse(out);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == index);
  FUZZ_CHECK(again->ToJson() == out);
  for (std::string_view want : {"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64"}) {
    absl::StatusOr<remote::Platform> platform = remote::Platform::Parse(want);
    FUZZ_CHECK(platform.ok());
    absl::StatusOr<remote::Descriptor> picked = remote::SelectPlatform(index, *platform);
    if (!picked.ok()) continue;
    bool listed = false;
    for (const remote::Descriptor& d : index.manifests) listed |= d == *picked;
    FUZZ_CHECK(listed);
    FUZZ_CHECK(!remote::IsAttestation(*picked));
  }
}

void CheckConfig(const remote::ImageConfig& config) {
  for (const Digest& d : config.diff_ids) FUZZ_CHECK(Digest::Parse(d.str()).ok());
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipstream;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  if (absl::StatusOr<remote::Manifest> m = remote::Manifest::Parse(json); m.ok()) {
    fuzz::CheckManifest(*m, json);
  }
  if (absl::StatusOr<remote::ImageIndex> index = remote::ImageIndex::Parse(json); index.ok()) {
    fuzz::CheckIndex(*index, json);
  }
  if (absl::StatusOr<remote::ImageConfig> config = remote::ImageConfig::Parse(json); config.ok()) {
    fuzz::CheckConfig(*config);
  }
  (void)remote::DetectManifestKind(json);
  return 0;
}
