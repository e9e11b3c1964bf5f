// SPDX-License-Identifier: Apache-2.0
#include "index/checkpoints.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "flatbuffers/flatbuffers.h"
#include "index/ztoc_generated.h"

namespace slipstream::index {
namespace {

// Little-endian helpers; explicit byte order so the format does not depend on the host.
void PutLe(std::string* out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
  return v;
}

// The checkpoint SOCI's first release left out of the blob.
Checkpoint ImpliedFirstCheckpoint() {
  Checkpoint c;
  c.in = 10;  // the size of a gzip header without optional fields
  c.window.assign(kWindowSize, '\0');
  return c;
}

}  // namespace

std::string EncodeGzipCheckpoints(int64_t span_size, const std::vector<Checkpoint>& checkpoints) {
  std::string out;
  out.reserve(kCheckpointBlobHeaderSize + checkpoints.size() * kCheckpointRecordSize);
  PutLe(&out, static_cast<uint32_t>(checkpoints.size()), 4);
  PutLe(&out, static_cast<uint64_t>(span_size), 8);
  for (const Checkpoint& c : checkpoints) {
    PutLe(&out, static_cast<uint64_t>(c.in), 8);
    PutLe(&out, static_cast<uint64_t>(c.out), 8);
    out.push_back(static_cast<char>(c.bits));
    size_t have = std::min(c.window.size(), static_cast<size_t>(kWindowSize));
    out.append(kWindowSize - have, '\0');
    out.append(c.window, c.window.size() - have, have);
  }
  return out;
}

absl::StatusOr<GzipCheckpoints> DecodeGzipCheckpoints(std::string_view blob,
                                                      int64_t expected_count) {
  if (blob.size() < kCheckpointBlobHeaderSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("gzip checkpoints: blob of ", blob.size(), " bytes is truncated"));
  }
  int64_t count = static_cast<int32_t>(GetLe(blob.data(), 4));
  GzipCheckpoints result;
  result.span_size = static_cast<int64_t>(GetLe(blob.data() + 4, 8));
  if (count <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("gzip checkpoints: count ", count));
  }
  if (expected_count >= 0 && count != expected_count) {
    return absl::InvalidArgumentError(absl::StrCat("gzip checkpoints: count ", count,
                                                   " but the zTOC has ", expected_count,
                                                   " spans"));
  }
  // Sizes computed in 64 bits from a count < 2^31, so no overflow; the blob's length must
  // match exactly, which also bounds every allocation below by the blob's size.
  uint64_t records = blob.size() - kCheckpointBlobHeaderSize;
  uint64_t full = static_cast<uint64_t>(count) * kCheckpointRecordSize;
  if (records == full) {
    result.v1 = false;
  } else if (records + kCheckpointRecordSize == full) {
    result.v1 = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("gzip checkpoints: ", blob.size(), " bytes do not hold ", count,
                     " checkpoints"));
  }
  result.checkpoints.reserve(count);
  if (result.v1) result.checkpoints.push_back(ImpliedFirstCheckpoint());
  const char* p = blob.data() + kCheckpointBlobHeaderSize;
  const char* end = blob.data() + blob.size();
  while (p < end) {
    Checkpoint c;
    c.in = static_cast<int64_t>(GetLe(p, 8));
    c.out = static_cast<int64_t>(GetLe(p + 8, 8));
    c.bits = static_cast<uint8_t>(p[16]);
    c.window.assign(p + 17, kWindowSize);
    result.checkpoints.push_back(std::move(c));
    p += kCheckpointRecordSize;
  }
  return result;
}

std::string EncodeTarZinfo(const TarZinfo& zinfo) {
  std::string out;
  PutLe(&out, static_cast<uint32_t>(zinfo.version), 4);
  PutLe(&out, static_cast<uint64_t>(zinfo.span_size), 8);
  PutLe(&out, static_cast<uint64_t>(zinfo.size), 8);
  return out;
}

absl::StatusOr<TarZinfo> DecodeTarZinfo(std::string_view blob) {
  TarZinfo z;
  if (blob.size() == kTarZinfoPackedSize) {
    z.version = static_cast<int32_t>(GetLe(blob.data(), 4));
    z.span_size = static_cast<int64_t>(GetLe(blob.data() + 4, 8));
    z.size = static_cast<int64_t>(GetLe(blob.data() + 12, 8));
    return z;
  }
  // Flatbuffers reads scalars in place, so give it an aligned copy.
  std::string aligned(blob);
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(aligned.data()),
                                 aligned.size(), /*max_depth=*/8, /*max_tables=*/8);
  if (aligned.empty() || !verifier.VerifyBuffer<fbs::TarZinfo>(nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("tar checkpoints: ", blob.size(), " bytes are not a TarZinfo"));
  }
  const fbs::TarZinfo* t = flatbuffers::GetRoot<fbs::TarZinfo>(aligned.data());
  z.version = t->version();
  z.span_size = t->span_size();
  z.size = t->size();
  return z;
}

}  // namespace slipstream::index
