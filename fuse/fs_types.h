// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>

// Plain value types shared by the lazy layer filesystem (LayerFs) and its libfuse adapter
// (FuseServer). No libfuse types here: the filesystem logic is tested without libfuse.
namespace slipstream::fuse {

// Inode numbers. The root directory is FUSE_ROOT_ID (1). Every other inode belongs to one
// layer and is (layer_id << 32) | n, where n is the node's number inside the layer's tree
// (LayerTree): 1 for the layer's own directory, then numbers derived from the zTOC. Layer ids
// are >= 1, so no layer inode collides with the root.
inline constexpr uint64_t kRootIno = 1;
inline constexpr uint32_t kLayerRootNumber = 1;

inline constexpr uint64_t MakeIno(uint32_t layer_id, uint32_t number) {
  return (uint64_t{layer_id} << 32) | number;
}
inline constexpr uint32_t LayerIdOf(uint64_t ino) { return static_cast<uint32_t>(ino >> 32); }
inline constexpr uint32_t NodeNumberOf(uint64_t ino) { return static_cast<uint32_t>(ino); }

// What stat(2) shows for one inode (st_ino, st_mode with the file type, ...). Times are the
// entry's mtime; atime and ctime report the same value.
struct Attr {
  uint64_t ino = 0;
  uint32_t mode = 0;     // S_IF* type bits | permission bits (setuid/setgid/sticky included)
  uint32_t nlink = 1;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;     // makedev(major, minor) for devices; 0 otherwise (whiteouts too)
  int64_t size = 0;
  int64_t blocks = 0;    // 512-byte blocks
  int64_t mtime_sec = 0;
  int32_t mtime_nsec = 0;
  friend bool operator==(const Attr&, const Attr&) = default;
};

// One directory entry as ReadDir hands it out. `offset` is the cookie of the entry after
// this one: passing it back to ReadDir resumes there. `attr` is filled for every entry; the
// adapter sends it only for readdirplus.
struct DirEntry {
  std::string name;
  Attr attr;
  int64_t offset = 0;
};

// What statfs(2) shows. The filesystem is read-only: nothing is free.
struct FsStats {
  uint64_t block_size = 4096;
  uint64_t blocks = 0;  // uncompressed bytes of all layers / block_size, rounded up
  uint64_t files = 0;   // inodes of all layers, plus the root
  uint64_t name_max = 255;
};

}  // namespace slipstream::fuse
