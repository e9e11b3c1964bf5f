// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream::fuse {

// The filesystem type ("fuse.slipstream", "tmpfs", ...) of the topmost mount at `path` in
// `mountinfo` (the text of /proc/<pid>/mountinfo, whose octal escapes such as \040 are
// decoded), or nullopt when nothing is mounted exactly there. `path` must be canonical.
std::optional<std::string> MountTypeAt(std::string_view mountinfo, std::string_view path);

// MountTypeAt over this process's /proc/self/mountinfo. Errors reading it by errno.
absl::StatusOr<std::optional<std::string>> CurrentMountTypeAt(const std::string& path);

// `path` with its parent directory resolved by realpath(3) and its last component kept:
// canonical even when `path` itself is a dead FUSE mount (whose stat fails with ENOTCONN).
// Errors of realpath on the parent, by errno.
absl::StatusOr<std::string> CanonicalMountpoint(const std::string& path);

}  // namespace slipstream::fuse
