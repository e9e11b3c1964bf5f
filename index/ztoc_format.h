// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "index/ztoc.h"

namespace slipstream::index {

// Conversion between Ztoc and the SOCI-compatible flatbuffer bytes (index/ztoc.fbs). Pure
// functions without shared state: thread-safe, and ParseZtoc is the entry point of the zTOC
// parser fuzz target.

// Serializes a zTOC. InvalidArgument when `ztoc` fails ValidateZtoc (we never publish an
// index a reader would reject); ResourceExhausted when it exceeds flatbuffers' 2 GiB limit.
absl::StatusOr<std::string> SerializeZtoc(const Ztoc& ztoc);

// Parses and fully validates untrusted zTOC bytes: the flatbuffers Verifier first, then the
// checkpoint blob (v1 or v2 for gzip, TarZinfo for uncompressed tar) and ValidateZtoc.
// InvalidArgument for anything malformed; never crashes, and allocates at most a small
// multiple of `bytes.size()`.
absl::StatusOr<Ztoc> ParseZtoc(std::string_view bytes);

}  // namespace slipstream::index
