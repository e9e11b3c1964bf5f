// SPDX-License-Identifier: Apache-2.0
#include "fuse/fuse_translate.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

namespace slipstream::fuse {

struct stat ToStat(const Attr& attr) {
  struct stat st;
  std::memset(&st, 0, sizeof(st));
  st.st_ino = attr.ino;
  st.st_mode = attr.mode;
  st.st_nlink = attr.nlink;
  st.st_uid = attr.uid;
  st.st_gid = attr.gid;
  st.st_rdev = attr.rdev;
  st.st_size = attr.size;
  st.st_blocks = attr.blocks;
  st.st_blksize = 4096;
  st.st_mtim.tv_sec = attr.mtime_sec;
  st.st_mtim.tv_nsec = attr.mtime_nsec;
  st.st_atim = st.st_mtim;
  st.st_ctim = st.st_mtim;
  return st;
}

struct statvfs ToStatvfs(const FsStats& stats) {
  struct statvfs sv;
  std::memset(&sv, 0, sizeof(sv));
  sv.f_bsize = stats.block_size;
  sv.f_frsize = stats.block_size;
  sv.f_blocks = stats.blocks;
  sv.f_files = stats.files;
  sv.f_namemax = stats.name_max;
  sv.f_flag = ST_RDONLY | ST_NOSUID | ST_NODEV;
  return sv;
}

int WriteAccessErrno(int open_flags) {
  if ((open_flags & O_ACCMODE) != O_RDONLY || (open_flags & O_TRUNC) != 0) return EROFS;
  return 0;
}

XattrAnswer ChooseXattrAnswer(size_t buffer_size, size_t value_size) {
  if (buffer_size == 0) return XattrAnswer::kSize;
  if (value_size > buffer_size) return XattrAnswer::kTooSmall;
  return XattrAnswer::kData;
}

std::string JoinXattrNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    out += n;
    out.push_back('\0');
  }
  return out;
}

}  // namespace slipstream::fuse
