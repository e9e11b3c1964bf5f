// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream::testkit {

// Signs JSON Web Tokens with RS256 the way distribution's token auth expects: the JOSE header
// carries `kid`, the libtrust fingerprint of the signing public key, which the registry
// matches against the keys of the certificates in its `rootcertbundle`. Immutable after
// creation; thread-safe (each Sign() uses its own OpenSSL context).
class TokenSigner {
 public:
  // Loads an RSA private key (PEM). NotFound when the file is missing, InvalidArgument when
  // it holds no RSA key.
  static absl::StatusOr<std::unique_ptr<TokenSigner>> FromPemFile(const std::string& key_path);
  ~TokenSigner();
  TokenSigner(const TokenSigner&) = delete;
  TokenSigner& operator=(const TokenSigner&) = delete;

  // "ABCD:EFGH:..." (12 groups of 4 base32 characters).
  const std::string& key_id() const { return key_id_; }

  // Returns the compact JWS "header.claims.signature" for `claims_json` (a JSON object).
  // Internal when OpenSSL fails to sign.
  absl::StatusOr<std::string> Sign(std::string_view claims_json) const;

 private:
  TokenSigner(EVP_PKEY* key, std::string key_id) : key_(key), key_id_(std::move(key_id)) {}
  EVP_PKEY* key_;
  std::string key_id_;
};

// Base64url without padding (RFC 7515 §2).
std::string Base64UrlEncode(std::string_view data);

// libtrust key ID of a DER SubjectPublicKeyInfo: SHA-256, first 240 bits, base32 without
// padding, split into groups of four with ':'.
std::string LibtrustKeyId(std::string_view spki_der);

}  // namespace slipstream::testkit
