// SPDX-License-Identifier: Apache-2.0
// RegistryClient: the OCI referrers API (distribution spec 1.1).
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "remote/media_types.h"
#include "remote/registry_client.h"
#include "remote/registry_client_internal.h"

namespace slipstream::remote {
namespace {

// Percent-encodes a query value: media types carry '+', which a query would read as a space.
std::string QueryEscape(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
                            c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace

absl::StatusOr<ImageIndex> RegistryClient::GetReferrers(const Reference& repo,
                                                        const Digest& subject,
                                                        std::string_view artifact_type) {
  Call call;
  call.method = "GET";
  call.repo = &repo;
  call.cap = kCapPull;
  call.what = absl::StrCat("referrers ", internal::ShortDigest(subject));
  call.max_body = kMaxManifestBytes;
  std::string query;
  if (!artifact_type.empty()) query = absl::StrCat("?artifactType=", QueryEscape(artifact_type));
  call.build = [&](const RegistryHost& host) {
    HttpRequest req;
    req.url = absl::StrCat(host.BaseUrl(), "/", repo.repository, "/referrers/", subject.str(),
                           query);
    req.headers.emplace_back("Accept", std::string(kOciIndex));
    return req;
  };
  SS_ASSIGN_OR_RETURN(Exchange ex, Execute(call));
  const std::string context = internal::Context("GET", ex.host, repo, call.what);
  if (ex.response.status != 200) return internal::HttpError(context, ex.response);
  absl::StatusOr<ImageIndex> index = ImageIndex::Parse(ex.response.body);
  if (!index.ok()) return Annotate(index.status(), context);
  // Registries may ignore the filter (they then omit the OCI-Filters-Applied header); apply
  // it here so callers see the same answer either way.
  if (!artifact_type.empty()) {
    std::vector<Descriptor> kept;
    for (Descriptor& d : index->manifests) {
      if (d.artifact_type == artifact_type) kept.push_back(std::move(d));
    }
    index->manifests = std::move(kept);
  }
  return index;
}

}  // namespace slipstream::remote
