// SPDX-License-Identifier: Apache-2.0
#include "remote/manifest.h"

#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/strings.h"
#include "remote/media_types.h"

namespace slipstream::remote {
namespace {

using Json = nlohmann::json;
// Ordered output keeps the field order of the specs' examples, so what we push looks like
// what other tools push; annotations come from std::map, hence sorted: deterministic.
using OrderedJson = nlohmann::ordered_json;

std::string Clip(absl::string_view text) {
  constexpr size_t kMax = 200;
  std::string out = absl::CHexEscape(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  return out;
}

absl::Status FieldError(absl::string_view what, absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": field ", field, ": ", why));
}

// Parses without exceptions: the input comes from registries and must never throw.
absl::StatusOr<Json> ParseObject(absl::string_view text, absl::string_view what) {
  if (text.size() > kMaxManifestBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(what, " of ", text.size(),
                                                     " bytes exceeds the limit of ",
                                                     kMaxManifestBytes));
  }
  Json j;
  try {
    j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception&) {
    j = Json(Json::value_t::discarded);
  }
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(what, ": malformed JSON"));
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(what, ": not a JSON object"));
  return j;
}

// Looks up `key`; a JSON null counts as absent.
const Json* Find(const Json& obj, absl::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status GetString(const Json& obj, absl::string_view key, absl::string_view what,
                       absl::string_view path, bool required, std::string* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) {
    if (required) return FieldError(what, path, "missing");
    return absl::OkStatus();
  }
  if (!v->is_string()) return FieldError(what, path, "not a string");
  *out = v->get<std::string>();
  return absl::OkStatus();
}

absl::Status GetStringArray(const Json& obj, absl::string_view key, absl::string_view what,
                            absl::string_view path, std::vector<std::string>* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_array()) return FieldError(what, path, "not an array");
  out->clear();
  for (const Json& item : *v) {
    if (!item.is_string()) return FieldError(what, path, "not an array of strings");
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status GetStringMap(const Json& obj, absl::string_view key, absl::string_view what,
                          absl::string_view path, std::map<std::string, std::string>* out) {
  const Json* v = Find(obj, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_object()) return FieldError(what, path, "not an object");
  for (const auto& [k, item] : v->items()) {
    if (!item.is_string()) {
      return FieldError(what, absl::StrCat(path, ".", Clip(k)), "not a string");
    }
    (*out)[k] = item.get<std::string>();
  }
  return absl::OkStatus();
}

absl::Status GetDigest(const Json& obj, absl::string_view key, absl::string_view what,
                       absl::string_view path, Digest* out) {
  std::string text;
  SS_RETURN_IF_ERROR(GetString(obj, key, what, path, /*required=*/true, &text));
  auto digest = Digest::Parse(text);
  if (!digest.ok()) return FieldError(what, path, absl::StrCat("invalid digest \"", Clip(text), "\""));
  *out = *std::move(digest);
  return absl::OkStatus();
}

absl::Status ParsePlatform(const Json& j, absl::string_view what, const std::string& path,
                           Platform* out) {
  if (!j.is_object()) return FieldError(what, path, "not an object");
  SS_RETURN_IF_ERROR(GetString(j, "os", what, path + ".os", true, &out->os));
  SS_RETURN_IF_ERROR(
      GetString(j, "architecture", what, path + ".architecture", true, &out->architecture));
  SS_RETURN_IF_ERROR(GetString(j, "variant", what, path + ".variant", false, &out->variant));
  SS_RETURN_IF_ERROR(
      GetString(j, "os.version", what, path + ".os.version", false, &out->os_version));
  return absl::OkStatus();
}

absl::StatusOr<Descriptor> ParseDescriptor(const Json& j, absl::string_view what,
                                           const std::string& path) {
  if (!j.is_object()) return FieldError(what, path, "not an object");
  Descriptor d;
  SS_RETURN_IF_ERROR(GetString(j, "mediaType", what, path + ".mediaType", true, &d.media_type));
  if (d.media_type.empty()) return FieldError(what, path + ".mediaType", "empty");
  SS_RETURN_IF_ERROR(GetDigest(j, "digest", what, path + ".digest", &d.digest));
  const Json* size = Find(j, "size");
  if (size == nullptr) return FieldError(what, path + ".size", "missing");
  if (size->is_number_unsigned()) {
    uint64_t v = size->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return FieldError(what, path + ".size", "too large");
    }
    d.size = static_cast<int64_t>(v);
  } else if (size->is_number_integer()) {
    d.size = size->get<int64_t>();
    if (d.size < 0) return FieldError(what, path + ".size", "negative");
  } else {
    return FieldError(what, path + ".size", "not an integer");
  }
  SS_RETURN_IF_ERROR(GetStringArray(j, "urls", what, path + ".urls", &d.urls));
  SS_RETURN_IF_ERROR(
      GetStringMap(j, "annotations", what, path + ".annotations", &d.annotations));
  SS_RETURN_IF_ERROR(
      GetString(j, "artifactType", what, path + ".artifactType", false, &d.artifact_type));
  if (const Json* p = Find(j, "platform"); p != nullptr) {
    Platform platform;
    SS_RETURN_IF_ERROR(ParsePlatform(*p, what, path + ".platform", &platform));
    d.platform = std::move(platform);
  }
  return d;
}

absl::Status CheckSchemaVersion(const Json& j, absl::string_view what) {
  const Json* v = Find(j, "schemaVersion");
  if (v == nullptr) return FieldError(what, "schemaVersion", "missing");
  if (!v->is_number_integer()) return FieldError(what, "schemaVersion", "not an integer");
  if (v->get<int64_t>() == 1) {
    return absl::UnimplementedError(
        "Docker image manifest schema 1 is not supported (deprecated and removed from "
        "registries); push the image again with a current client to get schema 2");
  }
  if (v->get<int64_t>() != 2) return FieldError(what, "schemaVersion", "must be 2");
  return absl::OkStatus();
}

absl::StatusOr<ManifestKind> KindOf(const Json& j) {
  std::string media_type;
  if (const Json* v = Find(j, "mediaType"); v != nullptr) {
    if (!v->is_string()) return FieldError("manifest", "mediaType", "not a string");
    media_type = v->get<std::string>();
  }
  if (media_type == kDockerManifestSchema1 || media_type == kDockerManifestSchema1Signed ||
      (media_type.empty() && j.contains("fsLayers"))) {
    return absl::UnimplementedError(
        "Docker image manifest schema 1 is not supported (deprecated and removed from "
        "registries); push the image again with a current client to get schema 2");
  }
  if (IsIndexMediaType(media_type)) return ManifestKind::kIndex;
  if (IsManifestMediaType(media_type)) return ManifestKind::kManifest;
  if (!media_type.empty()) {
    return FieldError("manifest", "mediaType",
                      absl::StrCat("unsupported media type \"", Clip(media_type), "\""));
  }
  // OCI allows omitting mediaType; the shape tells the kind.
  if (j.contains("manifests")) return ManifestKind::kIndex;
  if (j.contains("config") || j.contains("layers")) return ManifestKind::kManifest;
  return absl::InvalidArgumentError(
      "manifest: neither an image manifest nor an index (no mediaType, config or manifests)");
}

absl::Status ParseDescriptorList(const Json& j, absl::string_view key, absl::string_view what,
                                 std::vector<Descriptor>* out) {
  const Json* list = Find(j, key);
  if (list == nullptr) return FieldError(what, key, "missing");
  if (!list->is_array()) return FieldError(what, key, "not an array");
  if (list->size() > kMaxManifestEntries) {
    return FieldError(what, key,
                      absl::StrCat(list->size(), " entries, more than ", kMaxManifestEntries));
  }
  out->reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    SS_ASSIGN_OR_RETURN(Descriptor d,
                        ParseDescriptor((*list)[i], what, absl::StrCat(key, "[", i, "]")));
    out->push_back(std::move(d));
  }
  return absl::OkStatus();
}

// The fields that manifests and indexes share.
template <typename T>
absl::Status ParseCommon(const Json& j, absl::string_view what, T* out) {
  SS_RETURN_IF_ERROR(GetString(j, "mediaType", what, "mediaType", false, &out->media_type));
  SS_RETURN_IF_ERROR(
      GetString(j, "artifactType", what, "artifactType", false, &out->artifact_type));
  SS_RETURN_IF_ERROR(GetStringMap(j, "annotations", what, "annotations", &out->annotations));
  if (const Json* s = Find(j, "subject"); s != nullptr) {
    SS_ASSIGN_OR_RETURN(Descriptor subject, ParseDescriptor(*s, what, "subject"));
    out->subject = std::move(subject);
  }
  return absl::OkStatus();
}

OrderedJson PlatformJson(const Platform& p) {
  OrderedJson j = OrderedJson::object();
  j["architecture"] = p.architecture;
  j["os"] = p.os;
  if (!p.os_version.empty()) j["os.version"] = p.os_version;
  if (!p.variant.empty()) j["variant"] = p.variant;
  return j;
}

OrderedJson DescriptorJson(const Descriptor& d) {
  OrderedJson j = OrderedJson::object();
  j["mediaType"] = d.media_type;
  if (!d.artifact_type.empty()) j["artifactType"] = d.artifact_type;
  j["digest"] = d.digest.str();
  j["size"] = d.size;
  if (!d.urls.empty()) j["urls"] = d.urls;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  if (d.platform.has_value()) j["platform"] = PlatformJson(*d.platform);
  return j;
}

std::string Dump(const OrderedJson& j) {
  // Replace invalid UTF-8 rather than throw: values built in code are not validated.
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace

absl::StatusOr<ManifestKind> DetectManifestKind(std::string_view json) {
  SS_ASSIGN_OR_RETURN(Json j, ParseObject(AV(json), "manifest"));
  return KindOf(j);
}

absl::StatusOr<Manifest> Manifest::Parse(std::string_view json) {
  constexpr absl::string_view kWhat = "manifest";
  SS_ASSIGN_OR_RETURN(Json j, ParseObject(AV(json), kWhat));
  SS_ASSIGN_OR_RETURN(ManifestKind kind, KindOf(j));
  if (kind != ManifestKind::kManifest) {
    return absl::InvalidArgumentError("manifest: is an image index, not an image manifest");
  }
  SS_RETURN_IF_ERROR(CheckSchemaVersion(j, kWhat));
  Manifest m;
  SS_RETURN_IF_ERROR(ParseCommon(j, kWhat, &m));
  const Json* config = Find(j, "config");
  if (config == nullptr) return FieldError(kWhat, "config", "missing");
  SS_ASSIGN_OR_RETURN(m.config, ParseDescriptor(*config, kWhat, "config"));
  SS_RETURN_IF_ERROR(ParseDescriptorList(j, "layers", kWhat, &m.layers));
  return m;
}

std::string Manifest::ToJson() const {
  OrderedJson j = OrderedJson::object();
  j["schemaVersion"] = schema_version;
  if (!media_type.empty()) j["mediaType"] = media_type;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  j["config"] = DescriptorJson(config);
  OrderedJson layer_list = OrderedJson::array();
  for (const Descriptor& d : layers) layer_list.push_back(DescriptorJson(d));
  j["layers"] = std::move(layer_list);
  if (subject.has_value()) j["subject"] = DescriptorJson(*subject);
  if (!annotations.empty()) j["annotations"] = annotations;
  return Dump(j);
}

absl::StatusOr<ImageIndex> ImageIndex::Parse(std::string_view json) {
  constexpr absl::string_view kWhat = "image index";
  SS_ASSIGN_OR_RETURN(Json j, ParseObject(AV(json), kWhat));
  SS_ASSIGN_OR_RETURN(ManifestKind kind, KindOf(j));
  if (kind != ManifestKind::kIndex) {
    return absl::InvalidArgumentError("image index: is an image manifest, not an index");
  }
  SS_RETURN_IF_ERROR(CheckSchemaVersion(j, kWhat));
  ImageIndex index;
  SS_RETURN_IF_ERROR(ParseCommon(j, kWhat, &index));
  SS_RETURN_IF_ERROR(ParseDescriptorList(j, "manifests", kWhat, &index.manifests));
  return index;
}

std::string ImageIndex::ToJson() const {
  OrderedJson j = OrderedJson::object();
  j["schemaVersion"] = schema_version;
  if (!media_type.empty()) j["mediaType"] = media_type;
  if (!artifact_type.empty()) j["artifactType"] = artifact_type;
  OrderedJson list = OrderedJson::array();
  for (const Descriptor& d : manifests) list.push_back(DescriptorJson(d));
  j["manifests"] = std::move(list);
  if (subject.has_value()) j["subject"] = DescriptorJson(*subject);
  if (!annotations.empty()) j["annotations"] = annotations;
  return Dump(j);
}

absl::StatusOr<ImageConfig> ImageConfig::Parse(std::string_view json) {
  constexpr absl::string_view kWhat = "image config";
  SS_ASSIGN_OR_RETURN(Json j, ParseObject(AV(json), kWhat));
  ImageConfig c;
  SS_RETURN_IF_ERROR(GetString(j, "os", kWhat, "os", true, &c.platform.os));
  SS_RETURN_IF_ERROR(
      GetString(j, "architecture", kWhat, "architecture", true, &c.platform.architecture));
  SS_RETURN_IF_ERROR(GetString(j, "variant", kWhat, "variant", false, &c.platform.variant));
  SS_RETURN_IF_ERROR(
      GetString(j, "os.version", kWhat, "os.version", false, &c.platform.os_version));
  SS_RETURN_IF_ERROR(GetString(j, "created", kWhat, "created", false, &c.created));

  const Json* rootfs = Find(j, "rootfs");
  if (rootfs == nullptr) return FieldError(kWhat, "rootfs", "missing");
  if (!rootfs->is_object()) return FieldError(kWhat, "rootfs", "not an object");
  std::string type;
  SS_RETURN_IF_ERROR(GetString(*rootfs, "type", kWhat, "rootfs.type", true, &type));
  if (type != "layers") return FieldError(kWhat, "rootfs.type", "must be \"layers\"");
  const Json* ids = Find(*rootfs, "diff_ids");
  if (ids == nullptr) return FieldError(kWhat, "rootfs.diff_ids", "missing");
  if (!ids->is_array()) return FieldError(kWhat, "rootfs.diff_ids", "not an array");
  if (ids->size() > kMaxManifestEntries) {
    return FieldError(kWhat, "rootfs.diff_ids", "too many entries");
  }
  for (size_t i = 0; i < ids->size(); ++i) {
    std::string path = absl::StrCat("rootfs.diff_ids[", i, "]");
    const Json& id = (*ids)[i];
    if (!id.is_string()) return FieldError(kWhat, path, "not a string");
    auto digest = Digest::Parse(id.get<std::string>());
    if (!digest.ok()) return FieldError(kWhat, path, "invalid digest");
    c.diff_ids.push_back(*std::move(digest));
  }

  // The runtime config is optional (and null in some scratch images).
  if (const Json* config = Find(j, "config"); config != nullptr) {
    if (!config->is_object()) return FieldError(kWhat, "config", "not an object");
    SS_RETURN_IF_ERROR(GetStringArray(*config, "Env", kWhat, "config.Env", &c.env));
    SS_RETURN_IF_ERROR(
        GetStringArray(*config, "Entrypoint", kWhat, "config.Entrypoint", &c.entrypoint));
    SS_RETURN_IF_ERROR(GetStringArray(*config, "Cmd", kWhat, "config.Cmd", &c.cmd));
    SS_RETURN_IF_ERROR(
        GetString(*config, "WorkingDir", kWhat, "config.WorkingDir", false, &c.working_dir));
    SS_RETURN_IF_ERROR(GetString(*config, "User", kWhat, "config.User", false, &c.user));
  }
  return c;
}

bool IsAttestation(const Descriptor& entry) {
  return entry.annotations.count("vnd.docker.reference.type") > 0;
}

absl::StatusOr<Descriptor> SelectPlatform(const ImageIndex& index, const Platform& want) {
  const Descriptor* exact = nullptr;
  const Descriptor* compatible = nullptr;
  const Descriptor* unlabeled = nullptr;
  size_t unlabeled_count = 0;
  std::vector<std::string> present;
  for (const Descriptor& entry : index.manifests) {
    if (IsAttestation(entry)) continue;
    if (!entry.platform.has_value()) {
      // Artifacts (signatures, SOCI indexes) sit in indexes without a platform.
      if (entry.artifact_type.empty() &&
          (IsManifestMediaType(entry.media_type) || IsIndexMediaType(entry.media_type))) {
        unlabeled = &entry;
        ++unlabeled_count;
      }
      continue;
    }
    const Platform& p = *entry.platform;
    if (present.size() < 32) present.push_back(p.String());
    if (exact == nullptr && want.ExactlyMatches(p)) exact = &entry;
    if (!want.Matches(p)) continue;
    // Among compatible entries prefer the most capable one: p beats the current choice when
    // p, taken as a wanted platform, accepts it but not the other way round.
    if (compatible == nullptr ||
        (p.Matches(*compatible->platform) && !compatible->platform->Matches(p))) {
      compatible = &entry;
    }
  }
  if (exact != nullptr) return *exact;
  if (compatible != nullptr) return *compatible;
  // An index whose only image entry carries no platform: nothing to choose between.
  if (present.empty() && unlabeled_count == 1) return *unlabeled;
  return absl::NotFoundError(absl::StrCat(
      "no manifest for platform ", want.String(), " in the image index (platforms present: ",
      present.empty() ? "none" : absl::StrJoin(present, ", "), ")"));
}

}  // namespace slipstream::remote
