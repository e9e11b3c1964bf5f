// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin::testing {

// Performs `mounts` on `target` with mount(2) the way containerd's mount.All does for the
// types a snapshotter returns (bind/rbind with ro, overlay). Requires root.
absl::Status MountAll(const std::vector<MountSpec>& mounts, const std::string& target);

// Unmounts `target` (lazily, so a test failing mid-way still cleans up).
absl::Status Unmount(const std::string& target);

// Unmounts on destruction. Not thread-safe.
class ScopedMount {
 public:
  explicit ScopedMount(std::string target) : target_(std::move(target)) {}
  ~ScopedMount() { Unmount(target_).IgnoreError(); }
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;

 private:
  std::string target_;
};

}  // namespace slipstream::plugin::testing
