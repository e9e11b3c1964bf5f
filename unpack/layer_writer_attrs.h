// SPDX-License-Identifier: Apache-2.0
#pragma once

// Metadata of extracted nodes (internal to unpack/): owner, mode, xattrs and times, applied in
// the order that keeps each one: chown first (it clears setuid/setgid and file
// capabilities), then chmod, then xattrs (security.capability survives), then times.

#include <string>

#include "absl/status/status.h"
#include "unpack/tar_entry.h"

namespace slipstream::unpack {

// Refuses xattr names a layer must not set itself: trusted.overlay.* would let an archive
// forge overlayfs metadata (redirects, metacopy) that only whiteout conversion may produce.
absl::Status CheckXattrName(const std::string& name);

// Applies owner, mode (07777), xattrs and (when `with_times`) mtime/atime of `entry` to the
// open file or directory `fd` (not O_PATH).
absl::Status ApplyAttrsToFd(int fd, const TarEntry& entry, bool with_times);

// Applies owner, mode (unless `is_symlink`), xattrs and times to `name` inside the O_PATH
// directory `dir_fd`, never following a symlink at `name`.
absl::Status ApplyAttrsAt(int dir_fd, const std::string& name, const TarEntry& entry,
                          bool is_symlink);

// Sets the mtime (and atime, or mtime again when absent) of `name` in `dir_fd` without
// following symlinks; `name` "." with a non-O_PATH fd means the directory itself.
absl::Status SetTimesAt(int dir_fd, const std::string& name, const TarTime& mtime,
                        const TarTime* atime);

// Sets one xattr on `name` inside `dir_fd` without following a symlink there.
absl::Status SetXattrAt(int dir_fd, const std::string& name, const std::string& key,
                        const std::string& value);

}  // namespace slipstream::unpack
