// SPDX-License-Identifier: Apache-2.0
#pragma once

// Captures everything overlayfs cares about in a directory tree, to compare an unpacked layer
// with a reference extraction.

#include <cstdint>
#include <map>
#include <string>

namespace slipstream::unpack::testing {

struct NodeInfo {
  char kind = '?';  // f d l c b p
  uint32_t mode = 0;  // permission bits incl. setuid/setgid/sticky
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::string content;  // regular files (test trees are small); symlink target for links
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;
  int64_t mtime_sec = 0;
  int64_t mtime_nsec = 0;
  uint64_t inode = 0;   // only used to derive hardlink groups
  uint32_t nlink = 0;
  std::map<std::string, std::string> xattrs;

  bool operator==(const NodeInfo& o) const;
  std::string Describe() const;
};

struct SnapshotOptions {
  bool mtimes = true;
  bool xattrs = true;
};

// Path (relative, "." for the root) → node. Aborts the test on errors via ADD_FAILURE.
std::map<std::string, NodeInfo> Snapshot(const std::string& root, const SnapshotOptions& o = {});

// Human-readable differences; empty when equal.
std::string DiffSnapshots(const std::map<std::string, NodeInfo>& want,
                          const std::map<std::string, NodeInfo>& got);

// Converts a plain "tar -x" of a layer into overlay form, as the reference: ".wh.<name>"
// files become 0/0 character devices (owner and mtime of the marker), ".wh..wh..opq" files
// become trusted.overlay.opaque=y on their directory; directory mtimes are kept.
void ConvertWhiteouts(const std::string& root);

// Number of entries in `dir` whose name starts with `prefix`.
int CountEntriesWithPrefix(const std::string& dir, const std::string& prefix);

}  // namespace slipstream::unpack::testing
