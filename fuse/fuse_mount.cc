// SPDX-License-Identifier: Apache-2.0
#include "fuse/fuse_mount.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"

namespace slipstream::fuse {

absl::StatusOr<UniqueFd> MountFuse(const std::string& mountpoint,
                                   const FuseMountOptions& options) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    return LastErrnoStatus(absl::StrCat("stat mountpoint ", mountpoint));
  }
  UniqueFd fd(::open("/dev/fuse", O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus("open /dev/fuse");
  // rootmode is octal in the kernel's option parser.
  std::string data = absl::StrFormat("fd=%d,rootmode=%o,user_id=%u,group_id=%u", fd.get(),
                                     S_IFDIR, ::getuid(), ::getgid());
  if (options.allow_other) absl::StrAppend(&data, ",allow_other");
  if (options.default_permissions) absl::StrAppend(&data, ",default_permissions");
  const std::string type = absl::StrCat("fuse.", options.subtype);
  if (::mount(options.fsname.c_str(), mountpoint.c_str(), type.c_str(),
              MS_NOSUID | MS_NODEV | MS_RDONLY, data.c_str()) != 0) {
    return LastErrnoStatus(absl::StrCat("mount ", type, " on ", mountpoint));
  }
  return fd;
}

absl::Status UnmountFuse(const std::string& mountpoint) {
  if (::umount2(mountpoint.c_str(), UMOUNT_NOFOLLOW) == 0) return absl::OkStatus();
  if (errno == EINVAL || errno == ENOENT) return absl::OkStatus();
  if (errno != EBUSY) return LastErrnoStatus(absl::StrCat("umount ", mountpoint));
  if (::umount2(mountpoint.c_str(), MNT_FORCE | MNT_DETACH | UMOUNT_NOFOLLOW) != 0 &&
      errno != EINVAL && errno != ENOENT) {
    return LastErrnoStatus(absl::StrCat("umount -f -l ", mountpoint));
  }
  return absl::OkStatus();
}

absl::Status SetKernelReadAhead(const std::string& mountpoint, int64_t bytes,
                                const std::string& sysfs_bdi) {
  if (bytes < 0) {
    return absl::InvalidArgumentError(absl::StrCat("read-ahead of ", bytes, " bytes"));
  }
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    return LastErrnoStatus(absl::StrCat("stat mountpoint ", mountpoint));
  }
  const std::string path =
      absl::StrCat(sysfs_bdi, "/", major(st.st_dev), ":", minor(st.st_dev), "/read_ahead_kb");
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus(absl::StrCat("open ", path));
  const std::string kib = absl::StrCat((bytes + 1023) / 1024, "\n");
  if (::write(fd.get(), kib.data(), kib.size()) != static_cast<ssize_t>(kib.size())) {
    return LastErrnoStatus(absl::StrCat("write ", path));
  }
  return absl::OkStatus();
}

}  // namespace slipstream::fuse
