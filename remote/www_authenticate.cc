// SPDX-License-Identifier: Apache-2.0
#include "remote/www_authenticate.h"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace slipstream::remote {
namespace {

constexpr size_t kMaxHeaderBytes = 64 << 10;
constexpr size_t kMaxChallenges = 64;
constexpr size_t kMaxParams = 64;

bool IsTchar(char c) {
  if (absl::ascii_isalnum(static_cast<unsigned char>(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
      return true;
    default:
      return false;
  }
}

bool IsToken68Char(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '+' || c == '/';
}

// A cursor over the header value. All methods stop at the end; nothing reads past it.
class Parser {
 public:
  explicit Parser(absl::string_view in) : in_(in) {}

  bool AtEnd() const { return pos_ >= in_.size(); }
  char Peek() const { return AtEnd() ? '\0' : in_[pos_]; }
  size_t pos() const { return pos_; }
  void Reset(size_t pos) { pos_ = pos; }

  void SkipSpaces() {
    while (!AtEnd() && (in_[pos_] == ' ' || in_[pos_] == '\t')) ++pos_;
  }
  // Skips OWS and list separators (RFC 7230 allows empty list elements).
  void SkipListSeparators() {
    while (!AtEnd() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == ',')) ++pos_;
  }

  absl::string_view Token() {
    size_t start = pos_;
    while (!AtEnd() && IsTchar(in_[pos_])) ++pos_;
    return in_.substr(start, pos_ - start);
  }

  // quoted-string with quoted-pair unescaping. False when unterminated or a control byte.
  bool QuotedString(std::string* out) {
    if (Peek() != '"') return false;
    ++pos_;
    while (!AtEnd()) {
      unsigned char c = static_cast<unsigned char>(in_[pos_++]);
      if (c == '"') return true;
      if (c == '\\') {
        if (AtEnd()) return false;
        c = static_cast<unsigned char>(in_[pos_++]);
      }
      if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
      out->push_back(static_cast<char>(c));
    }
    return false;
  }

  // token68 := 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
  absl::string_view Token68() {
    size_t start = pos_;
    while (!AtEnd() && IsToken68Char(in_[pos_])) ++pos_;
    if (pos_ == start) return {};
    while (!AtEnd() && in_[pos_] == '=') ++pos_;
    return in_.substr(start, pos_ - start);
  }

 private:
  absl::string_view in_;
  size_t pos_ = 0;
};

absl::Status Malformed(absl::string_view value, size_t pos, absl::string_view why) {
  constexpr size_t kMax = 120;
  std::string shown = absl::CHexEscape(value.substr(0, kMax));
  if (value.size() > kMax) shown += "...";
  return absl::InvalidArgumentError(absl::StrCat("malformed WWW-Authenticate \"", shown,
                                                 "\" at offset ", pos, ": ", why));
}

// True when the cursor is at `token BWS "="` followed by something other than '=' : an
// auth-param rather than a new challenge or a token68. Leaves the cursor unchanged.
bool AtAuthParam(Parser& p) {
  size_t start = p.pos();
  bool is_param = false;
  if (!p.Token().empty()) {
    p.SkipSpaces();
    if (p.Peek() == '=') {
      p.Reset(p.pos() + 1);
      p.SkipSpaces();
      is_param = !p.AtEnd() && p.Peek() != '=' && p.Peek() != ',';
    }
  }
  p.Reset(start);
  return is_param;
}

}  // namespace

std::string AuthChallenge::Param(std::string_view key) const {
  auto it = params.find(std::string(key));
  return it == params.end() ? std::string() : it->second;
}

absl::StatusOr<std::vector<AuthChallenge>> ParseWwwAuthenticate(std::string_view header) {
  absl::string_view value = AV(header);
  if (value.size() > kMaxHeaderBytes) {
    return absl::InvalidArgumentError("WWW-Authenticate value too long");
  }
  Parser p(value);
  std::vector<AuthChallenge> out;
  p.SkipListSeparators();
  while (!p.AtEnd()) {
    if (out.size() >= kMaxChallenges) return Malformed(value, p.pos(), "too many challenges");
    AuthChallenge challenge;
    absl::string_view scheme = p.Token();
    if (scheme.empty()) return Malformed(value, p.pos(), "expected an auth scheme");
    challenge.scheme = absl::AsciiStrToLower(scheme);
    size_t after_scheme = p.pos();
    p.SkipSpaces();
    if (p.AtEnd() || p.Peek() == ',') {
      out.push_back(std::move(challenge));
      p.SkipListSeparators();
      continue;
    }
    if (p.pos() == after_scheme) {
      return Malformed(value, p.pos(), "expected a space after the auth scheme");
    }

    if (!AtAuthParam(p)) {
      // Not "name=value": the challenge carries a token68 (e.g. "Negotiate abc==").
      absl::string_view t68 = p.Token68();
      if (t68.empty()) return Malformed(value, p.pos(), "expected a parameter or token68");
      challenge.token68 = std::string(t68);
      p.SkipSpaces();
      if (!p.AtEnd() && p.Peek() != ',') {
        return Malformed(value, p.pos(), "unexpected character after token68");
      }
      out.push_back(std::move(challenge));
      p.SkipListSeparators();
      continue;
    }

    // #auth-param: name BWS "=" BWS ( token / quoted-string ), comma-separated. A comma
    // followed by something that is not "name=" starts the next challenge.
    while (true) {
      if (challenge.params.size() >= kMaxParams) {
        return Malformed(value, p.pos(), "too many parameters");
      }
      std::string name = absl::AsciiStrToLower(p.Token());
      p.SkipSpaces();
      if (name.empty() || p.Peek() != '=') {
        return Malformed(value, p.pos(), "expected name=value");
      }
      p.Reset(p.pos() + 1);
      p.SkipSpaces();
      std::string param_value;
      if (p.Peek() == '"') {
        if (!p.QuotedString(&param_value)) {
          return Malformed(value, p.pos(), "unterminated or invalid quoted string");
        }
      } else {
        absl::string_view t = p.Token();
        if (t.empty()) return Malformed(value, p.pos(), "expected a token or quoted string");
        param_value = std::string(t);
      }
      // The first occurrence wins: a repeated realm must not redirect credentials.
      challenge.params.emplace(std::move(name), std::move(param_value));
      p.SkipSpaces();
      if (p.AtEnd()) break;
      if (p.Peek() != ',') return Malformed(value, p.pos(), "expected ',' between parameters");
      p.SkipListSeparators();
      if (p.AtEnd() || !AtAuthParam(p)) break;
    }
    out.push_back(std::move(challenge));
  }
  if (out.empty()) return absl::InvalidArgumentError("empty WWW-Authenticate value");
  return out;
}

}  // namespace slipstream::remote
