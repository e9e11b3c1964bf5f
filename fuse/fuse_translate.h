// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <cstddef>
#include <string>
#include <vector>

#include "fuse/fs_types.h"

// The pieces of FuseServer's translation that do not need libfuse or a kernel: pure
// functions, thread-safe, tested directly (tests/fuse/fuse_translate_test.cc).
namespace slipstream::fuse {

// stat(2) of an Attr: atime and ctime report the mtime, st_blksize is 4096.
struct stat ToStat(const Attr& attr);

// statvfs(2) of the filesystem: nothing free, read-only.
struct statvfs ToStatvfs(const FsStats& stats);

// EROFS when open(2) `flags` ask to write (O_WRONLY, O_RDWR, O_TRUNC), else 0.
int WriteAccessErrno(int open_flags);

// How to answer getxattr/listxattr given the caller's buffer size and the value's size:
// size 0 asks for the size; a buffer that is too small gets ERANGE.
enum class XattrAnswer { kSize, kData, kTooSmall };
XattrAnswer ChooseXattrAnswer(size_t buffer_size, size_t value_size);

// listxattr's wire form: every name followed by a NUL.
std::string JoinXattrNames(const std::vector<std::string>& names);

}  // namespace slipstream::fuse
