// SPDX-License-Identifier: Apache-2.0
#include "tests/unpack/tree_snapshot.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "common/fd.h"
#include "gtest/gtest.h"

namespace slipstream::unpack::testing {
namespace {

std::map<std::string, std::string> ListXattrs(const std::string& path) {
  std::map<std::string, std::string> out;
  char names[65536];
  const ssize_t n = ::llistxattr(path.c_str(), names, sizeof(names));
  if (n < 0) return out;
  for (ssize_t i = 0; i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    char value[65536];
    const ssize_t vn = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof(value));
    if (vn >= 0) out[name] = std::string(value, static_cast<size_t>(vn));
  }
  return out;
}

void Walk(const std::string& root, const std::string& rel, const SnapshotOptions& o,
          std::map<std::string, NodeInfo>& out) {
  const std::string path = rel == "." ? root : root + "/" + rel;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    ADD_FAILURE() << "lstat " << path << ": " << std::strerror(errno);
    return;
  }
  NodeInfo n;
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.inode = st.st_ino;
  n.nlink = static_cast<uint32_t>(st.st_nlink);
  if (o.mtimes) {
    n.mtime_sec = st.st_mtim.tv_sec;
    n.mtime_nsec = st.st_mtim.tv_nsec;
  }
  if (o.xattrs) n.xattrs = ListXattrs(path);
  switch (st.st_mode & S_IFMT) {
    case S_IFREG: {
      n.kind = 'f';
      auto data = ReadFileToString(path, 256 << 20);
      if (!data.ok()) ADD_FAILURE() << data.status();
      n.content = data.ok() ? *data : "";
      break;
    }
    case S_IFDIR:
      n.kind = 'd';
      n.nlink = 0;  // depends on subdirectory count only
      break;
    case S_IFLNK: {
      n.kind = 'l';
      char buf[4096];
      const ssize_t len = ::readlink(path.c_str(), buf, sizeof(buf));
      n.content = len >= 0 ? std::string(buf, static_cast<size_t>(len)) : "";
      n.mode = 0;
      break;
    }
    case S_IFCHR:
    case S_IFBLK:
      n.kind = S_ISCHR(st.st_mode) ? 'c' : 'b';
      n.rdev_major = major(st.st_rdev);
      n.rdev_minor = minor(st.st_rdev);
      break;
    case S_IFIFO:
      n.kind = 'p';
      break;
  }
  out[rel] = n;
  if (n.kind != 'd') return;
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (struct dirent* de = ::readdir(d)) {
    std::string name = de->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : names) Walk(root, rel == "." ? name : rel + "/" + name, o, out);
}

}  // namespace

bool NodeInfo::operator==(const NodeInfo& o) const {
  return kind == o.kind && mode == o.mode && uid == o.uid && gid == o.gid &&
         content == o.content && rdev_major == o.rdev_major && rdev_minor == o.rdev_minor &&
         mtime_sec == o.mtime_sec && mtime_nsec == o.mtime_nsec && nlink == o.nlink &&
         xattrs == o.xattrs;
}

std::string NodeInfo::Describe() const {
  std::string s = std::string(1, kind) + " mode=" + std::to_string(mode) + " owner=" +
                  std::to_string(uid) + ":" + std::to_string(gid) + " size=" +
                  std::to_string(content.size()) + " rdev=" + std::to_string(rdev_major) + "," +
                  std::to_string(rdev_minor) + " mtime=" + std::to_string(mtime_sec) + "." +
                  std::to_string(mtime_nsec) + " nlink=" + std::to_string(nlink);
  if (kind == 'l') s += " -> " + content;
  for (const auto& [k, v] : xattrs) s += " " + k + "=" + std::to_string(v.size()) + "B";
  return s;
}

std::map<std::string, NodeInfo> Snapshot(const std::string& root, const SnapshotOptions& o) {
  std::map<std::string, NodeInfo> out;
  Walk(root, ".", o, out);
  return out;
}

std::string DiffSnapshots(const std::map<std::string, NodeInfo>& want,
                          const std::map<std::string, NodeInfo>& got) {
  std::string diff;
  for (const auto& [path, node] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      diff += "missing: " + path + " (" + node.Describe() + ")\n";
    } else if (!(it->second == node)) {
      diff += "differs: " + path + "\n  want " + node.Describe() + "\n  got  " +
              it->second.Describe() + "\n";
    }
  }
  for (const auto& [path, node] : got) {
    if (want.count(path) == 0) diff += "unexpected: " + path + " (" + node.Describe() + ")\n";
  }
  return diff;
}

void ConvertWhiteouts(const std::string& root) {
  std::map<std::string, NodeInfo> tree = Snapshot(root, {.mtimes = true, .xattrs = false});
  for (const auto& [rel, node] : tree) {
    const size_t slash = rel.rfind('/');
    const std::string dir_rel = slash == std::string::npos ? "." : rel.substr(0, slash);
    const std::string base = slash == std::string::npos ? rel : rel.substr(slash + 1);
    if (base.rfind(".wh.", 0) != 0) continue;
    const std::string dir = dir_rel == "." ? root : root + "/" + dir_rel;
    const NodeInfo& parent = tree.at(dir_rel);
    ASSERT_EQ(::unlink((dir + "/" + base).c_str()), 0) << rel;
    if (base == ".wh..wh..opq") {
      ASSERT_EQ(::setxattr(dir.c_str(), "trusted.overlay.opaque", "y", 1, 0), 0) << rel;
    } else {
      const std::string target = dir + "/" + base.substr(4);
      ASSERT_EQ(::mknod(target.c_str(), S_IFCHR | 0, makedev(0, 0)), 0) << rel;
      ASSERT_EQ(::lchown(target.c_str(), node.uid, node.gid), 0) << rel;
      struct timespec t[2] = {{node.mtime_sec, node.mtime_nsec}, {node.mtime_sec, node.mtime_nsec}};
      ASSERT_EQ(::utimensat(AT_FDCWD, target.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << rel;
    }
    struct timespec t[2] = {{parent.mtime_sec, parent.mtime_nsec},
                            {parent.mtime_sec, parent.mtime_nsec}};
    ASSERT_EQ(::utimensat(AT_FDCWD, dir.c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << rel;
  }
}

int CountEntriesWithPrefix(const std::string& dir, const std::string& prefix) {
  int count = 0;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return -1;
  while (struct dirent* de = ::readdir(d)) {
    if (std::string(de->d_name).rfind(prefix, 0) == 0) ++count;
  }
  ::closedir(d);
  return count;
}

}  // namespace slipstream::unpack::testing
