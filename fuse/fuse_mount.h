// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/fd.h"

namespace slipstream::fuse {

struct FuseMountOptions {
  // Let every user (containers, overlayfs' mounter) see the files, not only the mounter.
  bool allow_other = true;
  // Let the kernel check permissions from the mode bits the filesystem reports.
  bool default_permissions = true;
  // The "source" in /proc/mounts; the type is "fuse.<subtype>".
  std::string fsname = "slipstream";
  std::string subtype = "slipstream";
};

// Opens /dev/fuse and mounts a read-only (ro, nosuid, nodev) FUSE filesystem at `mountpoint`
// with mount(2), returning the connection's /dev/fuse descriptor: whoever reads requests from
// it serves the mount (FuseServer::Serve). Mounting directly rather than through libfuse
// lets the descriptor be kept, passed to another process and served again across a daemon
// restart. Needs CAP_SYS_ADMIN. Errors: NotFound when /dev/fuse or the mountpoint is missing,
// PermissionDenied without the capability, the mount(2) errno otherwise.
absl::StatusOr<UniqueFd> MountFuse(const std::string& mountpoint,
                                   const FuseMountOptions& options = {});

// Unmounts the FUSE filesystem at `mountpoint`. When it is busy (an overlay or a process
// still uses it), the connection is aborted first (MNT_FORCE: pending and later requests
// fail with ENOTCONN instead of waiting for a server that is going away) and the mount is
// detached (MNT_DETACH). OK when nothing is mounted there (EINVAL/ENOENT from umount2).
absl::Status UnmountFuse(const std::string& mountpoint);

// Sets the kernel's read-ahead window for the filesystem mounted at `mountpoint`: the
// read_ahead_kb of its backing device info, <sysfs_bdi>/<major>:<minor>/read_ahead_kb
// (`bytes` rounded up to KiB). A FUSE mount starts at 128 KiB, so a sequential reader's
// requests reach the server 128 KiB at a time; a larger window lets the kernel ask for
// more at once. Needs root. Errors name the mountpoint or the sysfs file.
absl::Status SetKernelReadAhead(const std::string& mountpoint, int64_t bytes,
                                const std::string& sysfs_bdi = "/sys/class/bdi");

}  // namespace slipstream::fuse
