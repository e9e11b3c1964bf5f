// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "fuse/fs_types.h"
#include "index/ztoc.h"

namespace slipstream::fuse {

// What a node of a layer is. kWhiteout is an OCI ".wh.<name>" entry, shown as the character
// device 0/0 overlayfs expects.
enum class NodeKind : uint8_t { kDir, kFile, kSymlink, kCharDev, kBlockDev, kFifo, kWhiteout };

// The directory tree of one layer, built once from its zTOC and immutable afterwards, as an
// overlayfs lower directory must show it:
//  - names are cleaned ("./a//b/" is "a/b"); entries with ".." components, entries under a
//    non-directory and hardlinks to missing names or directories are left out (counted in
//    skipped()); a later entry with the same name replaces the earlier one, a directory over
//    a directory keeps the children (as tar -x does);
//  - ".wh.<name>" becomes <name> as a character device 0/0 (mode 0, the whiteout's owner and
//    mtime); ".wh..wh..opq" is hidden and makes its directory opaque (the xattr
//    trusted.overlay.opaque = "y");
//  - hardlinks share their target's node; files report st_nlink = their number of names,
//    directories 2 + their subdirectories;
//  - directories implied by paths but absent from the zTOC are 0755 root:root, mtime 0.
//
// Node numbers (the low 32 bits of inode numbers) depend only on the zTOC, so the same zTOC
// always gives the same numbers: the layer directory is 1, a node made by entry i is 2 + i,
// the k-th implied directory (in tar order of first mention) is 2 + entries + k.
//
// Xattrs come from the PAX records: "SCHILY.xattr.<key>" gives <key>. trusted.overlay.* keys
// from the archive are dropped: only whiteout conversion may produce overlay metadata.
//
// Node names are views into the zTOC's strings; the tree keeps the zTOC alive. Immutable
// after Build: thread-safe.
class LayerTree {
 public:
  struct Child {
    std::string_view name;
    uint32_t node = 0;  // index into nodes()
  };
  struct Node {
    uint32_t number = 0;      // n of the inode number
    uint32_t parent = 0;      // node index of the parent directory (the root: itself)
    int64_t entry = -1;       // zTOC entry giving attributes and data; -1 when implied
    uint32_t nlink = 1;
    NodeKind kind = NodeKind::kDir;
    bool opaque = false;
    int64_t mtime_sec = 0;
    int32_t mtime_nsec = 0;
    std::vector<Child> children;  // directories only, sorted by name
  };

  // Builds the tree of `ztoc` (a validated zTOC). InvalidArgument when the layer has more
  // nodes than 32-bit node numbers can name.
  static absl::StatusOr<std::shared_ptr<const LayerTree>> Build(
      std::shared_ptr<const index::Ztoc> ztoc);

  const index::Ztoc& ztoc() const { return *ztoc_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  const Node& root() const { return nodes_[0]; }
  // Index of `node` in nodes().
  uint32_t IndexOf(const Node& node) const {
    return static_cast<uint32_t>(&node - nodes_.data());
  }

  // The node numbered `number`, or nullptr.
  const Node* FindNumber(uint32_t number) const;
  // The child `name` of directory `dir`, or nullptr (also for non-directories).
  const Node* FindChild(const Node& dir, std::string_view name) const;
  // The node at a cleaned relative path ("" is the root), or nullptr.
  const Node* FindPath(std::string_view path) const;

  // stat(2) of `node` as inode MakeIno(layer_id, node.number).
  Attr AttrOf(const Node& node, uint32_t layer_id) const;
  // The zTOC entry holding the node's data (a regular file's content), or nullptr.
  const index::FileMetadata* EntryOf(const Node& node) const;
  // A symlink's target; empty for other kinds.
  std::string_view LinkTarget(const Node& node) const;
  // The node's extended attributes in key order (see the class comment).
  std::vector<std::pair<std::string, std::string_view>> Xattrs(const Node& node) const;

  // Sum of the regular files' sizes (each node once).
  int64_t content_bytes() const { return content_bytes_; }
  // zTOC entries left out while building (see the class comment).
  int64_t skipped() const { return skipped_; }

 private:
  class Builder;
  explicit LayerTree(std::shared_ptr<const index::Ztoc> ztoc) : ztoc_(std::move(ztoc)) {}

  std::shared_ptr<const index::Ztoc> ztoc_;
  std::vector<Node> nodes_;              // reachable nodes; nodes_[0] is the layer directory
  std::vector<uint32_t> index_by_number_;  // number -> index in nodes_, kNoNode when none
  int64_t content_bytes_ = 0;
  int64_t skipped_ = 0;
};

// Parses a zTOC mod_time (RFC 3339, optional fraction and offset). False when malformed.
bool ParseModTime(std::string_view text, int64_t* sec, int32_t* nsec);

}  // namespace slipstream::fuse
