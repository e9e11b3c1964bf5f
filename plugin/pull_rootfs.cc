// SPDX-License-Identifier: Apache-2.0
#include "plugin/pull_rootfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"

namespace slipstream::plugin {
namespace {

constexpr char kOpaqueXattr[] = "trusted.overlay.opaque";

absl::StatusOr<UniqueFd> OpenDirAt(int parent, const std::string& name, const std::string& path) {
  int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open directory ", path));
  return UniqueFd(fd);
}

// Names in the directory `fd`, without "." and "..".
absl::StatusOr<std::vector<std::string>> ListDir(int fd, const std::string& path) {
  int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return LastErrnoStatus(absl::StrCat("dup ", path));
  DIR* dir = ::fdopendir(dup);
  if (dir == nullptr) {
    ::close(dup);
    return LastErrnoStatus(absl::StrCat("opendir ", path));
  }
  ::rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(dir)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return ErrnoToStatus(err, absl::StrCat("readdir ", path));
  return names;
}

// rm -rf of `name` in `parent`, never following symlinks. OK when it does not exist.
absl::Status RemoveAt(int parent, const std::string& name, const std::string& path) {
  struct stat st;
  if (::fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoStatus(absl::StrCat("stat ", path));
  }
  if (S_ISDIR(st.st_mode)) {
    SS_ASSIGN_OR_RETURN(UniqueFd dir, OpenDirAt(parent, name, path));
    SS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir.get(), path));
    for (const std::string& n : names) {
      SS_RETURN_IF_ERROR(RemoveAt(dir.get(), n, absl::StrCat(path, "/", n)));
    }
  }
  if (::unlinkat(parent, name.c_str(), S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0) != 0) {
    return LastErrnoStatus(absl::StrCat("remove ", path));
  }
  return absl::OkStatus();
}

// Copies the xattrs of `src` to `dst` (both open descriptors), except overlay's own.
absl::Status CopyXattrs(int src, int dst, const std::string& path) {
  ssize_t len = ::flistxattr(src, nullptr, 0);
  if (len <= 0) return absl::OkStatus();
  std::string names(static_cast<size_t>(len), '\0');
  len = ::flistxattr(src, names.data(), names.size());
  if (len < 0) return LastErrnoStatus(absl::StrCat("list xattrs of ", path));
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string name = names.c_str() + pos;
    pos += name.size() + 1;
    if (absl::StartsWith(name, "trusted.overlay.")) continue;
    ssize_t vlen = ::fgetxattr(src, name.c_str(), nullptr, 0);
    if (vlen < 0) return LastErrnoStatus(absl::StrCat("read xattr ", name, " of ", path));
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::fgetxattr(src, name.c_str(), value.data(), value.size());
    if (vlen < 0) return LastErrnoStatus(absl::StrCat("read xattr ", name, " of ", path));
    if (::fsetxattr(dst, name.c_str(), value.data(), static_cast<size_t>(vlen), 0) != 0) {
      return LastErrnoStatus(absl::StrCat("set xattr ", name, " on ", path));
    }
  }
  return absl::OkStatus();
}

// Owner, then mode (chown clears setuid/setgid), then xattrs and times.
absl::Status ApplyAttrs(int src, int dst, const struct stat& st, const std::string& path) {
  if (::fchown(dst, st.st_uid, st.st_gid) != 0) return LastErrnoStatus(absl::StrCat("chown ", path));
  if (::fchmod(dst, st.st_mode & 07777) != 0) return LastErrnoStatus(absl::StrCat("chmod ", path));
  SS_RETURN_IF_ERROR(CopyXattrs(src, dst, path));
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::futimens(dst, times) != 0) return LastErrnoStatus(absl::StrCat("set times of ", path));
  return absl::OkStatus();
}

class Merger {
 public:
  explicit Merger(std::string layer) : layer_(std::move(layer)) {}

  absl::Status MergeDir(int src, int dst, const std::string& path) {
    SS_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(src, layer_ + path));
    for (const std::string& name : names) {
      SS_RETURN_IF_ERROR(MergeEntry(src, dst, name, absl::StrCat(path, "/", name)));
    }
    return absl::OkStatus();
  }

 private:
  absl::Status MergeEntry(int src_parent, int dst_parent, const std::string& name,
                          const std::string& path) {
    struct stat st;
    if (::fstatat(src_parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return LastErrnoStatus(absl::StrCat("stat ", layer_, path));
    }
    const std::string where = absl::StrCat("rootfs", path);
    if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      return RemoveAt(dst_parent, name, where);  // a whiteout
    }
    if (S_ISDIR(st.st_mode)) return MergeDirEntry(src_parent, dst_parent, name, path, st);

    SS_RETURN_IF_ERROR(RemoveAt(dst_parent, name, where));
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto it = links_.find({st.st_dev, st.st_ino});
      if (it != links_.end()) {
        if (::linkat(AT_FDCWD, it->second.c_str(), dst_parent, name.c_str(), 0) != 0) {
          return LastErrnoStatus(absl::StrCat("link ", where));
        }
        return absl::OkStatus();
      }
    }
    if (S_ISREG(st.st_mode)) {
      SS_RETURN_IF_ERROR(CopyFile(src_parent, dst_parent, name, where, st));
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(src_parent, name.c_str(), target.data(), target.size());
      if (n < 0) return LastErrnoStatus(absl::StrCat("readlink ", layer_, path));
      target.resize(static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), dst_parent, name.c_str()) != 0) {
        return LastErrnoStatus(absl::StrCat("symlink ", where));
      }
      if (::fchownat(dst_parent, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return LastErrnoStatus(absl::StrCat("chown ", where));
      }
      const struct timespec times[2] = {st.st_atim, st.st_mtim};
      (void)::utimensat(dst_parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    } else {
      // Devices and fifos.
      if (::mknodat(dst_parent, name.c_str(), st.st_mode, st.st_rdev) != 0) {
        return LastErrnoStatus(absl::StrCat("mknod ", where));
      }
      if (::fchownat(dst_parent, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 ||
          ::fchmodat(dst_parent, name.c_str(), st.st_mode & 07777, 0) != 0) {
        return LastErrnoStatus(absl::StrCat("set owner/mode of ", where));
      }
      const struct timespec times[2] = {st.st_atim, st.st_mtim};
      (void)::utimensat(dst_parent, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    }
    if (st.st_nlink > 1) links_[{st.st_dev, st.st_ino}] = DstPath(dst_parent, name);
    return absl::OkStatus();
  }

  absl::Status MergeDirEntry(int src_parent, int dst_parent, const std::string& name,
                             const std::string& path, const struct stat& st) {
    const std::string where = absl::StrCat("rootfs", path);
    SS_ASSIGN_OR_RETURN(UniqueFd src, OpenDirAt(src_parent, name, layer_ + path));
    char flag = 0;
    const bool opaque = ::fgetxattr(src.get(), kOpaqueXattr, &flag, 1) == 1 && flag == 'y';
    struct stat dst_st;
    const bool exists = ::fstatat(dst_parent, name.c_str(), &dst_st, AT_SYMLINK_NOFOLLOW) == 0;
    if (exists && (opaque || !S_ISDIR(dst_st.st_mode))) {
      SS_RETURN_IF_ERROR(RemoveAt(dst_parent, name, where));
    }
    if ((!exists || opaque || !S_ISDIR(dst_st.st_mode)) &&
        ::mkdirat(dst_parent, name.c_str(), 0700) != 0) {
      return LastErrnoStatus(absl::StrCat("mkdir ", where));
    }
    SS_ASSIGN_OR_RETURN(UniqueFd dst, OpenDirAt(dst_parent, name, where));
    SS_RETURN_IF_ERROR(MergeDir(src.get(), dst.get(), path));
    // After the children: creating them changed the directory's mtime.
    return ApplyAttrs(src.get(), dst.get(), st, where);
  }

  absl::Status CopyFile(int src_parent, int dst_parent, const std::string& name,
                        const std::string& where, const struct stat& st) {
    int sfd = ::openat(src_parent, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (sfd < 0) return LastErrnoStatus(absl::StrCat("open ", layer_, where.substr(6)));
    UniqueFd src(sfd);
    int dfd = ::openat(dst_parent, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600);
    if (dfd < 0) return LastErrnoStatus(absl::StrCat("create ", where));
    UniqueFd dst(dfd);
    for (off_t left = st.st_size; left > 0;) {
      ssize_t n = ::copy_file_range(src.get(), nullptr, dst.get(), nullptr,
                                    static_cast<size_t>(left), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return LastErrnoStatus(absl::StrCat("copy to ", where));
      if (n == 0) break;  // the source shrank; copy what there is
      left -= n;
    }
    return ApplyAttrs(src.get(), dst.get(), st, where);
  }

  // A path usable with linkat(AT_FDCWD, ...) later, through /proc so it stays right even
  // though we only hold descriptors.
  static std::string DstPath(int dir, const std::string& name) {
    char buf[4096];
    ssize_t n = ::readlink(absl::StrCat("/proc/self/fd/", dir).c_str(), buf, sizeof(buf) - 1);
    if (n < 0) return name;
    return absl::StrCat(std::string(buf, static_cast<size_t>(n)), "/", name);
  }

  const std::string layer_;
  std::map<std::pair<dev_t, ino_t>, std::string> links_;  // first rootfs path of each inode
};

}  // namespace

absl::Status MergeLayers(const std::vector<std::string>& layer_dirs, const std::string& rootfs) {
  SS_RETURN_IF_ERROR(MakeDirs(rootfs));
  SS_ASSIGN_OR_RETURN(UniqueFd root, OpenDirAt(AT_FDCWD, rootfs, rootfs));
  for (const std::string& layer : layer_dirs) {
    SS_ASSIGN_OR_RETURN(UniqueFd src, OpenDirAt(AT_FDCWD, layer, layer));
    Merger merger(layer);
    SS_RETURN_IF_ERROR(Annotate(merger.MergeDir(src.get(), root.get(), ""),
                                absl::StrCat("merge layer ", layer)));
  }
  return absl::OkStatus();
}

}  // namespace slipstream::plugin
