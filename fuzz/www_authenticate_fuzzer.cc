// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the WWW-Authenticate parser (remote/www_authenticate.h), which reads a
// header any registry (or anything between us and it) sends. A value that parses has
// lower-case schemes and parameter names, and challenges that are either bare, token68 or
// parameters; written back in canonical form (quoted values, ", " separators) it parses to
// the same challenges. Seeds: fuzz/corpus/www_authenticate_fuzzer, headers of real registries.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/ascii.h"
#include "fuzz/fuzz_check.h"
#include "remote/www_authenticate.h"

namespace slipstream::fuzz {
namespace {

// The parser's length limit (www_authenticate.cc).
constexpr size_t kMaxHeaderBytes = 64 << 10;

bool IsLower(const std::string& s) { return s == absl::AsciiStrToLower(s); }

std::string Quoted(const std::string& value) {
  std::string out = "\"";
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// The canonical spelling of `challenges`: what a well-behaved registry would send.
std::string Canonical(const std::vector<remote::AuthChallenge>& challenges) {
  std::string out;
  for (const remote::AuthChallenge& c : challenges) {
    if (!out.empty()) out += ", ";
    out += c.scheme;
    if (!c.token68.empty()) {
      out += " " + c.token68;
      continue;
    }
    bool first = true;
    for (const auto& [name, value] : c.params) {
      out += first ? " " : ", ";
      first = false;
      out += name + "=" + Quoted(value);
    }
  }
  return out;
}

bool SameChallenges(const std::vector<remote::AuthChallenge>& a,
                    const std::vector<remote::AuthChallenge>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].scheme != b[i].scheme || a[i].params != b[i].params || a[i].token68 != b[i].token68) {
      return false;
    }
  }
  return true;
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipstream;
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<remote::AuthChallenge>> parsed = remote::ParseWwwAuthenticate(value);
  if (!parsed.ok()) {
    // Errors quote at most a 120-byte prefix of the value (it may be long and hostile),
    // C-escaped: up to 4 characters a byte.
    FUZZ_CHECK(parsed.status().message().size() < 120 * 4 + 200);
    return 0;
  }
  FUZZ_CHECK(!parsed->empty());
  for (const remote::AuthChallenge& c : *parsed) {
    FUZZ_CHECK(!c.scheme.empty() && fuzz::IsLower(c.scheme));
    FUZZ_CHECK(c.token68.empty() || c.params.empty());
    for (const auto& [name, v] : c.params) {
      FUZZ_CHECK(!name.empty() && fuzz::IsLower(name));
      FUZZ_CHECK(c.Param(name) == v);
    }
  }
  const std::string canonical = fuzz::Canonical(*parsed);
  if (canonical.size() > fuzz::kMaxHeaderBytes) return 0;  // quoting made it too long
  absl::StatusOr<std::vector<remote::AuthChallenge>> again =
      remote::ParseWwwAuthenticate(canonical);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(fuzz::SameChallenges(*parsed, *again));
  return 0;
}
