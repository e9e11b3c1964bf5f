// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// `du` of the tree at `dir` the way containerd's continuity fs.DiskUsage counts it: bytes are
// st_blocks * 512 and every inode (the directory itself included) is counted once, however
// many hard links reach it. Does not follow symlinks or cross into other mounts' trees beyond
// what lstat sees. Errors carry the path. Thread-safe (no shared state); does disk I/O.
absl::StatusOr<SnapshotUsage> DiskUsage(const std::string& dir);

}  // namespace slipstream::plugin
