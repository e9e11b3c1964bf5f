// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream::remote {

// An OCI platform (os/architecture/variant) as found in image indexes and configs, with the
// matching rules containerd uses to pick a manifest. A plain value type; thread-compatible.
struct Platform {
  std::string os;            // "linux", "windows"
  std::string architecture;  // GOARCH spelling: "amd64", "arm64", "arm", "ppc64le", "s390x"
  std::string variant;       // "v7", "v8", "v3"; often empty
  std::string os_version;    // Windows only; informational

  // The platform this process runs on, from uname(2), normalized: linux/amd64,
  // linux/arm64/v8, linux/arm/v7, ... Never fails (unknown machines are passed through).
  static Platform Host();

  // Parses "os[/arch[/variant]]" ("linux/amd64", "linux/arm64/v8", "linux/arm/v7") and
  // normalizes the spelling (x86_64 → amd64, aarch64 → arm64, armhf → arm/v7, case folded).
  // A lone os means the host architecture. InvalidArgument naming the text when malformed.
  static absl::StatusOr<Platform> Parse(std::string_view text);

  // "os/arch" or "os/arch/variant".
  std::string String() const;

  // Returns a copy with the spellings normalized as containerd does: os lower-cased,
  // x86_64/x86-64 → amd64, aarch64 → arm64, armhf → arm/v7, armel → arm/v6, i386/i686 → 386,
  // arm without a variant → v7, bare variant digits get a "v" ("8" → "v8", "v8.0" → "v8").
  // arm64 keeps an empty or "v8" variant as written (the two are equal for matching).
  Platform Normalized() const;

  // True when an image built for `candidate` runs where *this is wanted: normalized os and
  // architecture equal and the variant equal or compatible (arm64 "" == "v8"; arm wanted vN
  // accepts candidate vM with M ≤ N; amd64 wanted vN accepts candidate "" or v1..vN; an empty
  // wanted variant accepts the architecture's baseline only; arm64 vN accepts v8..vN). Other
  // architectures need equal variants. os_version is ignored.
  bool Matches(const Platform& candidate) const;

  // True when the normalized os, architecture and variant are identical, an empty variant
  // being the baseline ("" == "v8" for arm64, "" == "v1" for amd64). os_version is ignored.
  bool ExactlyMatches(const Platform& candidate) const;

  friend bool operator==(const Platform&, const Platform&) = default;
};

}  // namespace slipstream::remote
