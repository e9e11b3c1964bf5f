// SPDX-License-Identifier: Apache-2.0
#include "plugin/pull_source.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "remote/cached_blob_reader.h"

namespace slipstream::plugin {

absl::Status RegistryRangeSource::Read(const remote::Descriptor& blob, int64_t offset,
                                       int64_t length, const remote::BodySink& sink) {
  return client_->ReadBlobRange(repo_, blob.digest, offset, length, sink);
}

absl::Status CachedRangeSource::Read(const remote::Descriptor& blob, int64_t offset,
                                     int64_t length, const remote::BodySink& sink) {
  // A reader is cheap to make (no I/O), so one per call keeps this class stateless.
  remote::CachedBlobReader reader(client_->OpenBlob(repo_, blob), cache_, cache_chunk_);
  const int64_t end = offset + length;
  for (int64_t pos = offset; pos < end;) {
    // Cache-aligned pieces, so each ReadAt maps onto whole cache chunks where possible.
    const int64_t piece_end = std::min(end, (pos / cache_chunk_ + 1) * cache_chunk_);
    SS_ASSIGN_OR_RETURN(std::string bytes, reader.ReadAt(pos, piece_end - pos));
    if (bytes.empty()) {
      return absl::OutOfRangeError(absl::StrCat("blob ", blob.digest.Short(), " ends at ", pos,
                                                ", before ", end));
    }
    SS_RETURN_IF_ERROR(sink(bytes));
    pos += static_cast<int64_t>(bytes.size());
  }
  return absl::OkStatus();
}

}  // namespace slipstream::plugin
