// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace slipstream::plugin::testing {

// A change to a directory tree, like continuity's fstest.Applier.
using Applier = std::function<absl::Status(const std::string& root)>;

Applier CreateFile(const std::string& rel, const std::string& content, int mode);
Applier CreateDir(const std::string& rel, int mode);
Applier RemovePath(const std::string& rel);
Applier HardLink(const std::string& old_rel, const std::string& new_rel);
Applier RenamePath(const std::string& old_rel, const std::string& new_rel);
Applier Chown(const std::string& rel, int uid, int gid);
Applier Chain(std::vector<Applier> appliers);

// Every entry under `root` (not root itself) as "path" -> "type mode uid:gid content|target".
// Whiteouts and overlay internals show up as what they are (char devices), so comparing a
// mounted overlay with a plain directory proves the overlay hid them.
std::map<std::string, std::string> DumpTree(const std::string& root);

}  // namespace slipstream::plugin::testing
