// SPDX-License-Identifier: Apache-2.0
#include "unpack/layer_writer_attrs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::unpack {
namespace {

struct timespec ToTimespec(const TarTime& t) {
  struct timespec ts;
  ts.tv_sec = static_cast<time_t>(t.sec);
  ts.tv_nsec = t.nsec;
  return ts;
}

// A path that reaches `name` through the already-opened (and already-verified) directory
// `dir_fd`: the kernel resolves /proc/self/fd/N to that directory, and only the last
// component is looked up, which the l*xattr calls do not follow.
std::string ProcPath(int dir_fd, const std::string& name) {
  return absl::StrCat("/proc/self/fd/", dir_fd, "/", name);
}

}  // namespace

absl::Status CheckXattrName(const std::string& name) {
  if (absl::StartsWith(name, "trusted.overlay.")) {
    return absl::InvalidArgumentError(
        absl::StrCat("xattr ", name, " is reserved for overlayfs and refused"));
  }
  return absl::OkStatus();
}

absl::Status ApplyAttrsToFd(int fd, const TarEntry& entry, bool with_times) {
  if (::fchown(fd, static_cast<uid_t>(entry.uid), static_cast<gid_t>(entry.gid)) != 0) {
    return LastErrnoStatus(absl::StrCat("chown to ", entry.uid, ":", entry.gid));
  }
  if (::fchmod(fd, entry.mode & 07777) != 0) return LastErrnoStatus("chmod");
  for (const auto& [key, value] : entry.xattrs) {
    SS_RETURN_IF_ERROR(CheckXattrName(key));
    if (::fsetxattr(fd, key.c_str(), value.data(), value.size(), 0) != 0) {
      return LastErrnoStatus(absl::StrCat("setxattr ", key));
    }
  }
  if (with_times) {
    struct timespec times[2] = {ToTimespec(entry.atime.value_or(entry.mtime)),
                                ToTimespec(entry.mtime)};
    if (::futimens(fd, times) != 0) return LastErrnoStatus("set times");
  }
  return absl::OkStatus();
}

absl::Status SetXattrAt(int dir_fd, const std::string& name, const std::string& key,
                        const std::string& value) {
  if (::lsetxattr(ProcPath(dir_fd, name).c_str(), key.c_str(), value.data(), value.size(), 0) !=
      0) {
    return LastErrnoStatus(absl::StrCat("setxattr ", key));
  }
  return absl::OkStatus();
}

absl::Status ApplyAttrsAt(int dir_fd, const std::string& name, const TarEntry& entry,
                          bool is_symlink) {
  if (::fchownat(dir_fd, name.c_str(), static_cast<uid_t>(entry.uid),
                 static_cast<gid_t>(entry.gid), AT_SYMLINK_NOFOLLOW) != 0) {
    return LastErrnoStatus(absl::StrCat("chown to ", entry.uid, ":", entry.gid));
  }
  // Symlink permissions mean nothing on Linux; every other node here was just created by us
  // with mknodat, so following is not a concern.
  if (!is_symlink && ::fchmodat(dir_fd, name.c_str(), entry.mode & 07777, 0) != 0) {
    return LastErrnoStatus("chmod");
  }
  for (const auto& [key, value] : entry.xattrs) {
    SS_RETURN_IF_ERROR(CheckXattrName(key));
    SS_RETURN_IF_ERROR(SetXattrAt(dir_fd, name, key, value));
  }
  const TarTime* atime = entry.atime ? &*entry.atime : nullptr;
  return SetTimesAt(dir_fd, name, entry.mtime, atime);
}

absl::Status SetTimesAt(int dir_fd, const std::string& name, const TarTime& mtime,
                        const TarTime* atime) {
  struct timespec times[2] = {ToTimespec(atime ? *atime : mtime), ToTimespec(mtime)};
  if (name == ".") {
    if (::futimens(dir_fd, times) != 0) return LastErrnoStatus("set times");
    return absl::OkStatus();
  }
  if (::utimensat(dir_fd, name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return LastErrnoStatus("set times");
  }
  return absl::OkStatus();
}

}  // namespace slipstream::unpack
