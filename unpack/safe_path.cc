// SPDX-License-Identifier: Apache-2.0
#include "unpack/safe_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::unpack {
namespace {

std::string Quote(std::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(AV(s.substr(0, 512))), "\"");
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitEntryPath(std::string_view name) {
  if (name.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("name ", Quote(name), " contains a NUL byte"));
  }
  if (!name.empty() && name[0] == '/') {
    return absl::InvalidArgumentError(absl::StrCat("absolute name ", Quote(name), " refused"));
  }
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) slash = name.size();
    std::string_view part = name.substr(pos, slash - pos);
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("name ", Quote(name), " contains \"..\""));
    }
    if (!part.empty() && part != ".") parts.emplace_back(part);
    pos = slash + 1;
  }
  return parts;
}

std::string JoinComponents(const std::vector<std::string>& components, size_t count) {
  if (count == 0) return ".";
  std::string out;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out.push_back('/');
    out += components[i];
  }
  return out;
}

absl::StatusOr<UniqueFd> OpenBeneath(int dir_fd, const std::string& rel, int flags) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  long fd;
  do {
    fd = ::syscall(SYS_openat2, dir_fd, rel.c_str(), &how, sizeof(how));
  } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
  if (fd >= 0) return UniqueFd(static_cast<int>(fd));
  const int err = errno;
  if (err == ELOOP) {
    return absl::InvalidArgumentError(absl::StrCat("path ", Quote(rel), " goes through a symlink"));
  }
  if (err == EXDEV) {
    return absl::InvalidArgumentError(absl::StrCat("path ", Quote(rel), " escapes the layer"));
  }
  if (err == ENOTDIR) {
    return absl::InvalidArgumentError(
        absl::StrCat("path ", Quote(rel), " goes through something that is not a directory"));
  }
  return ErrnoToStatus(err, absl::StrCat("openat2 ", Quote(rel)));
}

absl::Status RemoveAt(int dir_fd, const std::string& name) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoStatus(absl::StrCat("fstatat ", Quote(name)));
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
      return LastErrnoStatus(absl::StrCat("unlink ", Quote(name)));
    }
    return absl::OkStatus();
  }
  const int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus(absl::StrCat("open ", Quote(name)));
  DIR* dir = ::fdopendir(fd);  // takes ownership of fd
  if (dir == nullptr) {
    ::close(fd);
    return LastErrnoStatus(absl::StrCat("fdopendir ", Quote(name)));
  }
  absl::Status status;
  while (status.ok()) {
    errno = 0;
    struct dirent* de = ::readdir(dir);
    if (de == nullptr) {
      if (errno != 0) status = LastErrnoStatus(absl::StrCat("readdir ", Quote(name)));
      break;
    }
    const std::string child = de->d_name;
    if (child == "." || child == "..") continue;
    status = RemoveAt(::dirfd(dir), child);
  }
  ::closedir(dir);
  SS_RETURN_IF_ERROR(status);
  if (::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return LastErrnoStatus(absl::StrCat("rmdir ", Quote(name)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> DirFdCache::Get(const std::vector<std::string>& components, size_t count,
                                    bool create) {
  if (count == 0) return root_fd_;
  const std::string key = JoinComponents(components, count);
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->first == key) {
      entries_.splice(entries_.begin(), entries_, it);
      return entries_.front().second.get();
    }
  }
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenOrCreate(components, count, create));
  entries_.emplace_front(key, std::move(fd));
  while (entries_.size() > capacity_) entries_.pop_back();
  return entries_.front().second.get();
}

void DirFdCache::Forget(const std::string& path) {
  const std::string prefix = path + "/";
  entries_.remove_if([&](const std::pair<std::string, UniqueFd>& e) {
    return e.first == path || e.first.compare(0, prefix.size(), prefix) == 0;
  });
}

absl::StatusOr<UniqueFd> DirFdCache::OpenOrCreate(const std::vector<std::string>& components,
                                                  size_t count, bool create) {
  const int kFlags = O_PATH | O_DIRECTORY;
  absl::StatusOr<UniqueFd> whole = OpenBeneath(root_fd_, JoinComponents(components, count), kFlags);
  if (whole.ok() || !create || !absl::IsNotFound(whole.status())) return whole;
  // Some directory on the way is missing: walk down one component at a time, creating what
  // is not there. Each step still resolves beneath its parent without symlinks.
  UniqueFd current;
  int current_fd = root_fd_;
  for (size_t i = 0; i < count; ++i) {
    const std::string& part = components[i];
    absl::StatusOr<UniqueFd> next = OpenBeneath(current_fd, part, kFlags);
    if (!next.ok() && absl::IsNotFound(next.status())) {
      if (::mkdirat(current_fd, part.c_str(), 0755) != 0 && errno != EEXIST) {
        return LastErrnoStatus(absl::StrCat("mkdir ", Quote(JoinComponents(components, i + 1))));
      }
      next = OpenBeneath(current_fd, part, kFlags);
    }
    if (!next.ok()) return Annotate(next.status(), JoinComponents(components, i + 1));
    current = std::move(*next);
    current_fd = current.get();
  }
  return current;
}

}  // namespace slipstream::unpack
