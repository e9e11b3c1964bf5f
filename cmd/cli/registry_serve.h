// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace slipstream::cli {

// `slipstream registry serve`: runs a throwaway docker-registry (the test bench's
// RegistryFixture: 127.0.0.1, free port, temp storage) until SIGINT or SIGTERM. Prints
// "registry 127.0.0.1:PORT" to `out` once it answers, and writes the host to `ready_file`
// when given (so scripts can wait for it).
absl::Status ServeRegistry(const std::string& ready_file, std::ostream& out);

}  // namespace slipstream::cli
