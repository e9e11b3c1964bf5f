// SPDX-License-Identifier: Apache-2.0
#pragma once

// Path handling that keeps every write inside a layer directory: member names are split and
// checked lexically, and directories are opened with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS) so that neither ".." nor a symlink planted by an earlier member can
// lead outside.

#include <cstddef>
#include <list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/fd.h"

namespace slipstream::unpack {

// Splits a tar member name into its components, dropping "." and empty ones ("./a//b/" →
// {"a","b"}). An empty result names the layer root itself. InvalidArgument for absolute
// names, ".." components and NUL bytes.
absl::StatusOr<std::vector<std::string>> SplitEntryPath(std::string_view name);

// Joins components with '/'; "." for none.
std::string JoinComponents(const std::vector<std::string>& components, size_t count);

// openat2(dir_fd, rel, flags | O_CLOEXEC) resolving beneath dir_fd with no symlinks at all
// (no magic links either). Errors name `rel`: InvalidArgument when the path goes through a
// symlink or escapes, NotFound when a component is missing, otherwise as errno says.
absl::StatusOr<UniqueFd> OpenBeneath(int dir_fd, const std::string& rel, int flags);

// Removes `name` inside `dir_fd` and, for a directory, everything under it. Never follows
// symlinks. OK when `name` does not exist.
absl::Status RemoveAt(int dir_fd, const std::string& name);

// Opens the directories that members are written into, keeping the few most recently used
// open (O_PATH) so that a directory with many files costs one lookup, while no more than
// `capacity` descriptors are held whatever the layer's size. Missing directories are created
// (mode 0755, like tar -x) on the way. Owned by one LayerWriter; not thread-safe.
class DirFdCache {
 public:
  DirFdCache(int root_fd, size_t capacity) : root_fd_(root_fd), capacity_(capacity) {}

  // Returns a descriptor of the directory made of the first `count` of `components`, valid
  // until the next call or Clear(). Creates missing directories when `create` is set.
  // InvalidArgument naming the component when one is a symlink or not a directory.
  absl::StatusOr<int> Get(const std::vector<std::string>& components, size_t count, bool create);

  // Forgets the cached descriptors of directory `path` (as JoinComponents spells it) and of
  // everything below it, after it was removed or replaced. Others stay valid.
  void Forget(const std::string& path);

 private:
  absl::StatusOr<UniqueFd> OpenOrCreate(const std::vector<std::string>& components, size_t count,
                                        bool create);

  const int root_fd_;
  const size_t capacity_;
  std::list<std::pair<std::string, UniqueFd>> entries_;  // most recently used first
};

}  // namespace slipstream::unpack
