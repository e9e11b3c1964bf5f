// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace slipstream {

// Debian builds Abseil with its own string_view (ABSL_OPTION_USE_STD_STRING_VIEW 0), so
// absl::StrCat and friends do not take std::string_view. This bridges the two without a copy.
inline absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace slipstream
