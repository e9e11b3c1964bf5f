// SPDX-License-Identifier: Apache-2.0
#include "common/digest.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace slipstream {
namespace {

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<Digest> Digest::Parse(std::string_view text) {
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest \"", AV(text.substr(0, 80)), "\": missing algorithm prefix"));
  }
  std::string_view algo = text.substr(0, colon);
  std::string_view hex = text.substr(colon + 1);
  size_t want = algo == "sha256" ? 64 : algo == "sha512" ? 128 : 0;
  if (want == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest \"", AV(text.substr(0, 80)), "\": unsupported algorithm"));
  }
  if (hex.size() != want || !IsLowerHex(hex)) {
    return absl::InvalidArgumentError(absl::StrCat("digest \"", AV(text.substr(0, 140)),
                                                   "\": want ", want, " lowercase hex digits"));
  }
  return Digest(std::string(text));
}

std::string_view Digest::algorithm() const {
  std::string_view t = text_;
  return t.substr(0, t.find(':'));
}

std::string_view Digest::hex() const {
  std::string_view t = text_;
  size_t colon = t.find(':');
  return colon == std::string_view::npos ? std::string_view() : t.substr(colon + 1);
}

std::string Digest::Short() const {
  if (text_.empty()) return "<no digest>";
  return absl::StrCat(AV(algorithm()), ":", AV(hex().substr(0, 12)));
}

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(ctx_); }

void Sha256Hasher::Update(std::string_view data) {
  EVP_DigestUpdate(ctx_, data.data(), data.size());
}

Digest Sha256Hasher::Finish() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  std::string hex = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(md), len));
  // Built from our own hash output, so it is valid by construction.
  return Digest::Parse(absl::StrCat("sha256:", hex)).value();
}

Digest Sha256Of(std::string_view data) {
  Sha256Hasher h;
  h.Update(data);
  return h.Finish();
}

}  // namespace slipstream
