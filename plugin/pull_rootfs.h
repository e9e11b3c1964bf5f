// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace slipstream::plugin {

// Applies unpacked layer directories (as LayerWriter makes them: whiteouts are 0/0
// character devices, opaque directories carry trusted.overlay.opaque=y) in order onto
// `rootfs`, giving the tree an overlay mount of them would show: a whiteout removes the name
// from the layers below, an opaque directory hides their contents, anything else replaces
// what was there (a directory over a directory merges). Files are copied (copy_file_range,
// reflinks where the file system has them), hardlinks within a layer stay hardlinks; owners,
// modes, mtimes and xattrs (except trusted.overlay.*) are kept.
//
// `rootfs` is created when missing. Never follows a symlink of the tree being built: every
// directory is opened with O_NOFOLLOW relative to its parent, and a non-directory in the way
// of a directory is replaced. Needs the same privileges as LayerWriter (chown, mknod,
// trusted.* xattrs). Errors name the layer and path. Not thread-safe for the same rootfs.
absl::Status MergeLayers(const std::vector<std::string>& layer_dirs, const std::string& rootfs);

}  // namespace slipstream::plugin
