// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "remote/blob_reader.h"
#include "remote/cached_blob_reader.h"
#include "remote/chunk_cache.h"
#include "remote/http.h"
#include "remote/manifest.h"
#include "remote/reference.h"
#include "remote/registry_client.h"

namespace slipstream::plugin {

// Where the pull engine gets layer bytes from: one call streams one byte range of a blob.
// Implementations: RegistryRangeSource (Range GETs through the shared RegistryClient, which
// retries and resumes), CachedRangeSource (through the shared chunk cache) and in-memory
// fakes in tests. Thread-safe: the engine calls Read from many fetch threads at once.
class RangeSource {
 public:
  virtual ~RangeSource() = default;

  // Streams bytes [offset, offset + length) of `blob` into `sink`, in order, each byte once.
  // The sink's own error (e.g. Cancelled when the pull was cancelled) is returned as is and
  // must stop the transfer promptly. Otherwise the registry codes of RegistryClient.
  virtual absl::Status Read(const remote::Descriptor& blob, int64_t offset, int64_t length,
                            const remote::BodySink& sink) = 0;
};

// Range GETs on `repo` through `client` (ReadBlobRange: retries, resume, Range checks).
// Borrows the client, which must outlive it. Thread-safe.
class RegistryRangeSource : public RangeSource {
 public:
  RegistryRangeSource(remote::RegistryClient* client, remote::Reference repo)
      : client_(client), repo_(std::move(repo)) {}
  absl::Status Read(const remote::Descriptor& blob, int64_t offset, int64_t length,
                    const remote::BodySink& sink) override;

 private:
  remote::RegistryClient* client_;
  const remote::Reference repo_;
};

// Reads through the shared ChunkCache: a CachedBlobReader over client->OpenBlob per blob,
// read in pieces of the cache's chunk size so that at most one piece per call is in memory.
// Borrows client and cache, which must outlive it. Thread-safe.
class CachedRangeSource : public RangeSource {
 public:
  CachedRangeSource(remote::RegistryClient* client, remote::Reference repo,
                    remote::ChunkCache* cache,
                    int64_t cache_chunk = remote::CachedBlobReader::kDefaultChunkSize)
      : client_(client), repo_(std::move(repo)), cache_(cache), cache_chunk_(cache_chunk) {}
  absl::Status Read(const remote::Descriptor& blob, int64_t offset, int64_t length,
                    const remote::BodySink& sink) override;

 private:
  remote::RegistryClient* client_;
  const remote::Reference repo_;
  remote::ChunkCache* cache_;
  const int64_t cache_chunk_;
};

}  // namespace slipstream::plugin
