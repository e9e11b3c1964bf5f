// SPDX-License-Identifier: Apache-2.0
// RegistryClient: manifests, indexes and image resolution.
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "remote/media_types.h"
#include "remote/registry_client.h"
#include "remote/registry_client_internal.h"
#include "remote/registry_client_util.h"

namespace slipstream::remote {
namespace {

// The media type of a manifest body: its mediaType field, else guessed from its shape.
std::string BodyMediaType(const std::string& body) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    auto it = doc.find("mediaType");
    if (it != doc.end() && it->is_string()) return it->get<std::string>();
  }
  absl::StatusOr<ManifestKind> kind = DetectManifestKind(body);
  if (!kind.ok()) return "";
  return std::string(*kind == ManifestKind::kIndex ? kOciIndex : kOciManifest);
}

}  // namespace

absl::StatusOr<RegistryClient::ManifestResult> RegistryClient::FetchManifest(
    const Reference& ref, std::string_view what) {
  std::optional<Digest> want;
  if (!ref.digest.empty()) {
    SS_ASSIGN_OR_RETURN(Digest d, Digest::Parse(ref.digest));
    want = d;
  }
  Call call;
  call.method = "GET";
  call.repo = &ref;
  // A tag needs a host trusted to resolve names; content by digest can come from any mirror.
  call.cap = want ? kCapPull : kCapResolve;
  call.what = std::string(what);
  call.max_body = kMaxManifestBytes;
  const std::string object = ref.TagOrDigest();
  call.build = [&](const RegistryHost& host) {
    HttpRequest req;
    req.url = absl::StrCat(host.BaseUrl(), "/", ref.repository, "/manifests/", object);
    req.headers.emplace_back("Accept", ManifestAcceptHeader());
    return req;
  };
  SS_ASSIGN_OR_RETURN(Exchange ex, Execute(call));
  const std::string context = internal::Context("GET", ex.host, ref, what);
  if (ex.response.status != 200) return internal::HttpError(context, ex.response);
  int64_t announced = -1;
  if (util::ParseInt64(ex.response.Header("content-length"), &announced) &&
      announced > static_cast<int64_t>(kMaxManifestBytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(context, ": manifest of ", announced, " bytes exceeds the limit of ",
                     kMaxManifestBytes));
  }
  if (ex.response.body.size() > kMaxManifestBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(context, ": manifest exceeds ",
                                                     kMaxManifestBytes, " bytes"));
  }

  ManifestResult result;
  result.body = std::move(ex.response.body);
  result.digest = Sha256Of(result.body);
  if (want && *want != result.digest) {
    return absl::DataLossError(absl::StrCat(context, ": content has digest ",
                                            result.digest.str(), ", want ", want->str()));
  }
  std::string header_digest = ex.response.Header("docker-content-digest");
  if (!header_digest.empty()) {
    absl::StatusOr<Digest> announced_digest = Digest::Parse(header_digest);
    // Only sha256 can be compared with what we computed; other algorithms are rare.
    if (announced_digest.ok() && announced_digest->algorithm() == "sha256" &&
        *announced_digest != result.digest) {
      return absl::DataLossError(absl::StrCat(context, ": Docker-Content-Digest says ",
                                              header_digest, " but the body hashes to ",
                                              result.digest.str()));
    }
  }
  std::string content_type = ex.response.Header("content-type");
  content_type = std::string(util::Strip(content_type.substr(0, content_type.find(';'))));
  if (IsIndexMediaType(content_type) || IsManifestMediaType(content_type)) {
    result.media_type = content_type;
  } else {
    // Some registries and static mirrors answer application/json or octet-stream.
    result.media_type = BodyMediaType(result.body);
  }
  return result;
}

absl::StatusOr<RegistryClient::ManifestResult> RegistryClient::GetManifest(const Reference& ref) {
  return FetchManifest(ref, absl::StrCat("manifest ", ref.TagOrDigest()));
}

absl::StatusOr<RegistryClient::ResolvedImage> RegistryClient::ResolveImage(
    const Reference& ref, const Platform& platform) {
  SS_ASSIGN_OR_RETURN(ManifestResult top, GetManifest(ref));
  ResolvedImage out;
  out.ref = ref.WithDigest(top.digest.str());
  ManifestResult manifest;
  if (IsIndexMediaType(top.media_type)) {
    absl::StatusOr<ImageIndex> index = ImageIndex::Parse(top.body);
    if (!index.ok()) return Annotate(index.status(), "index " + out.ref.String());
    absl::StatusOr<Descriptor> chosen = SelectPlatform(*index, platform);
    if (!chosen.ok()) return Annotate(chosen.status(), out.ref.String());
    out.index_digest = top.digest;
    Reference child = out.ref.WithDigest(chosen->digest.str());
    SS_ASSIGN_OR_RETURN(manifest, GetManifest(child));
    if (IsIndexMediaType(manifest.media_type)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index ", out.ref.String(), " entry ", chosen->digest.str(), " is another index"));
    }
  } else {
    manifest = std::move(top);
  }
  out.manifest_digest = manifest.digest;
  absl::StatusOr<Manifest> parsed = Manifest::Parse(manifest.body);
  if (!parsed.ok()) {
    return Annotate(parsed.status(), "manifest " + out.manifest_digest.str());
  }
  out.manifest = *std::move(parsed);
  out.manifest_body = std::move(manifest.body);
  if (out.manifest.config.size > static_cast<int64_t>(kMaxManifestBytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "config ", out.manifest.config.digest.str(), " of ", out.manifest.config.size,
        " bytes exceeds ", kMaxManifestBytes));
  }
  SS_ASSIGN_OR_RETURN(out.config_body, ReadBlob(ref, out.manifest.config));
  absl::StatusOr<ImageConfig> config = ImageConfig::Parse(out.config_body);
  if (!config.ok()) return Annotate(config.status(), "config " + out.manifest.config.digest.str());
  out.config = *std::move(config);
  return out;
}

}  // namespace slipstream::remote
