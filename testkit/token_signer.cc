// SPDX-License-Identifier: Apache-2.0
#include "testkit/token_signer.h"

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"

namespace slipstream::testkit {

std::string Base64UrlEncode(std::string_view data) {
  // abseil's web-safe variant is exactly base64url without padding.
  return absl::WebSafeBase64Escape(absl::string_view(data.data(), data.size()));
}

std::string LibtrustKeyId(std::string_view spki_der) {
  unsigned char hash[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(spki_der.data()), spki_der.size(), hash);
  // 30 bytes = 240 bits = exactly 48 base32 characters, so no padding ever appears.
  static constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string b32;
  uint32_t buffer = 0;
  int bits = 0;
  for (int i = 0; i < 30; ++i) {
    buffer = (buffer << 8) | hash[i];
    bits += 8;
    while (bits >= 5) {
      b32.push_back(kBase32[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  std::string out;
  for (size_t i = 0; i < b32.size(); i += 4) {
    if (i > 0) out.push_back(':');
    out.append(b32, i, 4);
  }
  return out;
}

absl::StatusOr<std::unique_ptr<TokenSigner>> TokenSigner::FromPemFile(const std::string& key_path) {
  SS_ASSIGN_OR_RETURN(std::string pem, ReadFileToString(key_path));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr || EVP_PKEY_base_id(key) != EVP_PKEY_RSA) {
    EVP_PKEY_free(key);
    return absl::InvalidArgumentError(absl::StrCat(key_path, ": not an RSA private key"));
  }
  // The registry derives key IDs from x509.MarshalPKIXPublicKey, i.e. the DER
  // SubjectPublicKeyInfo, which is what i2d_PUBKEY produces.
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key, &der);
  if (len <= 0) {
    EVP_PKEY_free(key);
    return absl::InternalError("i2d_PUBKEY failed");
  }
  std::string kid = LibtrustKeyId(std::string_view(reinterpret_cast<char*>(der), len));
  OPENSSL_free(der);
  return std::unique_ptr<TokenSigner>(new TokenSigner(key, std::move(kid)));
}

TokenSigner::~TokenSigner() { EVP_PKEY_free(key_); }

absl::StatusOr<std::string> TokenSigner::Sign(std::string_view claims_json) const {
  std::string header = absl::StrCat(R"({"typ":"JWT","alg":"RS256","kid":")", key_id_, R"("})");
  std::string signing_input =
      absl::StrCat(Base64UrlEncode(header), ".", Base64UrlEncode(claims_json));
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr) return absl::InternalError("EVP_MD_CTX_new failed");
  std::string sig(static_cast<size_t>(EVP_PKEY_get_size(key_)), '\0');
  size_t sig_len = sig.size();
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_) == 1 &&
            EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &sig_len,
                           reinterpret_cast<const unsigned char*>(signing_input.data()),
                           signing_input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) return absl::InternalError("RS256 signing failed");
  sig.resize(sig_len);
  return absl::StrCat(signing_input, ".", Base64UrlEncode(sig));
}

}  // namespace slipstream::testkit
