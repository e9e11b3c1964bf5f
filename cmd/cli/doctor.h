// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace slipstream::cli {

enum class CheckLevel { kOk, kWarn, kFail };

// One finding of `slipstream doctor`: what was checked, what was found, and — unless it is
// fine — how to fix it.
struct CheckResult {
  std::string name;    // e.g. "kernel: overlayfs", "containerd config: CRI snapshotter"
  CheckLevel level = CheckLevel::kOk;
  std::string detail;  // what was found
  std::string fix;     // what to do about it (empty when ok)
};

struct DoctorOptions {
  std::string containerd_config = "/etc/containerd/config.toml";
  std::string containerd_bin = "containerd";  // run with --version
  std::string address = "/run/slipstream/slipstream.sock";  // slipstreamd's socket
  std::string root = "/var/lib/slipstream";                // slipstreamd's root dir
  std::string plugin_name = "slipstream";  // the proxy plugin name containerd knows us by
  // Kernel facts come from here; tests point them at fakes.
  std::string proc_filesystems = "/proc/filesystems";
  std::string dev_fuse = "/dev/fuse";
};

// The containerd version `containerd --version` printed ("containerd github.com/containerd/
// containerd 1.6.20~ds1 ..." → {1, 6}); {0, 0} when it cannot be read.
struct ContainerdVersion {
  int major = 0;
  int minor = 0;
};
ContainerdVersion ParseContainerdVersion(std::string_view version_output);

// Checks a containerd config (TOML text) for what slipstream needs: the proxy plugin
// (`type = "snapshot"`, our socket address), CRI using it as snapshotter, and CRI's snapshot
// annotations enabled (`disable_snapshot_annotations = false`, which containerd 1.x defaults to
// true and reads only under [plugins."io.containerd.grpc.v1.cri".containerd]); for config
// version 3 (containerd 2.x) the images plugin, the transfer service's unpack_config and the
// proxy's enable_remote_snapshot_annotations export. 2.0 needs disable_snapshot_annotations =
// false; 2.1+ pulls through the transfer service without it (and with it set false, on CRI's
// own path). Pure: no I/O.
std::vector<CheckResult> CheckContainerdConfig(std::string_view toml_text,
                                               const DoctorOptions& options,
                                               ContainerdVersion version);

// Every check of the node: kernel overlayfs and FUSE, containerd binary and version, its
// config, slipstreamd's socket (exists, is a socket, mode, answers a connect) and root dir.
std::vector<CheckResult> RunDoctorChecks(const DoctorOptions& options);

// `slipstream doctor`: prints one line per check (ok / warn / FAIL, and the fix), or one JSON
// document with `json`. FailedPrecondition naming the failed checks when any failed.
absl::Status Doctor(const DoctorOptions& options, bool json, std::ostream& out);

}  // namespace slipstream::cli
