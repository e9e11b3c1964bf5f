// SPDX-License-Identifier: Apache-2.0
#include "tests/plugin/snapshot_test_mount.h"

#include <sys/mount.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace slipstream::plugin::testing {

absl::Status MountAll(const std::vector<MountSpec>& mounts, const std::string& target) {
  for (const MountSpec& m : mounts) {
    std::string where = m.target.empty() ? target : absl::StrCat(target, "/", m.target);
    auto has = [&](const char* o) {
      return std::find(m.options.begin(), m.options.end(), o) != m.options.end();
    };
    if (m.type == "bind") {
      unsigned long flags = MS_BIND | (has("rbind") ? MS_REC : 0);
      if (::mount(m.source.c_str(), where.c_str(), nullptr, flags, nullptr) != 0) {
        return LastErrnoStatus(absl::StrCat("bind mount ", m.source, " on ", where));
      }
      // A read-only bind needs a second, remounting call.
      if (has("ro") &&
          ::mount(nullptr, where.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
        return LastErrnoStatus(absl::StrCat("remount ro ", where));
      }
    } else if (m.type == "overlay") {
      std::string data = absl::StrJoin(m.options, ",");
      if (::mount("overlay", where.c_str(), "overlay", 0, data.c_str()) != 0) {
        return LastErrnoStatus(absl::StrCat("overlay mount on ", where, " (", data, ")"));
      }
    } else {
      return absl::UnimplementedError(absl::StrCat("mount type ", m.type));
    }
  }
  return absl::OkStatus();
}

absl::Status Unmount(const std::string& target) {
  if (::umount2(target.c_str(), MNT_DETACH) != 0) {
    return LastErrnoStatus(absl::StrCat("umount ", target));
  }
  return absl::OkStatus();
}

}  // namespace slipstream::plugin::testing
