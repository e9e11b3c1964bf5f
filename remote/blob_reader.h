// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "common/digest.h"

namespace slipstream::remote {

// Random read access to one immutable blob (a layer) of known size, wherever it lives.
// Both pull modes read layers through this role: HttpBlobReader (registry Range GETs),
// CachedBlobReader (chunk cache in front of another reader), in-memory fakes in tests.
// Implementations are thread-safe: many threads may call ReadAt concurrently.
class BlobReader {
 public:
  virtual ~BlobReader() = default;

  virtual const Digest& digest() const = 0;
  virtual int64_t size() const = 0;

  // Returns exactly `length` bytes at `offset` (fewer only when the blob ends first).
  // OutOfRange when offset > size(). Registry errors as in RegistryClient (NotFound,
  // Unauthenticated, PermissionDenied, Unavailable, DataLoss).
  virtual absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) = 0;

  // Called by a reader that found bytes from ReadAt corrupt (a span or blob digest check
  // failed): drop every copy of this blob kept on the way, so that later reads fetch it
  // afresh instead of failing for good. Default: nothing is kept. Thread-safe.
  virtual void ForgetCached() {}
};

}  // namespace slipstream::remote
