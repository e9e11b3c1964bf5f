// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace slipstream::cli {

struct EnableOptions {
  std::string address = "/run/slipstream/slipstream.sock";  // slipstreamd's socket
  std::string plugin_name = "slipstream";
  std::string platform = "linux/amd64";  // containerd 2.x: the unpack_config entry to set
};

// Turns a node's containerd config (TOML text) into one that uses slipstream, changing only
// the keys slipstream needs and keeping every other key and table (comments are not kept:
// the text is re-serialized). By the file's layout:
// - `version = 2` or none (containerd 1.6/1.7): [proxy_plugins.NAME] type and address; under
//   [plugins."io.containerd.grpc.v1.cri".containerd] `snapshotter = NAME` and
//   `disable_snapshot_annotations = false`.
// - `version = 3` (containerd 2.x): the proxy plugin with the export
//   `enable_remote_snapshot_annotations = "true"`, `snapshotter = NAME` in
//   [plugins."io.containerd.cri.v1.images"], and the transfer service's unpack_config entry
//   for `platform` naming NAME (other platforms' entries kept).
// Idempotent: enabling an enabled config returns the same text. InvalidArgument for TOML that
// does not parse (with line:column), an unknown `version`, or a key of the wrong type in the
// way (e.g. `proxy_plugins` that is not a table). Pure: no I/O.
absl::StatusOr<std::string> EnableSlipstream(std::string_view toml_text,
                                             const EnableOptions& options);

// `slipstream containerd-config enable --in FILE [--out FILE]`: EnableSlipstream on a file.
// Writes atomically to `out` (default: `in` itself, after copying it to
// `<in>.before-slipstream` once); says whether anything changed. Errors name the file.
absl::Status EnableSlipstreamInFile(const std::string& in, const std::string& out,
                                    const EnableOptions& options, std::ostream& report);

}  // namespace slipstream::cli
