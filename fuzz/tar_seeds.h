// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

namespace slipstream::fuzz {

// Writes the seed corpus of tar_fuzzer into OUT_DIR/tar_fuzzer/: small archives covering
// what TarReader and LayerWriter understand (ustar with prefix, old v7 headers, GNU long
// names and links, base-256 numbers, local and global PAX records with xattrs and fractional
// times, whiteouts, devices, hardlinks) and what they must refuse (escaping names and links,
// sparse members, truncated streams). Byte-for-byte reproducible. False (after printing why)
// when a file cannot be written.
bool WriteTarSeeds(const std::string& out_dir);

}  // namespace slipstream::fuzz
