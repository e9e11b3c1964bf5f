// SPDX-License-Identifier: Apache-2.0
#include "plugin/snapshot_filter.h"

#include <cctype>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::plugin {
namespace {

// A small recursive-descent reader over one filter string. Errors carry the byte offset so
// a user can find the problem in a long label filter.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}

  absl::StatusOr<std::vector<SnapshotFilter::Selector>> ParseAll() {
    std::vector<SnapshotFilter::Selector> out;
    while (true) {
      SkipSpace();
      SS_ASSIGN_OR_RETURN(auto selector, ParseSelector());
      out.push_back(std::move(selector));
      SkipSpace();
      if (AtEnd()) return out;
      if (text_[pos_] != ',') return Fail("expected ',' or end");
      ++pos_;
    }
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  void SkipSpace() {
    while (!AtEnd() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  absl::Status Fail(std::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("filter \"", AV(text_), "\" at ", pos_, ": ", AV(what)));
  }
  static bool IsFieldChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  }

  absl::StatusOr<SnapshotFilter::Selector> ParseSelector() {
    SnapshotFilter::Selector s;
    while (true) {
      SkipSpace();
      if (AtEnd()) return Fail("expected field name");
      if (text_[pos_] == '"') {
        SS_ASSIGN_OR_RETURN(auto quoted, ParseQuoted('"'));
        s.fieldpath.push_back(std::move(quoted));
      } else {
        size_t start = pos_;
        while (!AtEnd() && IsFieldChar(text_[pos_])) ++pos_;
        if (pos_ == start) return Fail("expected field name");
        s.fieldpath.emplace_back(text_.substr(start, pos_ - start));
      }
      SkipSpace();
      if (!AtEnd() && text_[pos_] == '.') {
        ++pos_;
        continue;
      }
      break;
    }
    if (AtEnd() || text_[pos_] == ',') return s;  // presence check
    std::string_view rest = text_.substr(pos_);
    if (rest.starts_with("==")) {
      s.op = SnapshotFilter::Op::kEqual;
    } else if (rest.starts_with("!=")) {
      s.op = SnapshotFilter::Op::kNotEqual;
    } else if (rest.starts_with("~=")) {
      s.op = SnapshotFilter::Op::kMatches;
    } else {
      return Fail("expected operator ==, != or ~=");
    }
    pos_ += 2;
    SkipSpace();
    SS_ASSIGN_OR_RETURN(s.value, ParseValue(s.op == SnapshotFilter::Op::kMatches));
    if (s.op == SnapshotFilter::Op::kMatches) {
      // The pattern comes from the RPC: RE2 matches in linear time with bounded memory and no
      // recursion (std::regex backtracks exponentially, recurses per character and overflows
      // signed integers on long back-references; snapshot_request_fuzzer found all three).
      // Its syntax is Go's regexp, which containerd itself uses for filters.
      re2::RE2::Options options;
      options.set_log_errors(false);
      auto regex = std::make_shared<const re2::RE2>(s.value, options);
      if (!regex->ok()) return Fail(absl::StrCat("bad regexp: ", regex->error()));
      s.regex = std::move(regex);
    }
    return s;
  }

  absl::StatusOr<std::string> ParseValue(bool regexp) {
    if (AtEnd()) return Fail("expected value");
    char c = text_[pos_];
    if (c == '"' || (regexp && (c == '/' || c == '|'))) return ParseQuoted(c);
    size_t start = pos_;
    while (!AtEnd() && text_[pos_] != ',' &&
           !std::isspace(static_cast<unsigned char>(text_[pos_]))) {
      ++pos_;
    }
    if (pos_ == start) return Fail("expected value");
    return std::string(text_.substr(start, pos_ - start));
  }

  // A string between `quote` characters; backslash escapes the next character (\n, \t
  // understood) so `"a\"b"` holds a quote.
  absl::StatusOr<std::string> ParseQuoted(char quote) {
    ++pos_;
    std::string out;
    while (!AtEnd()) {
      char c = text_[pos_++];
      if (c == quote) return out;
      if (c == '\\' && !AtEnd()) {
        char e = text_[pos_++];
        if (e == 'n') {
          out.push_back('\n');
        } else if (e == 't') {
          out.push_back('\t');
        } else if (e == quote || e == '\\') {
          out.push_back(e);
        } else {
          // Regexps need their own escapes (\d, \.) passed through untouched.
          out.push_back('\\');
          out.push_back(e);
        }
        continue;
      }
      out.push_back(c);
    }
    return Fail("unterminated quoted string");
  }

  std::string_view text_;
  size_t pos_ = 0;
};

// The value of `fieldpath` on `info`, or nullopt when the field does not exist (containerd's
// adaptSnapshot).
std::optional<std::string> Field(const SnapshotInfo& info,
                                 const std::vector<std::string>& fieldpath) {
  const std::string& head = fieldpath[0];
  if (head == "name" && fieldpath.size() == 1) return info.name;
  if (head == "parent" && fieldpath.size() == 1) return info.parent;
  if (head == "kind" && fieldpath.size() == 1) {
    if (info.kind == SnapshotKind::kUnknown) return std::nullopt;
    return std::string(KindName(info.kind));
  }
  if (head == "labels" && fieldpath.size() > 1) {
    // An unquoted dotted key arrives split; containerd joins the rest back with dots.
    std::string key = absl::StrJoin(fieldpath.begin() + 1, fieldpath.end(), ".");
    auto it = info.labels.find(key);
    if (it == info.labels.end()) return std::nullopt;
    return it->second;
  }
  return std::nullopt;
}

bool MatchSelector(const SnapshotInfo& info, const SnapshotFilter::Selector& s) {
  auto value = Field(info, s.fieldpath);
  switch (s.op) {
    case SnapshotFilter::Op::kPresent:
      return value.has_value();
    case SnapshotFilter::Op::kEqual:
      return value.has_value() && *value == s.value;
    case SnapshotFilter::Op::kNotEqual:
      // containerd: a missing field is "not equal" to anything.
      return !value.has_value() || *value != s.value;
    case SnapshotFilter::Op::kMatches:
      return value.has_value() && re2::RE2::PartialMatch(*value, *s.regex);
  }
  return false;
}

}  // namespace

absl::StatusOr<SnapshotFilter> SnapshotFilter::Parse(const std::vector<std::string>& filters) {
  SnapshotFilter out;
  for (const auto& text : filters) {
    // containerd skips empty filter strings rather than matching nothing.
    if (text.find_first_not_of(" \t") == std::string::npos) continue;
    SS_ASSIGN_OR_RETURN(auto selectors, Reader(text).ParseAll());
    out.alternatives_.push_back(std::move(selectors));
  }
  return out;
}

bool SnapshotFilter::Match(const SnapshotInfo& info) const {
  if (alternatives_.empty()) return true;
  for (const auto& all : alternatives_) {
    bool ok = true;
    for (const auto& s : all) {
      if (!MatchSelector(info, s)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  return false;
}

}  // namespace slipstream::plugin
