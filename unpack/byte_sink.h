// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <string_view>

#include "absl/status/status.h"

namespace slipstream::unpack {

// Receives a stream of bytes piece by piece (decompressed output, tar content...). The view is
// valid only during the call. Returning a non-OK status stops the producer, which then returns
// that same status to its caller.
using ByteSink = std::function<absl::Status(std::string_view bytes)>;

}  // namespace slipstream::unpack
