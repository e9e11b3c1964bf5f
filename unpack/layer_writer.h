// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fd.h"
#include "unpack/safe_path.h"
#include "unpack/tar_entry.h"

namespace slipstream::unpack {

// Writes the members of a layer tar into a directory that overlayfs can use as a lower (or
// upper) directory: regular files, directories, symlinks, hardlinks within the layer, fifos
// and devices, with numeric owners, modes including setuid/setgid/sticky, xattrs and
// nanosecond mtimes. OCI whiteouts are converted: ".wh.<name>" becomes a 0/0 character device
// <name>, ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory. A later member with
// the same name replaces an earlier one (a directory over a directory merges), as tar -x does.
//
// Nothing is ever written outside the root: absolute names and ".." are refused, parent
// directories are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) so a symlink
// member cannot redirect later members, nodes are created with O_EXCL/O_NOFOLLOW or *at calls
// that do not follow, and hardlinks must name an existing non-directory member that is not a
// symlink pointing out of the layer. Every error names the member.
//
// Directory mtimes are applied by Finish(), because creating children changes them. Only the
// file being written and a few parent directories are held open at a time.
//
// Feed it from a TarReader. Owned by the caller (LayerUnpacker); not thread-safe. It writes
// as root would (chown, trusted.* xattrs, device nodes): run it with CAP_CHOWN, CAP_MKNOD and
// CAP_SYS_ADMIN.
class LayerWriter : public TarEntryHandler {
 public:
  // Writes into the existing directory `root` (normally empty), whose mode becomes 0755
  // unless the archive has a "./" member. Errors from opening it.
  static absl::StatusOr<std::unique_ptr<LayerWriter>> Create(const std::string& root);

  // TarEntryHandler. InvalidArgument for names or links that would escape the root, for
  // unsupported members (e.g. a whiteout of "..") and refused xattrs; otherwise the failing
  // system call's status. Each message starts with `entry "<name>": `.
  absl::Status OnEntry(const TarEntry& entry) override;
  absl::Status OnData(std::string_view data) override;
  absl::Status OnEntryEnd() override;

  // Applies the deferred directory mtimes. Call once after the last member.
  absl::Status Finish();

  int64_t entries() const { return entries_; }
  int64_t content_bytes() const { return content_bytes_; }

 private:
  LayerWriter(std::string root, UniqueFd root_fd);

  absl::Status HandleEntry(const TarEntry& entry);
  absl::Status WriteRoot(const TarEntry& entry);
  absl::Status WriteWhiteout(const TarEntry& entry, int parent, const std::vector<std::string>& parts);
  absl::Status WriteHardlink(const TarEntry& entry, int parent, const std::string& base);
  absl::Status WriteDirectory(const TarEntry& entry, int parent, const std::vector<std::string>& parts);
  absl::Status WriteRegular(const TarEntry& entry, int parent, const std::string& base);
  absl::Status WriteNode(const TarEntry& entry, int parent, const std::string& base);
  // Makes room for a new node `base` (whose relative path is `path`) in `parent`. Returns true
  // when an existing directory is kept instead (`keep_dir` set and it is a directory).
  absl::StatusOr<bool> ClearName(int parent, const std::string& base, const std::string& path,
                                 bool keep_dir);
  absl::Status Named(const absl::Status& s) const;

  const std::string root_;
  const UniqueFd root_fd_;
  DirFdCache dirs_;
  std::string current_name_;
  // The regular file being written, and the member it came from (metadata applied at its end).
  UniqueFd current_file_;
  std::unique_ptr<TarEntry> current_entry_;
  // Relative directory path → mtime, applied by Finish(); later members override.
  std::map<std::string, TarTime> dir_mtimes_;
  int64_t entries_ = 0;
  int64_t content_bytes_ = 0;
};

}  // namespace slipstream::unpack
