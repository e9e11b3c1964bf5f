// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace slipstream::cli {

// `slipstream status [--address SOCKET] [--json]`: asks slipstreamd (slipstream.v1.Status on
// its socket) for its mode, the parallel pulls it started and every lazy layer's progress
// (spans and bytes fetched, cache hits, read errors, open files); prints a table, or the
// response as JSON. Unavailable when nothing answers on `address` (naming it).
absl::Status Status(const std::string& address, bool json, std::ostream& out);

}  // namespace slipstream::cli
