// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/ztoc.h"

namespace slipstream::index {

// Span decoding: pure functions over a validated Ztoc; thread-safe (each call owns its own
// inflater), so any number of spans may be decoded concurrently.

// Checks that `compressed` is exactly span `span`'s compressed bytes (the range
// [SpanCompressedStart, SpanCompressedEnd) of the blob) and that its sha256 matches the
// zTOC's span digest. OutOfRange for a bad span index; DataLoss on a size or digest mismatch.
absl::Status VerifySpan(const Ztoc& ztoc, int64_t span, std::string_view compressed);

// Verifies (VerifySpan) and decompresses span `span`, returning exactly its uncompressed
// bytes [SpanUncompressedStart, SpanUncompressedEnd). Gzip spans resume from their
// checkpoint (raw inflate, primed bits, window as dictionary) and step over gzip member ends
// inside the span. DataLoss when the data does not inflate to the expected size.
absl::StatusOr<std::string> DecodeSpan(const Ztoc& ztoc, int64_t span,
                                       std::string_view compressed);

}  // namespace slipstream::index
