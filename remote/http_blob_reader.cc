// SPDX-License-Identifier: Apache-2.0
#include "remote/http_blob_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "remote/registry_client.h"

namespace slipstream::remote {

HttpBlobReader::HttpBlobReader(RegistryClient* client, Reference repo, Descriptor blob)
    : client_(client), repo_(std::move(repo)), blob_(std::move(blob)) {}

absl::StatusOr<std::string> HttpBlobReader::ReadAt(int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) {
    return absl::InvalidArgumentError(absl::StrCat("blob ", blob_.digest.str(),
                                                   ": negative offset or length"));
  }
  if (offset > blob_.size) {
    return absl::OutOfRangeError(absl::StrCat("blob ", blob_.digest.str(), ": offset ", offset,
                                              " past its size ", blob_.size));
  }
  const int64_t n = std::min(length, blob_.size - offset);
  if (n == 0) return std::string();
  return client_->ReadRange(repo_, blob_.digest, offset, n);
}

std::unique_ptr<BlobReader> RegistryClient::OpenBlob(const Reference& repo,
                                                     const Descriptor& blob) {
  return std::make_unique<HttpBlobReader>(this, repo, blob);
}

}  // namespace slipstream::remote
