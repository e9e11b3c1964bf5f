// SPDX-License-Identifier: Apache-2.0
#include "plugin/snapshot_usage.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace slipstream::plugin {
namespace {

// nftw(3) takes a plain function pointer, so the walk's state lives in a thread_local that
// DiskUsage sets for the duration of one walk.
struct WalkState {
  std::set<std::pair<dev_t, ino_t>> seen;
  SnapshotUsage usage;
};
thread_local WalkState* g_walk = nullptr;

int Visit(const char* path, const struct stat* st, int type, struct FTW*) {
  if (type == FTW_NS) return 0;  // vanished while walking: not ours to count
  if (!g_walk->seen.insert({st->st_dev, st->st_ino}).second) return 0;
  g_walk->usage.inodes++;
  g_walk->usage.size += static_cast<int64_t>(st->st_blocks) * 512;
  return 0;
}

}  // namespace

absl::StatusOr<SnapshotUsage> DiskUsage(const std::string& dir) {
  WalkState state;
  g_walk = &state;
  int rc = nftw(dir.c_str(), Visit, 64, FTW_PHYS);
  g_walk = nullptr;
  if (rc != 0) return LastErrnoStatus(absl::StrCat("du ", dir));
  return state.usage;
}

}  // namespace slipstream::plugin
