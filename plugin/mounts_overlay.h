// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// Where a snapshot's directories live, named by its id.
struct OverlayPaths {
  // <root>/snapshots/<id>/fs: the upper dir of an active snapshot, the layer content of a
  // committed one.
  std::string fs;
  // <root>/snapshots/<id>/work: overlayfs workdir (active snapshots only).
  std::string work;
};

// Describes mounts exactly like containerd's overlay snapshotter, so containerd and runc see
// the same thing whichever snapshotter they use:
//  - no parents: bind mount of the snapshot's own fs ("rw" for active, "ro" for a view);
//  - view with one parent: "ro" bind of the parent's fs;
//  - otherwise overlay with lowerdir = parents' fs, nearest parent first, plus upperdir and
//    workdir for an active snapshot (a view with several parents is a read-only overlay).
// `self` is the snapshot's own paths, `ancestors` its ancestors' paths nearest first.
// `index_off` adds "index=off" (containerd does when the kernel knows the option, so a lower
// dir reused by several overlays never trips the index check). Pure function.
std::vector<MountSpec> OverlayMounts(SnapshotKind kind, const OverlayPaths& self,
                                     const std::vector<OverlayPaths>& ancestors, bool index_off);

// True when this kernel's overlayfs accepts "index=off" (it exposes the parameter).
bool KernelSupportsOverlayIndexOff();

}  // namespace slipstream::plugin
