// SPDX-License-Identifier: Apache-2.0
#pragma once

// In-process compressors for tests (no subprocess needed for the common cases).

#include <cstdint>
#include <string>

namespace slipstream::unpack::testing {

// One gzip member of `data`.
std::string Gzip(const std::string& data);
// One zstd frame of `data` (with a content checksum).
std::string Zstd(const std::string& data);
// Compressible pseudo-random text.
std::string RandomText(size_t n, uint32_t seed);

}  // namespace slipstream::unpack::testing
