// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/inspect.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cmd/cli/registry_flags.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace slipstream::cli {
namespace {

nlohmann::json DescriptorJson(const remote::Descriptor& d) {
  nlohmann::json j = {{"mediaType", d.media_type}, {"digest", d.digest.str()}, {"size", d.size}};
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

nlohmann::json ToJson(const remote::RegistryClient::ResolvedImage& img) {
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
    nlohmann::json l = DescriptorJson(img.manifest.layers[i]);
    if (i < img.config.diff_ids.size()) l["diffID"] = img.config.diff_ids[i].str();
    layers.push_back(std::move(l));
  }
  nlohmann::json j = {
      {"reference", img.ref.String()},
      {"manifestDigest", img.manifest_digest.str()},
      {"platform", img.config.platform.String()},
      {"config", DescriptorJson(img.manifest.config)},
      {"layers", std::move(layers)},
      // Raw documents are embedded parsed, so tools can read any field we do not model.
      {"manifest", nlohmann::json::parse(img.manifest_body, nullptr, false)},
      {"imageConfig", nlohmann::json::parse(img.config_body, nullptr, false)},
  };
  if (img.index_digest) j["indexDigest"] = img.index_digest->str();
  return j;
}

void PrintTable(const remote::RegistryClient::ResolvedImage& img, std::ostream& out) {
  int64_t total = 0;
  for (const auto& l : img.manifest.layers) total += l.size;
  out << "Image:      " << img.ref.String() << "\n";
  if (img.index_digest) out << "Index:      " << img.index_digest->str() << "\n";
  out << "Manifest:   " << img.manifest_digest.str() << "\n";
  out << "Platform:   " << img.config.platform.String() << "\n";
  out << "Config:     " << img.manifest.config.digest.str() << " ("
      << HumanBytes(img.manifest.config.size) << ")\n";
  if (!img.config.entrypoint.empty() || !img.config.cmd.empty()) {
    out << "Command:    " << absl::StrJoin(img.config.entrypoint, " ")
        << (img.config.entrypoint.empty() ? "" : " ") << absl::StrJoin(img.config.cmd, " ")
        << "\n";
  }
  out << "Layers:     " << img.manifest.layers.size() << ", " << HumanBytes(total)
      << " compressed\n";
  out << absl::StrFormat("  %-3s %-19s %10s  %s\n", "#", "DIGEST", "SIZE", "MEDIA TYPE");
  for (size_t i = 0; i < img.manifest.layers.size(); ++i) {
    const auto& l = img.manifest.layers[i];
    out << absl::StrFormat("  %-3d %-19s %10s  %s\n", i, l.digest.Short(), HumanBytes(l.size),
                           l.media_type);
  }
}

}  // namespace

absl::Status Inspect(remote::RegistryClient& client, const std::string& image,
                     const remote::Platform& platform, bool json, std::ostream& out) {
  SS_ASSIGN_OR_RETURN(remote::Reference ref, remote::Reference::Parse(image));
  SS_ASSIGN_OR_RETURN(auto resolved, client.ResolveImage(ref, platform));
  if (json) {
    out << ToJson(resolved).dump(2) << "\n";
  } else {
    PrintTable(resolved, out);
  }
  return absl::OkStatus();
}

}  // namespace slipstream::cli
