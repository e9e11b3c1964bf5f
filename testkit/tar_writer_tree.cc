// SPDX-License-Identifier: Apache-2.0
#include "testkit/tar_writer_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"

namespace slipstream::testkit {

namespace {

// Sorted names of the entries of directory `path`, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return LastErrnoStatus(absl::StrCat("opendir ", path));
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(dir)) {
    std::string_view name(e->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoToStatus(err, absl::StrCat("readdir ", path));
  std::sort(names.begin(), names.end());
  return names;
}

// All extended attributes of `path` (not following symlinks).
absl::StatusOr<std::map<std::string, std::string>> ReadXattrs(const std::string& path) {
  std::map<std::string, std::string> out;
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len < 0) {
    // File systems without xattr support simply have none.
    if (errno == ENOTSUP) return out;
    return LastErrnoStatus(absl::StrCat("llistxattr ", path));
  }
  if (len == 0) return out;
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(path.c_str(), names.data(), names.size());
  if (len < 0) return LastErrnoStatus(absl::StrCat("llistxattr ", path));
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    const std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty()) continue;
    ssize_t vlen = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) {
      if (errno == ENODATA) continue;  // removed between the two calls
      return LastErrnoStatus(absl::StrCat("lgetxattr ", path, " ", name));
    }
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) return LastErrnoStatus(absl::StrCat("lgetxattr ", path, " ", name));
    value.resize(static_cast<size_t>(vlen));
    out.emplace(name, std::move(value));
  }
  return out;
}

class TreeWalker {
 public:
  TreeWalker(TarWriter& writer, const TreeOptions& options) : w_(writer), options_(options) {}

  absl::Status Walk(const std::string& dir, const std::string& rel) {
    SS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
    for (const std::string& name : names) {
      const std::string path = absl::StrCat(dir, "/", name);
      const std::string entry = rel.empty() ? name : absl::StrCat(rel, "/", name);
      SS_RETURN_IF_ERROR(AddOne(path, entry));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status AddOne(const std::string& path, const std::string& entry) {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) return LastErrnoStatus(absl::StrCat("lstat ", path));
    TarEntryOptions opts;
    opts.mode = st.st_mode & 07777;
    opts.uid = options_.uid.value_or(st.st_uid);
    opts.gid = options_.gid.value_or(st.st_gid);
    opts.mtime = absl::TimeFromTimespec(st.st_mtim);
    if (!options_.subsecond_mtime) opts.mtime = absl::FromUnixSeconds(st.st_mtim.tv_sec);
    if (options_.xattrs) {
      SS_ASSIGN_OR_RETURN(opts.xattrs, ReadXattrs(path));
    }

    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      const auto key = std::make_pair(st.st_dev, st.st_ino);
      auto it = first_names_.find(key);
      if (it != first_names_.end()) return w_.AddHardlink(entry, it->second, opts);
      first_names_.emplace(key, entry);
    }

    switch (st.st_mode & S_IFMT) {
      case S_IFDIR:
        SS_RETURN_IF_ERROR(w_.AddDir(entry, opts));
        return Walk(path, entry);
      case S_IFREG: {
        SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_NOFOLLOW));
        return w_.AddFileFromFd(entry, fd.get(), st.st_size, opts);
      }
      case S_IFLNK: {
        std::string target(static_cast<size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
        const ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
        if (n < 0) return LastErrnoStatus(absl::StrCat("readlink ", path));
        target.resize(static_cast<size_t>(n));
        return w_.AddSymlink(entry, target, opts);
      }
      case S_IFCHR:
        return w_.AddCharDevice(entry, major(st.st_rdev), minor(st.st_rdev), opts);
      case S_IFBLK:
        return w_.AddBlockDevice(entry, major(st.st_rdev), minor(st.st_rdev), opts);
      case S_IFIFO:
        return w_.AddFifo(entry, opts);
      default:
        // Sockets have no tar representation; GNU tar skips them with a warning too.
        log::Warn("tar tree: skipping socket or unknown file type", {{"path", path}});
        return absl::OkStatus();
    }
  }

  TarWriter& w_;
  const TreeOptions& options_;
  std::map<std::pair<dev_t, ino_t>, std::string> first_names_;
};

}  // namespace

absl::Status AddDirectoryTree(TarWriter& writer, const std::string& root,
                              const TreeOptions& options) {
  struct stat st;
  if (::stat(root.c_str(), &st) != 0) return LastErrnoStatus(absl::StrCat("stat ", root));
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat("tar tree: not a directory: ", root));
  }
  TreeWalker walker(writer, options);
  return Annotate(walker.Walk(root, ""), absl::StrCat("tar ", root));
}

}  // namespace slipstream::testkit
