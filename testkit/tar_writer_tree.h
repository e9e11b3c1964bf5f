// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "testkit/tar_writer.h"

namespace slipstream::testkit {

// What AddDirectoryTree copies from the file system into the tar stream.
struct TreeOptions {
  // Copy extended attributes (llistxattr/lgetxattr) as SCHILY.xattr records.
  bool xattrs = true;
  // Keep nanoseconds of mtimes (PAX mtime records); false truncates to whole seconds.
  bool subsecond_mtime = true;
  // When set, every entry gets this owner instead of the file's.
  std::optional<int64_t> uid, gid;
};

// Appends every entry below `root` (not `root` itself) to `writer`, named relative to `root`
// without a leading "./": directories (before their contents), regular files (streamed from
// disk), symlinks, hardlinks (the second and later names of an inode with st_nlink > 1
// become hardlink entries to the first name written), character and block devices, fifos;
// sockets are skipped, as tar does. Names are visited in byte order so that the same tree
// always gives the same stream. Owners, permission bits (setuid/setgid/sticky included),
// mtimes and xattrs come from lstat(2) and the xattr calls, per `options`.
//
// Errors: NotFound when `root` does not exist, InvalidArgument when it is not a directory,
// errno statuses naming the path for unreadable entries, and the writer's own errors.
// Thread-compatible: the tree must not change while it is walked.
absl::Status AddDirectoryTree(TarWriter& writer, const std::string& root,
                              const TreeOptions& options = {});

}  // namespace slipstream::testkit
