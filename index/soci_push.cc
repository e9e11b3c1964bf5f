// SPDX-License-Identifier: Apache-2.0
// SOCI index manifests: publishing v2 (new image manifest + image index) and v1 (referrer).
#include <fcntl.h>

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/temp_dir.h"
#include "index/soci_index.h"
#include "remote/media_types.h"

namespace slipstream::index {
namespace {

using Json = nlohmann::ordered_json;

remote::Reference ByDigest(const remote::Reference& repo) {
  remote::Reference ref = repo;
  ref.tag.clear();
  ref.digest.clear();
  return ref;
}

// The zTOC blobs, the empty config and the index manifest, by digest.
absl::Status PushIndexManifest(remote::RegistryClient& client, const remote::Reference& repo,
                               const SociIndex& index) {
  for (const BuiltZtoc& z : index.ztocs) {
    SS_RETURN_IF_ERROR(client.PushBlob(repo, z.descriptor.digest, z.bytes));
  }
  SS_RETURN_IF_ERROR(client.PushBlob(repo, Sha256Of(kEmptyJson), kEmptyJson));
  SS_ASSIGN_OR_RETURN(Digest pushed,
                      client.PushManifest(ByDigest(repo), remote::kOciManifest,
                                          index.manifest_json));
  if (pushed != index.manifest_digest) {
    return absl::DataLossError(absl::StrCat("SOCI index pushed as ", pushed.str(), ", built as ",
                                            index.manifest_digest.str()));
  }
  return absl::OkStatus();
}

// Makes `blob` of `from` present in `to` (another repository): registries share nothing
// between repositories unless asked to mount, so download it to a temp file and upload it.
absl::Status CopyBlob(remote::RegistryClient& client, const remote::Reference& from,
                      const remote::Reference& to, const remote::Descriptor& blob) {
  SS_ASSIGN_OR_RETURN(bool present, client.BlobExists(to, blob.digest));
  if (present) return absl::OkStatus();
  SS_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("slipstream-soci-copy-"));
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(dir.Join("blob"), O_RDWR | O_CREAT | O_TRUNC, 0600));
  SS_RETURN_IF_ERROR(client.DownloadBlob(from, blob, fd.get()));
  return client.PushBlobFromFile(to, blob.digest, fd.get(), blob.size);
}

// Parses JSON we already validated (the registry's manifest bytes), keeping unknown fields
// and key order, so the new manifest differs from the old one only where we change it.
absl::StatusOr<Json> ParseKeepingOrder(const std::string& body, std::string_view what) {
  Json doc = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(AV(what), " is not a JSON object"));
  }
  return doc;
}

Json PlatformJson(const remote::Platform& p) {
  Json j = Json::object();
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  if (!p.os_version.empty()) j["os.version"] = p.os_version;
  if (!p.variant.empty()) j["variant"] = p.variant;
  return j;
}

// True for an image index entry that is a v2 SOCI index serving one of `manifests`.
bool ServesManifest(const Json& entry, std::initializer_list<Digest> manifests) {
  if (!entry.contains("artifactType") || entry["artifactType"] != kSociIndexV2) return false;
  if (!entry.contains("annotations") || !entry["annotations"].is_object()) return false;
  const Json& annotations = entry["annotations"];
  auto it = annotations.find(std::string(kAnnotationImageManifestDigest));
  if (it == annotations.end() || !it->is_string()) return false;
  for (const Digest& m : manifests) {
    if (it->get<std::string>() == m.str()) return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<ConvertedImage> PushSociIndexV2(remote::RegistryClient& client,
                                               const SociIndex& index,
                                               const remote::Reference& destination) {
  if (index.version != SociVersion::kV2) {
    return absl::InvalidArgumentError("PushSociIndexV2: the index was built as v1");
  }
  if (destination.tag.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("convert destination ", destination.String(), " needs a tag"));
  }
  const remote::RegistryClient::ResolvedImage& image = index.image;
  if (destination.Locator() != image.ref.Locator()) {
    SS_RETURN_IF_ERROR(CopyBlob(client, image.ref, destination, image.manifest.config));
    for (const remote::Descriptor& layer : image.manifest.layers) {
      SS_RETURN_IF_ERROR(CopyBlob(client, image.ref, destination, layer));
    }
  }
  SS_RETURN_IF_ERROR(PushIndexManifest(client, destination, index));

  ConvertedImage out;
  out.index_manifest_digest = index.manifest_digest;
  SS_ASSIGN_OR_RETURN(Json manifest, ParseKeepingOrder(image.manifest_body, "image manifest"));
  if (!manifest.contains("annotations") || !manifest["annotations"].is_object()) {
    manifest["annotations"] = Json::object();
  }
  manifest["annotations"][std::string(kAnnotationIndexDigest)] = index.manifest_digest.str();
  const std::string manifest_json = manifest.dump();
  const std::string manifest_type = image.manifest.media_type.empty()
                                        ? std::string(remote::kOciManifest)
                                        : image.manifest.media_type;
  SS_ASSIGN_OR_RETURN(out.image_manifest_digest,
                      client.PushManifest(ByDigest(destination), manifest_type, manifest_json));

  const remote::Platform platform = image.config.platform;
  Json entry = Json::object();
  entry["mediaType"] = manifest_type;
  entry["digest"] = out.image_manifest_digest.str();
  entry["size"] = manifest_json.size();
  entry["platform"] = PlatformJson(platform);
  Json soci_entry = Json::object();
  soci_entry["mediaType"] = std::string(remote::kOciManifest);
  soci_entry["digest"] = index.manifest_digest.str();
  soci_entry["size"] = index.manifest_json.size();
  soci_entry["artifactType"] = std::string(kSociIndexV2);
  soci_entry["platform"] = PlatformJson(platform);
  soci_entry["annotations"] = {
      {std::string(kAnnotationImageManifestDigest), out.image_manifest_digest.str()}};

  Json top;
  std::string top_type = std::string(remote::kOciIndex);
  if (image.index_digest.has_value()) {
    // Keep the source index's other platforms; replace the converted manifest's entry.
    remote::Reference src = image.ref.WithDigest(image.index_digest->str());
    SS_ASSIGN_OR_RETURN(remote::RegistryClient::ManifestResult got, client.GetManifest(src));
    SS_ASSIGN_OR_RETURN(top, ParseKeepingOrder(got.body, "image index"));
    top_type = got.media_type;
    Json kept = Json::array();
    if (top.contains("manifests") && top["manifests"].is_array()) {
      for (Json& e : top["manifests"]) {
        const bool converted = e.contains("digest") && e["digest"].is_string() &&
                               e["digest"].get<std::string>() == image.manifest_digest.str();
        // A SOCI index published earlier for this manifest (converting an already converted
        // image again) is replaced by ours, not listed twice.
        if (ServesManifest(e, {image.manifest_digest, out.image_manifest_digest})) continue;
        kept.push_back(converted ? entry : e);
      }
    }
    kept.push_back(soci_entry);
    top["manifests"] = std::move(kept);
  } else {
    top["schemaVersion"] = 2;
    top["mediaType"] = top_type;
    top["manifests"] = Json::array({entry, soci_entry});
  }
  SS_ASSIGN_OR_RETURN(out.image_index_digest,
                      client.PushManifest(destination, top_type, top.dump()));
  return out;
}

absl::StatusOr<Digest> PushSociIndexV1(remote::RegistryClient& client, const SociIndex& index) {
  if (index.version != SociVersion::kV1) {
    return absl::InvalidArgumentError("PushSociIndexV1: the index was built as v2");
  }
  const remote::Reference& repo = index.image.ref;
  SS_RETURN_IF_ERROR(PushIndexManifest(client, repo, index));

  // The referrers tag holds an image index of every referrer of the subject: add ours to
  // whatever other tools put there.
  remote::Reference tag_ref = ByDigest(repo);
  tag_ref.tag = ReferrersTag(index.image.manifest_digest);
  remote::ImageIndex referrers;
  referrers.media_type = std::string(remote::kOciIndex);
  absl::StatusOr<remote::RegistryClient::ManifestResult> existing = client.GetManifest(tag_ref);
  if (existing.ok()) {
    absl::StatusOr<remote::ImageIndex> parsed = remote::ImageIndex::Parse(existing->body);
    if (!parsed.ok()) return Annotate(parsed.status(), "referrers tag " + tag_ref.tag);
    referrers = *std::move(parsed);
  } else if (!absl::IsNotFound(existing.status())) {
    return existing.status();
  }
  for (const remote::Descriptor& d : referrers.manifests) {
    if (d.digest == index.manifest_digest) return index.manifest_digest;
  }
  remote::Descriptor entry;
  entry.media_type = std::string(remote::kOciManifest);
  entry.digest = index.manifest_digest;
  entry.size = static_cast<int64_t>(index.manifest_json.size());
  entry.artifact_type = std::string(kSociIndexV1);
  entry.annotations = index.manifest.annotations;
  referrers.manifests.push_back(std::move(entry));
  SS_RETURN_IF_ERROR(
      client.PushManifest(tag_ref, remote::kOciIndex, referrers.ToJson()).status());
  return index.manifest_digest;
}

}  // namespace slipstream::index
