// SPDX-License-Identifier: Apache-2.0
#include "plugin/mounts_overlay.h"

#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace slipstream::plugin {

std::vector<MountSpec> OverlayMounts(SnapshotKind kind, const OverlayPaths& self,
                                     const std::vector<OverlayPaths>& ancestors, bool index_off) {
  if (ancestors.empty()) {
    // overlayfs needs at least one lower dir, so a base snapshot is a plain bind mount.
    std::string rw = kind == SnapshotKind::kView ? "ro" : "rw";
    return {MountSpec{"bind", self.fs, "", {rw, "rbind"}}};
  }
  if (kind != SnapshotKind::kActive && ancestors.size() == 1) {
    return {MountSpec{"bind", ancestors[0].fs, "", {"ro", "rbind"}}};
  }
  std::vector<std::string> options;
  if (index_off) options.push_back("index=off");
  if (kind == SnapshotKind::kActive) {
    options.push_back(absl::StrCat("workdir=", self.work));
    options.push_back(absl::StrCat("upperdir=", self.fs));
  }
  std::string lower = "lowerdir=";
  for (size_t i = 0; i < ancestors.size(); ++i) {
    if (i > 0) lower += ':';
    lower += ancestors[i].fs;
  }
  options.push_back(std::move(lower));
  return {MountSpec{"overlay", "overlay", "", std::move(options)}};
}

bool KernelSupportsOverlayIndexOff() {
  return access("/sys/module/overlay/parameters/index", F_OK) == 0;
}

}  // namespace slipstream::plugin
