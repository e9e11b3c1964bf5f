// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "remote/blob_reader.h"
#include "remote/manifest.h"
#include "remote/reference.h"

namespace slipstream::remote {

class RegistryClient;

// A BlobReader that serves every ReadAt with one Range GET through a RegistryClient (with
// its retries, mirrors, auth and redirect cache). Slices are not digest-verified: nothing
// short of the whole blob can be checked; put a verifying cache in front where it matters.
// Created by RegistryClient::OpenBlob; borrows the client, which must outlive it.
// Thread-safe (the client is).
class HttpBlobReader : public BlobReader {
 public:
  HttpBlobReader(RegistryClient* client, Reference repo, Descriptor blob);

  const Digest& digest() const override { return blob_.digest; }
  int64_t size() const override { return blob_.size; }

  // Reads min(length, size() - offset) bytes at `offset` (at most 64 MiB per call:
  // ResourceExhausted beyond; use RegistryClient::ReadBlobRange to stream more). OutOfRange
  // when offset > size(); InvalidArgument for negative arguments; registry errors as
  // RegistryClient reports them.
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override;

 private:
  RegistryClient* const client_;
  const Reference repo_;
  const Descriptor blob_;
};

}  // namespace slipstream::remote
