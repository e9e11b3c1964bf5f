// SPDX-License-Identifier: Apache-2.0
#include "remote/platform.h"

#include <sys/utsname.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"

namespace slipstream::remote {
namespace {

std::string Quote(std::string_view text) {
  constexpr size_t kMax = 100;
  std::string out = absl::CHexEscape(AV(text.substr(0, kMax)));
  if (text.size() > kMax) out += "...";
  return absl::StrCat("\"", out, "\"");
}

bool ValidPart(std::string_view part) {
  if (part.empty() || part.size() > 64) return false;
  for (char c : part) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' &&
        c != '.') {
      return false;
    }
  }
  return true;
}

bool IsKnownOs(std::string_view os) {
  for (std::string_view k : {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd",
                             "solaris", "illumos", "aix", "android", "ios", "js", "wasip1",
                             "plan9", "dragonfly", "macos"}) {
    if (os == k) return true;
  }
  return false;
}

bool IsKnownArch(std::string_view arch) {
  for (std::string_view k :
       {"amd64", "x86_64", "x86-64", "arm64", "aarch64", "arm", "armhf", "armel", "386", "i386",
        "i686", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64", "mipsle", "mips",
        "loong64", "wasm"}) {
    if (arch == k) return true;
  }
  return false;
}

// A variant as a comparable version: "v7" → 7.0, "v8.2" → 8.2. The baseline variant of an
// architecture (arm64 → v8, amd64 → v1) stands in for an empty one. -1 when unparsable.
double VariantLevel(std::string_view arch, std::string_view variant) {
  if (variant.empty()) {
    if (arch == "arm64") return 8;
    if (arch == "amd64") return 1;
    if (arch == "arm") return 7;
    return 0;
  }
  if (variant.front() != 'v') return -1;
  double level = 0;
  if (!absl::SimpleAtod(AV(variant.substr(1)), &level) || level < 0) return -1;
  return level;
}

}  // namespace

Platform Platform::Normalized() const {
  Platform p = *this;
  p.os = absl::AsciiStrToLower(os);
  if (p.os == "macos") p.os = "darwin";
  p.architecture = absl::AsciiStrToLower(architecture);
  p.variant = absl::AsciiStrToLower(variant);
  // Bare version numbers ("7", "8.0") are spelled with a leading "v" in OCI.
  if (!p.variant.empty() && absl::ascii_isdigit(static_cast<unsigned char>(p.variant[0]))) {
    p.variant = "v" + p.variant;
  }
  if (p.architecture == "x86_64" || p.architecture == "x86-64") {
    p.architecture = "amd64";
  } else if (p.architecture == "aarch64" || p.architecture == "arm64") {
    p.architecture = "arm64";
    if (p.variant == "v8.0") p.variant = "v8";
    if (p.variant == "v9.0") p.variant = "v9";
  } else if (p.architecture == "armhf") {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (p.architecture == "armel") {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (p.architecture == "arm") {
    if (p.variant.empty()) p.variant = "v7";
  } else if (p.architecture == "i386" || p.architecture == "i686") {
    p.architecture = "386";
  }
  return p;
}

Platform Platform::Host() {
  Platform p;
  p.os = "linux";
  struct utsname u;
  if (uname(&u) != 0) {
    // uname cannot fail with a valid buffer; fall back to what we were compiled for.
#if defined(__x86_64__)
    p.architecture = "amd64";
#elif defined(__aarch64__)
    p.architecture = "arm64";
    p.variant = "v8";
#else
    p.architecture = "unknown";
#endif
    return p;
  }
  p.os = absl::AsciiStrToLower(u.sysname);
  std::string machine = absl::AsciiStrToLower(u.machine);
  if (machine == "x86_64" || machine == "amd64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64" || machine == "arm64") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (machine == "armv8l") {
    // A 32-bit userland on an ARMv8 CPU: it runs arm images of every level, not arm64 ones.
    p.architecture = "arm";
    p.variant = "v8";
  } else if (machine.rfind("armv", 0) == 0 && machine.size() >= 5 &&
             absl::ascii_isdigit(static_cast<unsigned char>(machine[4]))) {
    p.architecture = "arm";
    p.variant = absl::StrCat("v", machine.substr(4, 1));
  } else if (machine == "i386" || machine == "i486" || machine == "i586" || machine == "i686") {
    p.architecture = "386";
  } else {
    p.architecture = machine;  // ppc64le, s390x, riscv64 already use the GOARCH spelling
  }
  return p;
}

absl::StatusOr<Platform> Platform::Parse(std::string_view text) {
  std::vector<std::string_view> parts;
  for (absl::string_view part : absl::StrSplit(AV(text), '/')) {
    parts.emplace_back(part.data(), part.size());
  }
  if (parts.empty() || parts.size() > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid platform ", Quote(text), ": want os/arch[/variant]"));
  }
  for (std::string_view part : parts) {
    if (!ValidPart(part)) {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid platform ", Quote(text), ": malformed component"));
    }
  }
  Platform p;
  if (parts.size() == 1) {
    // A single component is an os ("linux") or an architecture ("arm64"), completed from
    // the host as containerd does.
    std::string one = absl::AsciiStrToLower(AV(parts[0]));
    Platform host = Host();
    if (IsKnownOs(one)) {
      p.os = one;
      p.architecture = host.architecture;
      p.variant = host.variant;
    } else if (IsKnownArch(one)) {
      p.os = host.os;
      p.architecture = one;
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("invalid platform ", Quote(text), ": unknown os or architecture"));
    }
  } else {
    p.os = std::string(parts[0]);
    p.architecture = std::string(parts[1]);
    if (parts.size() == 3) p.variant = std::string(parts[2]);
  }
  return p.Normalized();
}

std::string Platform::String() const {
  std::string out = absl::StrCat(os, "/", architecture);
  if (!variant.empty()) absl::StrAppend(&out, "/", variant);
  return out;
}

bool Platform::ExactlyMatches(const Platform& candidate) const {
  Platform w = Normalized();
  Platform c = candidate.Normalized();
  if (w.os != c.os || w.architecture != c.architecture) return false;
  if (w.variant == c.variant) return true;
  // An unspelled variant is the architecture's baseline, the same image.
  double wl = VariantLevel(w.architecture, w.variant);
  double cl = VariantLevel(c.architecture, c.variant);
  return (w.architecture == "arm64" || w.architecture == "amd64") && wl >= 0 && wl == cl;
}

bool Platform::Matches(const Platform& candidate) const {
  if (ExactlyMatches(candidate)) return true;
  Platform w = Normalized();
  Platform c = candidate.Normalized();
  if (w.os != c.os || w.architecture != c.architecture) return false;
  // Only these architectures have backward-compatible variant levels; for the rest a
  // variant is a distinct ABI.
  if (w.architecture != "arm" && w.architecture != "arm64" && w.architecture != "amd64") {
    return false;
  }
  double wl = VariantLevel(w.architecture, w.variant);
  double cl = VariantLevel(c.architecture, c.variant);
  if (wl < 0 || cl < 0) return false;
  return cl <= wl;
}

}  // namespace slipstream::remote
