// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "remote/registry_client.h"

namespace slipstream::cli {

// `slipstream inspect IMAGE`: resolves the image for the wanted platform and prints the
// manifest, config and layers, as a human table or (json=true) one JSON document.
absl::Status Inspect(remote::RegistryClient& client, const std::string& image,
                     const remote::Platform& platform, bool json, std::ostream& out);

}  // namespace slipstream::cli
