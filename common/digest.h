// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream {

// A validated content digest "sha256:<64 lowercase hex>" (the only algorithm OCI registries
// use in practice; "sha512:<128 hex>" is accepted too). Immutable value type; thread-compatible.
class Digest {
 public:
  Digest() = default;
  // Parses and validates `text`. InvalidArgument naming the text when it is malformed.
  static absl::StatusOr<Digest> Parse(std::string_view text);

  const std::string& str() const { return text_; }
  std::string_view algorithm() const;
  std::string_view hex() const;
  // First 12 hex characters, for logs and error messages.
  std::string Short() const;
  bool empty() const { return text_.empty(); }

  friend bool operator==(const Digest& a, const Digest& b) { return a.text_ == b.text_; }
  friend bool operator!=(const Digest& a, const Digest& b) { return a.text_ != b.text_; }
  friend bool operator<(const Digest& a, const Digest& b) { return a.text_ < b.text_; }
  template <typename H>
  friend H AbslHashValue(H h, const Digest& d) { return H::combine(std::move(h), d.text_); }

 private:
  explicit Digest(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

// Incremental SHA-256 over OpenSSL's EVP API. Not thread-safe; one per stream.
class Sha256Hasher {
 public:
  Sha256Hasher();
  ~Sha256Hasher();
  Sha256Hasher(const Sha256Hasher&) = delete;
  Sha256Hasher& operator=(const Sha256Hasher&) = delete;

  void Update(std::string_view data);
  // Returns the digest of everything passed to Update and resets the hasher.
  Digest Finish();

 private:
  EVP_MD_CTX* ctx_;
};

// sha256 digest of `data` in one call.
Digest Sha256Of(std::string_view data);

}  // namespace slipstream
