// SPDX-License-Identifier: Apache-2.0
#include "fuse/mountinfo.h"

#include <climits>
#include <cstdlib>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::fuse {
namespace {

// The kernel writes space, tab, newline and backslash in paths as \ooo.
std::string Unescape(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const auto octal = [&](size_t k, char max) { return s[k] >= '0' && s[k] <= max; };
    if (s[i] == '\\' && i + 3 < s.size() && octal(i + 1, '3') && octal(i + 2, '7') &&
        octal(i + 3, '7')) {
      out.push_back(
          static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<std::string> MountTypeAt(std::string_view mountinfo, std::string_view path) {
  std::optional<std::string> type;
  for (absl::string_view line : absl::StrSplit(AV(mountinfo), '\n')) {
    // id parent major:minor root mountpoint options [optional...] - fstype source superopts
    std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
    if (fields.size() < 7 || Unescape(fields[4]) != path) continue;
    for (size_t i = 5; i + 1 < fields.size(); ++i) {
      if (fields[i] == "-") {
        type = std::string(fields[i + 1]);  // later lines are mounted on top
        break;
      }
    }
  }
  return type;
}

absl::StatusOr<std::optional<std::string>> CurrentMountTypeAt(const std::string& path) {
  SS_ASSIGN_OR_RETURN(std::string text, ReadFileToString("/proc/self/mountinfo", 64 << 20));
  return MountTypeAt(text, path);
}

absl::StatusOr<std::string> CanonicalMountpoint(const std::string& path) {
  std::string trimmed = path;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  const size_t slash = trimmed.rfind('/');
  if (slash == std::string::npos || slash + 1 == trimmed.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("mountpoint '", path, "' is not an absolute path"));
  }
  const std::string parent = slash == 0 ? "/" : trimmed.substr(0, slash);
  char resolved[PATH_MAX];
  if (::realpath(parent.c_str(), resolved) == nullptr) {
    return LastErrnoStatus(absl::StrCat("realpath ", parent));
  }
  std::string out = resolved;
  if (out != "/") out.push_back('/');
  return out + trimmed.substr(slash + 1);
}

}  // namespace slipstream::fuse
