// SPDX-License-Identifier: Apache-2.0
#include "unpack/layer_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "unpack/layer_writer_attrs.h"

namespace slipstream::unpack {
namespace {

constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr size_t kDirCacheSize = 16;

std::string Quote(std::string_view s) {
  return absl::StrCat("\"", absl::CHexEscape(AV(s.substr(0, 512))), "\"");
}

// True when the symlink at depth `dir_depth` (components of its directory) with target
// `target` resolves lexically outside the layer root.
bool SymlinkEscapes(size_t dir_depth, std::string_view target) {
  if (!target.empty() && target[0] == '/') return true;
  int64_t depth = static_cast<int64_t>(dir_depth);
  size_t pos = 0;
  while (pos <= target.size()) {
    size_t slash = target.find('/', pos);
    if (slash == std::string_view::npos) slash = target.size();
    std::string_view part = target.substr(pos, slash - pos);
    if (part == "..") {
      if (--depth < 0) return true;
    } else if (!part.empty() && part != ".") {
      ++depth;
    }
    pos = slash + 1;
  }
  return false;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LayerWriter>> LayerWriter::Create(const std::string& root) {
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW));
  // mkdtemp made it 0700; a layer root is 0755 unless the archive says otherwise.
  if (::fchmod(fd.get(), 0755) != 0) return LastErrnoStatus(absl::StrCat("chmod ", root));
  return std::unique_ptr<LayerWriter>(new LayerWriter(root, std::move(fd)));
}

LayerWriter::LayerWriter(std::string root, UniqueFd root_fd)
    : root_(std::move(root)), root_fd_(std::move(root_fd)), dirs_(root_fd_.get(), kDirCacheSize) {}

absl::Status LayerWriter::Named(const absl::Status& s) const {
  return Annotate(s, absl::StrCat("entry ", Quote(current_name_)));
}

absl::Status LayerWriter::OnEntry(const TarEntry& entry) {
  ++entries_;
  current_name_ = entry.name;
  return Named(HandleEntry(entry));
}

absl::Status LayerWriter::OnData(std::string_view data) {
  // Content of members that have no file here (whiteout markers) is dropped.
  if (!current_file_.valid()) return absl::OkStatus();
  content_bytes_ += static_cast<int64_t>(data.size());
  return Named(WriteAll(current_file_.get(), data));
}

absl::Status LayerWriter::OnEntryEnd() {
  if (!current_file_.valid()) return absl::OkStatus();
  UniqueFd fd = std::move(current_file_);
  std::unique_ptr<TarEntry> entry = std::move(current_entry_);
  return Named(ApplyAttrsToFd(fd.get(), *entry, /*with_times=*/true));
}

absl::Status LayerWriter::HandleEntry(const TarEntry& entry) {
  SS_ASSIGN_OR_RETURN(std::vector<std::string> parts, SplitEntryPath(entry.name));
  if (parts.empty()) return WriteRoot(entry);
  // Missing parents are created as tar -x does; a parent that is a symlink or a file fails.
  SS_ASSIGN_OR_RETURN(int parent, dirs_.Get(parts, parts.size() - 1, /*create=*/true));
  if (absl::StartsWith(parts.back(), AV(kWhiteoutPrefix))) {
    return WriteWhiteout(entry, parent, parts);
  }
  switch (entry.type) {
    case TarEntryType::kDirectory:
      return WriteDirectory(entry, parent, parts);
    case TarEntryType::kRegular:
      return WriteRegular(entry, parent, JoinComponents(parts, parts.size()));
    case TarEntryType::kHardlink:
      return WriteHardlink(entry, parent, JoinComponents(parts, parts.size()));
    case TarEntryType::kSymlink:
    case TarEntryType::kCharDevice:
    case TarEntryType::kBlockDevice:
    case TarEntryType::kFifo:
      return WriteNode(entry, parent, JoinComponents(parts, parts.size()));
  }
  return absl::InternalError("unknown entry type");
}

absl::Status LayerWriter::WriteRoot(const TarEntry& entry) {
  if (entry.type != TarEntryType::kDirectory) {
    return absl::InvalidArgumentError(absl::StrCat(
        "names the layer root but is a ", AV(TarEntryTypeName(entry.type))));
  }
  SS_RETURN_IF_ERROR(ApplyAttrsToFd(root_fd_.get(), entry, /*with_times=*/false));
  dir_mtimes_["."] = entry.mtime;
  return absl::OkStatus();
}

absl::StatusOr<bool> LayerWriter::ClearName(int parent, const std::string& base,
                                            const std::string& path, bool keep_dir) {
  struct stat st;
  if (::fstatat(parent, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return false;
    return LastErrnoStatus("fstatat");
  }
  if (S_ISDIR(st.st_mode)) {
    if (keep_dir) return true;
    dirs_.Forget(path);
  }
  SS_RETURN_IF_ERROR(RemoveAt(parent, base));
  return false;
}

absl::Status LayerWriter::WriteWhiteout(const TarEntry& entry, int parent,
                                        const std::vector<std::string>& parts) {
  const std::string& base = parts.back();
  if (base == kOpaqueMarker) {
    // The marker's directory is `parent` (an O_PATH descriptor): reach it through its
    // /proc/self/fd magic link, which setxattr (not lsetxattr) resolves to the directory.
    const std::string dir = absl::StrCat("/proc/self/fd/", parent);
    if (::setxattr(dir.c_str(), "trusted.overlay.opaque", "y", 1, 0) != 0) {
      return LastErrnoStatus("set trusted.overlay.opaque");
    }
    return absl::OkStatus();
  }
  const std::string hidden = base.substr(kWhiteoutPrefix.size());
  if (hidden.empty() || hidden == "." || hidden == "..") {
    return absl::InvalidArgumentError("whiteout of an invalid name");
  }
  std::vector<std::string> hidden_parts = parts;
  hidden_parts.back() = hidden;
  const std::string hidden_path = JoinComponents(hidden_parts, hidden_parts.size());
  SS_RETURN_IF_ERROR(ClearName(parent, hidden, hidden_path, /*keep_dir=*/false).status());
  // overlayfs' whiteout: a character device with device number 0/0.
  if (::mknodat(parent, hidden.c_str(), S_IFCHR | 0, makedev(0, 0)) != 0) {
    return LastErrnoStatus(absl::StrCat("mknod whiteout ", Quote(hidden)));
  }
  if (::fchownat(parent, hidden.c_str(), static_cast<uid_t>(entry.uid),
                 static_cast<gid_t>(entry.gid), AT_SYMLINK_NOFOLLOW) != 0) {
    return LastErrnoStatus("chown whiteout");
  }
  return SetTimesAt(parent, hidden, entry.mtime, nullptr);
}

absl::Status LayerWriter::WriteDirectory(const TarEntry& entry, int parent,
                                         const std::vector<std::string>& parts) {
  const std::string& base = parts.back();
  const std::string path = JoinComponents(parts, parts.size());
  SS_ASSIGN_OR_RETURN(bool kept, ClearName(parent, base, path, /*keep_dir=*/true));
  if (!kept && ::mkdirat(parent, base.c_str(), 0700) != 0) return LastErrnoStatus("mkdir");
  const int fd = ::openat(parent, base.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus("open directory");
  UniqueFd dir(fd);
  SS_RETURN_IF_ERROR(ApplyAttrsToFd(dir.get(), entry, /*with_times=*/false));
  dir_mtimes_[path] = entry.mtime;
  return absl::OkStatus();
}

absl::Status LayerWriter::WriteRegular(const TarEntry& entry, int parent, const std::string& path) {
  const std::string base = path.substr(path.rfind('/') + 1);
  SS_RETURN_IF_ERROR(ClearName(parent, base, path, /*keep_dir=*/false).status());
  const int fd = ::openat(parent, base.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return LastErrnoStatus("create file");
  current_file_ = UniqueFd(fd);
  current_entry_ = std::make_unique<TarEntry>(entry);
  return absl::OkStatus();
}

absl::Status LayerWriter::WriteHardlink(const TarEntry& entry, int parent, const std::string& path) {
  const std::string base = path.substr(path.rfind('/') + 1);
  absl::StatusOr<std::vector<std::string>> target = SplitEntryPath(entry.linkname);
  if (!target.ok()) {
    return Annotate(target.status(), absl::StrCat("hardlink target ", Quote(entry.linkname)));
  }
  if (target->empty()) return absl::InvalidArgumentError("hardlink to the layer root");
  const std::string target_path = JoinComponents(*target, target->size());
  if (target_path == path) return absl::OkStatus();  // a link to itself changes nothing
  // Resolve the target's directory without creating anything: it must already be in the
  // layer. `parent` stays valid: it is the most recently used of more than two cache slots.
  SS_ASSIGN_OR_RETURN(int target_dir, dirs_.Get(*target, target->size() - 1, /*create=*/false));
  const std::string& target_base = target->back();
  struct stat st;
  if (::fstatat(target_dir, target_base.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("hardlink target ", Quote(entry.linkname)));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("hardlink target ", Quote(entry.linkname), " is a directory"));
  }
  if (S_ISLNK(st.st_mode)) {
    char buf[PATH_MAX];
    const ssize_t n = ::readlinkat(target_dir, target_base.c_str(), buf, sizeof(buf));
    if (n < 0) return LastErrnoStatus("readlink hardlink target");
    if (SymlinkEscapes(target->size() - 1, std::string_view(buf, static_cast<size_t>(n)))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "hardlink target ", Quote(entry.linkname), " is a symlink pointing outside the layer"));
    }
  }
  SS_RETURN_IF_ERROR(ClearName(parent, base, path, /*keep_dir=*/false).status());
  // Clearing may have dropped cached descriptors (when a directory was replaced): look the
  // target's directory up again.
  SS_ASSIGN_OR_RETURN(target_dir, dirs_.Get(*target, target->size() - 1, /*create=*/false));
  // Flags 0: link the target itself, never what a symlink there points to.
  if (::linkat(target_dir, target_base.c_str(), parent, base.c_str(), 0) != 0) {
    return LastErrnoStatus(absl::StrCat("link to ", Quote(entry.linkname)));
  }
  return absl::OkStatus();
}

absl::Status LayerWriter::WriteNode(const TarEntry& entry, int parent, const std::string& path) {
  const std::string base = path.substr(path.rfind('/') + 1);
  SS_RETURN_IF_ERROR(ClearName(parent, base, path, /*keep_dir=*/false).status());
  switch (entry.type) {
    case TarEntryType::kSymlink:
      if (entry.linkname.empty()) return absl::InvalidArgumentError("symlink with an empty target");
      if (::symlinkat(entry.linkname.c_str(), parent, base.c_str()) != 0) {
        return LastErrnoStatus("symlink");
      }
      return ApplyAttrsAt(parent, base, entry, /*is_symlink=*/true);
    case TarEntryType::kCharDevice:
    case TarEntryType::kBlockDevice:
    case TarEntryType::kFifo: {
      const mode_t kind = entry.type == TarEntryType::kCharDevice   ? S_IFCHR
                          : entry.type == TarEntryType::kBlockDevice ? S_IFBLK
                                                                     : S_IFIFO;
      const dev_t dev = entry.type == TarEntryType::kFifo ? 0 : makedev(entry.devmajor, entry.devminor);
      if (::mknodat(parent, base.c_str(), kind | (entry.mode & 0777), dev) != 0) {
        return LastErrnoStatus("mknod");
      }
      return ApplyAttrsAt(parent, base, entry, /*is_symlink=*/false);
    }
    default:
      return absl::InternalError("WriteNode called for a non-node entry");
  }
}

absl::Status LayerWriter::Finish() {
  if (current_file_.valid()) return absl::InternalError("layer writer finished inside an entry");
  for (const auto& [path, mtime] : dir_mtimes_) {
    current_name_ = path;
    if (path == ".") {
      SS_RETURN_IF_ERROR(Named(SetTimesAt(root_fd_.get(), ".", mtime, nullptr)));
      continue;
    }
    absl::StatusOr<std::vector<std::string>> parts = SplitEntryPath(path);
    if (!parts.ok()) return Named(parts.status());
    absl::StatusOr<int> parent = dirs_.Get(*parts, parts->size() - 1, /*create=*/false);
    // The directory may have been replaced by a later member since; then it has no mtime of
    // its own to restore.
    if (!parent.ok()) continue;
    struct stat st;
    if (::fstatat(*parent, parts->back().c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISDIR(st.st_mode)) {
      continue;
    }
    SS_RETURN_IF_ERROR(Named(SetTimesAt(*parent, parts->back(), mtime, nullptr)));
  }
  return absl::OkStatus();
}

}  // namespace slipstream::unpack
