// SPDX-License-Identifier: Apache-2.0
#include "remote/reference.h"

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/strings.h"

namespace slipstream::remote {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;
constexpr std::string_view kDockerHub = "docker.io";

// Error messages quote the user's text, but a hostile caller could pass megabytes or control
// bytes: escape it and keep only a prefix.
std::string Quote(std::string_view text) {
  constexpr size_t kMax = 300;
  std::string out = absl::CHexEscape(AV(text.substr(0, kMax)));
  if (text.size() > kMax) out += "...";
  return absl::StrCat("\"", out, "\"");
}

absl::Status Invalid(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("invalid image reference ", Quote(text), ": ", AV(why)));
}

bool IsLowerAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool IsAlnum(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := [_.] | "__" | "-"+
bool ValidPathComponent(std::string_view c) {
  if (c.empty() || !IsLowerAlnum(c.front()) || !IsLowerAlnum(c.back())) return false;
  size_t i = 0;
  while (i < c.size()) {
    if (IsLowerAlnum(c[i])) {
      ++i;
      continue;
    }
    // A separator run: exactly one '.', one or two '_', or any number of '-'.
    size_t start = i;
    char sep = c[i];
    if (sep != '.' && sep != '_' && sep != '-') return false;
    while (i < c.size() && c[i] == sep) ++i;
    size_t run = i - start;
    if (sep == '.' && run != 1) return false;
    if (sep == '_' && run > 2) return false;
    // The run must be followed by an alphanumeric (the back() check covers the end).
    if (i < c.size() && !IsLowerAlnum(c[i])) return false;
  }
  return true;
}

// domain-component := [A-Za-z0-9] | [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]
bool ValidDomainComponent(std::string_view c) {
  if (c.empty() || !IsAlnum(c.front()) || !IsAlnum(c.back())) return false;
  for (char ch : c) {
    if (!IsAlnum(ch) && ch != '-') return false;
  }
  return true;
}

bool ValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  for (char ch : port) {
    if (!IsDigit(ch)) return false;
  }
  return true;
}

// host [":" port] where host is a dotted domain name or a bracketed IPv6 literal.
bool ValidDomain(std::string_view domain) {
  std::string_view host = domain;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char ch : host.substr(1, close - 1)) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(ch)) && ch != ':' && ch != '.') {
        return false;
      }
    }
    std::string_view rest = host.substr(close + 1);
    if (rest.empty()) return true;
    return rest.front() == ':' && ValidPort(rest.substr(1));
  }
  size_t colon = host.find(':');
  if (colon != std::string_view::npos) {
    if (!ValidPort(host.substr(colon + 1))) return false;
    host = host.substr(0, colon);
  }
  if (host.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t dot = host.find('.', start);
    std::string_view comp = host.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (!ValidDomainComponent(comp)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool ValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > kMaxTagLength) return false;
  auto word = [](char c) { return IsAlnum(c) || c == '_'; };
  if (!word(tag.front())) return false;
  for (char c : tag) {
    if (!word(c) && c != '.' && c != '-') return false;
  }
  return true;
}

// docker refuses a bare 64-hex name because it is indistinguishable from an image ID.
bool IsHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<Reference> Reference::Parse(std::string_view text) {
  if (text.empty()) return Invalid(text, "empty");
  Reference ref;
  std::string_view rest = text;

  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    auto digest = Digest::Parse(rest.substr(at + 1));
    if (!digest.ok()) return Invalid(text, "malformed digest");
    ref.digest = digest->str();
    rest = rest.substr(0, at);
  }

  // The tag separator is a ':' after the last '/', so that "host:5000/repo" keeps its port.
  size_t last_slash = rest.rfind('/');
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || colon > last_slash)) {
    std::string_view tag = rest.substr(colon + 1);
    if (!ValidTag(tag)) return Invalid(text, "malformed tag");
    ref.tag = std::string(tag);
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return Invalid(text, "missing repository name");

  // The first component names a registry only when it cannot be a repository component:
  // it has a '.' or ':', is "localhost", or has upper-case letters (docker's rule).
  std::string_view domain;
  std::string_view path = rest;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    std::string_view first = rest.substr(0, slash);
    bool is_domain = first.find_first_of(".:") != std::string_view::npos ||
                     first == "localhost" || absl::AsciiStrToLower(AV(first)) != first;
    if (is_domain) {
      domain = first;
      path = rest.substr(slash + 1);
    }
  }
  if (!domain.empty() && !ValidDomain(domain)) return Invalid(text, "malformed registry host");

  if (domain.empty() || domain == "index.docker.io" || domain == kDockerHub) {
    ref.registry = std::string(kDockerHub);
  } else {
    ref.registry = std::string(domain);
  }
  if (path.empty()) return Invalid(text, "missing repository name");
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view comp =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (!ValidPathComponent(comp)) {
      bool upper = absl::AsciiStrToLower(AV(comp)) != comp;
      return Invalid(text, upper ? "repository name must be lowercase"
                                 : "malformed repository name");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (domain.empty() && IsHex64(path)) {
    return Invalid(text, "a 64-character hexadecimal name is an image ID, not a repository");
  }
  ref.repository = std::string(path);
  if (ref.registry == kDockerHub && ref.repository.find('/') == std::string::npos) {
    ref.repository = absl::StrCat("library/", ref.repository);
  }
  if (ref.Locator().size() > kMaxNameLength) {
    return Invalid(text, absl::StrCat("name longer than ", kMaxNameLength, " characters"));
  }
  if (ref.tag.empty() && ref.digest.empty()) ref.tag = "latest";
  return ref;
}

std::string Reference::String() const {
  std::string out = Locator();
  if (!tag.empty()) absl::StrAppend(&out, ":", tag);
  if (!digest.empty()) absl::StrAppend(&out, "@", digest);
  return out;
}

std::string Reference::Locator() const { return absl::StrCat(registry, "/", repository); }

std::string Reference::TagOrDigest() const { return digest.empty() ? tag : digest; }

Reference Reference::WithDigest(std::string new_digest) const {
  Reference copy = *this;
  copy.digest = std::move(new_digest);
  return copy;
}

std::string DefaultServer(std::string_view registry) {
  if (registry == kDockerHub || registry == "index.docker.io") return "registry-1.docker.io";
  return std::string(registry);
}

}  // namespace slipstream::remote
