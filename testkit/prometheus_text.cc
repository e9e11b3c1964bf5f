// SPDX-License-Identifier: Apache-2.0
#include "testkit/prometheus_text.h"

#include <cctype>
#include <cstdlib>
#include <limits>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace slipstream::testkit {
namespace {

bool IsName(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
                    (allow_colon && c == ':') ||
                    (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  return true;
}

bool ParseValue(std::string_view s, double* out) {
  if (s == "+Inf" || s == "-Inf" || s == "NaN") {
    const double inf = std::numeric_limits<double>::infinity();
    *out = s == "+Inf" ? inf : s == "-Inf" ? -inf : std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  std::string copy(s);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return !copy.empty() && end == copy.c_str() + copy.size();
}

// The family a sample belongs to: its name, or the name without a histogram/summary suffix
// when that family was declared.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  if (types.count(name)) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    if (absl::EndsWith(name, suffix)) {
      std::string base = name.substr(0, name.size() - std::string_view(suffix).size());
      if (types.count(base)) return base;
    }
  }
  return "";
}

}  // namespace

double PrometheusScrape::Get(const std::string& key) const {
  auto it = samples.find(key);
  return it == samples.end() ? -1 : it->second;
}

absl::StatusOr<PrometheusScrape> ParsePrometheusText(std::string_view text) {
  PrometheusScrape out;
  int number = 0;
  for (absl::string_view raw : absl::StrSplit(AV(text), '\n')) {
    ++number;
    std::string line(raw.data(), raw.size());
    auto bad = [&](std::string_view why) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", number, ": ", AV(why), ": ", line));
    };
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(' ', 3));
      if (parts.size() >= 3 && (parts[1] == "HELP" || parts[1] == "TYPE")) {
        if (!IsName(parts[2], true)) return bad("bad metric name");
        if (parts[1] == "TYPE") {
          static const char* const kTypes[] = {"counter", "gauge", "histogram", "summary",
                                               "untyped"};
          bool known = false;
          for (const char* t : kTypes) known |= parts.size() == 4 && parts[3] == t;
          if (!known) return bad("unknown type");
          if (out.types.count(parts[2])) return bad("second TYPE line");
          out.types[parts[2]] = parts[3];
        }
      }
      continue;
    }
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    const std::string name = line.substr(0, i);
    if (!IsName(name, true)) return bad("bad metric name");
    std::string key = name;
    if (i < line.size() && line[i] == '{') {
      key += "{";
      ++i;
      bool first = true;
      while (i < line.size() && line[i] != '}') {
        size_t eq = line.find('=', i);
        if (eq == std::string::npos) return bad("label without '='");
        const std::string label = line.substr(i, eq - i);
        if (!IsName(label, false)) return bad("bad label name");
        if (eq + 1 >= line.size() || line[eq + 1] != '"') return bad("unquoted label value");
        std::string value;
        size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            if (++j >= line.size()) return bad("dangling escape");
            if (line[j] == 'n') {
              value += '\n';
            } else if (line[j] == '\\' || line[j] == '"') {
              value += line[j];
            } else {
              return bad("bad escape");
            }
          } else {
            value += line[j];
          }
        }
        if (j >= line.size()) return bad("unterminated label value");
        absl::StrAppend(&key, first ? "" : ",", label, "=\"", value, "\"");
        first = false;
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) return bad("unterminated labels");
      key += "}";
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') return bad("no value");
    std::vector<std::string> rest = absl::StrSplit(line.substr(i + 1), ' ');
    double value = 0;
    if (rest.empty() || rest.size() > 2 || !ParseValue(rest[0], &value)) return bad("bad value");
    if (FamilyOf(name, out.types).empty()) return bad("sample before its TYPE line");
    if (!out.samples.emplace(key, value).second) return bad("duplicate sample");
  }
  return out;
}

}  // namespace slipstream::testkit
