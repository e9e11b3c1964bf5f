// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin::testing {

// The snapshotter as containerd's testsuite sees it, so every suite case runs twice: against
// the C++ API directly and through a real gRPC channel on a unix socket. Not thread-safe.
class SuiteSnapshotter {
 public:
  virtual ~SuiteSnapshotter() = default;
  virtual absl::StatusOr<std::vector<MountSpec>> Prepare(const std::string& key,
                                                         const std::string& parent,
                                                         const Labels& labels) = 0;
  virtual absl::StatusOr<std::vector<MountSpec>> View(const std::string& key,
                                                      const std::string& parent,
                                                      const Labels& labels) = 0;
  virtual absl::StatusOr<std::vector<MountSpec>> Mounts(const std::string& key) = 0;
  virtual absl::Status Commit(const std::string& name, const std::string& key,
                              const Labels& labels) = 0;
  virtual absl::Status Remove(const std::string& key) = 0;
  virtual absl::StatusOr<SnapshotInfo> Stat(const std::string& key) = 0;
  virtual absl::StatusOr<SnapshotInfo> Update(const SnapshotInfo& info,
                                              const std::vector<std::string>& paths) = 0;
  virtual absl::StatusOr<std::vector<SnapshotInfo>> Walk(const std::vector<std::string>& filters) = 0;
  virtual absl::StatusOr<SnapshotUsage> Usage(const std::string& key) = 0;
  virtual absl::Status Cleanup() = 0;
};

// "direct" or "grpc", over a snapshotter rooted at `root`.
absl::StatusOr<std::unique_ptr<SuiteSnapshotter>> MakeSuiteSnapshotter(const std::string& mode,
                                                                       const std::string& root);

}  // namespace slipstream::plugin::testing
