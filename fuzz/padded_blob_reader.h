// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "remote/blob_reader.h"

namespace slipstream::fuzz {

// A BlobReader of `size` bytes whose prefix is `data` and the rest zeros: the layer a fuzzed
// zTOC claims to describe, real (a sample layer) when its size matches one. Reads longer than
// kMaxRead are refused (ResourceExhausted), so a zTOC claiming huge spans cannot make one
// input slow. Not thread-safe beyond what ReadAt needs (it keeps no state).
class PaddedBlobReader : public remote::BlobReader {
 public:
  static constexpr int64_t kMaxRead = 256 << 10;

  PaddedBlobReader(std::string_view data, int64_t size)
      : data_(data), size_(size), digest_(Sha256Of(data)) {}

  const Digest& digest() const override { return digest_; }
  int64_t size() const override { return size_; }

  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override {
    if (offset < 0 || length < 0 || offset > size_) {
      return absl::OutOfRangeError(absl::StrCat("read of ", length, " at ", offset));
    }
    length = std::min(length, size_ - offset);
    if (length > kMaxRead) return absl::ResourceExhaustedError("read too long for a fuzz input");
    std::string out(static_cast<size_t>(length), '\0');
    if (offset < static_cast<int64_t>(data_.size())) {
      size_t n = std::min<size_t>(static_cast<size_t>(length), data_.size() - offset);
      out.replace(0, n, data_.substr(offset, n));
    }
    return out;
  }

 private:
  std::string_view data_;
  int64_t size_;
  Digest digest_;
};

}  // namespace slipstream::fuzz
