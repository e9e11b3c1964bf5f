// SPDX-License-Identifier: Apache-2.0
#include "tests/plugin/snapshot_test_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fd.h"
#include "common/status.h"

namespace slipstream::plugin::testing {

Applier CreateFile(const std::string& rel, const std::string& content, int mode) {
  return [=](const std::string& root) -> absl::Status {
    std::string path = root + "/" + rel;
    SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_WRONLY | O_CREAT | O_TRUNC, mode));
    SS_RETURN_IF_ERROR(WriteAll(fd.get(), content));
    if (::fchmod(fd.get(), mode) != 0) return LastErrnoStatus("fchmod " + path);
    return absl::OkStatus();
  };
}

Applier CreateDir(const std::string& rel, int mode) {
  return [=](const std::string& root) -> absl::Status {
    std::string path = root + "/" + rel;
    if (::mkdir(path.c_str(), mode) != 0) return LastErrnoStatus("mkdir " + path);
    if (::chmod(path.c_str(), mode) != 0) return LastErrnoStatus("chmod " + path);
    return absl::OkStatus();
  };
}

Applier RemovePath(const std::string& rel) {
  return [=](const std::string& root) { return RemoveAll(root + "/" + rel); };
}

Applier HardLink(const std::string& old_rel, const std::string& new_rel) {
  return [=](const std::string& root) -> absl::Status {
    if (::link((root + "/" + old_rel).c_str(), (root + "/" + new_rel).c_str()) != 0) {
      return LastErrnoStatus("link " + new_rel);
    }
    return absl::OkStatus();
  };
}

Applier RenamePath(const std::string& old_rel, const std::string& new_rel) {
  return [=](const std::string& root) -> absl::Status {
    if (::rename((root + "/" + old_rel).c_str(), (root + "/" + new_rel).c_str()) != 0) {
      return LastErrnoStatus("rename " + old_rel);
    }
    return absl::OkStatus();
  };
}

Applier Chown(const std::string& rel, int uid, int gid) {
  return [=](const std::string& root) -> absl::Status {
    if (::lchown((root + "/" + rel).c_str(), uid, gid) != 0) return LastErrnoStatus("chown " + rel);
    return absl::OkStatus();
  };
}

Applier Chain(std::vector<Applier> appliers) {
  return [=](const std::string& root) -> absl::Status {
    for (const auto& a : appliers) SS_RETURN_IF_ERROR(a(root));
    return absl::OkStatus();
  };
}

namespace {

void Walk(const std::string& root, const std::string& rel, std::map<std::string, std::string>* out) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    std::string p = root + "/" + r;
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0) continue;
    std::string desc = absl::StrFormat("%o %d:%d ", st.st_mode, st.st_uid, st.st_gid);
    if (S_ISREG(st.st_mode)) {
      desc += ReadFileToString(p).value_or("<unreadable>");
    } else if (S_ISLNK(st.st_mode)) {
      char buf[4096];
      ssize_t n2 = ::readlink(p.c_str(), buf, sizeof(buf));
      desc += std::string(buf, n2 > 0 ? n2 : 0);
    } else if (S_ISCHR(st.st_mode)) {
      desc += absl::StrCat("dev ", st.st_rdev);
    }
    (*out)[r] = desc;
    if (S_ISDIR(st.st_mode)) Walk(root, r, out);
  }
}

}  // namespace

std::map<std::string, std::string> DumpTree(const std::string& root) {
  std::map<std::string, std::string> out;
  Walk(root, "", &out);
  return out;
}

}  // namespace slipstream::plugin::testing
