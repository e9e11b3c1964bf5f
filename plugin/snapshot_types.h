// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace slipstream::plugin {

// The kind of a snapshot, numbered as containerd's snapshots.v1 Kind enum.
enum class SnapshotKind { kUnknown = 0, kView = 1, kActive = 2, kCommitted = 3 };

// "view", "active", "committed" (containerd's filter spelling), "unknown" otherwise.
std::string_view KindName(SnapshotKind kind);

using Labels = std::map<std::string, std::string>;

// What containerd knows about one snapshot (snapshots.v1 Info). `name` is the key of an
// active or view snapshot, or the name of a committed one; `parent` is a committed name or "".
struct SnapshotInfo {
  std::string name;
  std::string parent;
  SnapshotKind kind = SnapshotKind::kUnknown;
  absl::Time created;
  absl::Time updated;
  Labels labels;

  bool operator==(const SnapshotInfo&) const = default;
};

// One mount(2) call for containerd to perform (containerd.types.Mount).
struct MountSpec {
  std::string type;
  std::string source;
  std::string target;
  std::vector<std::string> options;

  bool operator==(const MountSpec&) const = default;
};

// Disk usage of a snapshot: bytes allocated on disk and distinct inodes.
struct SnapshotUsage {
  int64_t size = 0;
  int64_t inodes = 0;
};

// containerd limits a label's key plus value to 4096 bytes; longer ones are InvalidArgument
// naming the key. Empty keys are InvalidArgument too.
inline constexpr size_t kMaxLabelBytes = 4096;
absl::Status ValidateLabels(const Labels& labels);

}  // namespace slipstream::plugin
