// SPDX-License-Identifier: Apache-2.0
#include "common/fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream {

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

absl::StatusOr<UniqueFd> OpenFile(const std::string& path, int flags, int mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open ", path));
  return UniqueFd(fd);
}

absl::Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus("write");
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status PwriteAll(int fd, std::string_view data, uint64_t offset) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus(absl::StrCat("pwrite at ", offset));
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PreadExact(int fd, char* buf, size_t length, uint64_t offset) {
  while (length > 0) {
    ssize_t n = ::pread(fd, buf, length, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus(absl::StrCat("pread at ", offset));
    }
    if (n == 0) {
      return absl::OutOfRangeError(absl::StrCat("pread at ", offset, ": file ends ", length,
                                                " bytes early"));
    }
    buf += n;
    length -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return LastErrnoStatus(absl::StrCat("read ", path));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("read ", path, ": larger than ", max_bytes, " bytes"));
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

absl::Status WriteFileAtomic(const std::string& path, std::string_view data, int mode,
                             Durability durability) {
  const bool sync = durability == Durability::kPowerLoss;
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash == 0 ? 1 : slash);
  std::string tmp = absl::StrCat(path, ".tmp-", std::random_device{}());
  {
    SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(tmp, O_WRONLY | O_CREAT | O_EXCL, mode));
    absl::Status st = WriteAll(fd.get(), data);
    if (st.ok() && sync && ::fsync(fd.get()) != 0) st = LastErrnoStatus(absl::StrCat("fsync ", tmp));
    if (!st.ok()) {
      ::unlink(tmp.c_str());
      return Annotate(st, absl::StrCat("write ", path));
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    absl::Status st = LastErrnoStatus(absl::StrCat("rename ", tmp, " to ", path));
    ::unlink(tmp.c_str());
    return st;
  }
  if (!sync) return absl::OkStatus();
  SS_ASSIGN_OR_RETURN(UniqueFd dfd, OpenFile(dir, O_RDONLY | O_DIRECTORY));
  // The rename is only durable once the directory entry is on disk.
  if (::fsync(dfd.get()) != 0) return LastErrnoStatus(absl::StrCat("fsync ", dir));
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return absl::InvalidArgumentError("mkdir: empty path");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty()) continue;
    if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) {
      return LastErrnoStatus(absl::StrCat("mkdir ", prefix));
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return LastErrnoStatus(absl::StrCat("stat ", path));
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("mkdir ", path, ": not a directory"));
  }
  return absl::OkStatus();
}

namespace {

// Removes the contents of directory `dirfd` (named `path` for errors) without following
// symlinks: each subdirectory is opened with O_NOFOLLOW relative to its parent.
absl::Status RemoveContents(int dirfd, const std::string& path) {
  int dup = ::dup(dirfd);
  if (dup < 0) return LastErrnoStatus(absl::StrCat("dup ", path));
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    ::close(dup);
    return LastErrnoStatus(absl::StrCat("opendir ", path));
  }
  absl::Status result;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (::unlinkat(dirfd, e->d_name, 0) == 0) continue;
    if (errno != EISDIR && errno != EPERM) {
      if (errno == ENOENT) continue;
      result = LastErrnoStatus(absl::StrCat("unlink ", path, "/", AV(name)));
      break;
    }
    int sub = ::openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) {
      result = LastErrnoStatus(absl::StrCat("open ", path, "/", AV(name)));
      break;
    }
    UniqueFd subfd(sub);
    result = RemoveContents(sub, absl::StrCat(path, "/", AV(name)));
    if (!result.ok()) break;
    if (::unlinkat(dirfd, e->d_name, AT_REMOVEDIR) != 0 && errno != ENOENT) {
      result = LastErrnoStatus(absl::StrCat("rmdir ", path, "/", AV(name)));
      break;
    }
  }
  ::closedir(d);
  return result;
}

}  // namespace

absl::Status RemoveAll(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoStatus(absl::StrCat("lstat ", path));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return LastErrnoStatus(absl::StrCat("unlink ", path));
    }
    return absl::OkStatus();
  }
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  SS_RETURN_IF_ERROR(RemoveContents(fd.get(), path));
  if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
    return LastErrnoStatus(absl::StrCat("rmdir ", path));
  }
  return absl::OkStatus();
}

}  // namespace slipstream
