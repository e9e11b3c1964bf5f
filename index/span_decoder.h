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
// checkpoint (raw inflate with ISA-L, primed bits, window as dictionary) and step over gzip
// member ends inside the span. DataLoss when the data does not inflate to the expected size.
absl::StatusOr<std::string> DecodeSpan(const Ztoc& ztoc, int64_t span,
                                       std::string_view compressed);

// What DecodeSpanInto checks of a span's compressed bytes before inflating them.
enum class SpanCheck {
  // Their size and sha256 against the zTOC (VerifySpan): bytes of unknown integrity, e.g. a
  // lazy read of a few spans.
  kDigest,
  // Their size only: for bytes of a blob whose own digest the caller checks before it uses
  // any output (a full layer pull does), where hashing every span again costs ~15% of the
  // decode for nothing.
  kSize,
};

// DecodeSpan into `*out`, whose contents become exactly the span's bytes (unspecified after
// an error). Reuses `*out`'s memory: a thread decoding span after span into the same string
// neither reallocates nor zero-fills once it has grown to a span's size (what
// InflateAllSpans does). Same errors as DecodeSpan; with SpanCheck::kSize a digest mismatch
// goes unnoticed unless the data fails to inflate.
absl::Status DecodeSpanInto(const Ztoc& ztoc, int64_t span, std::string_view compressed,
                            std::string* out, SpanCheck check = SpanCheck::kDigest);

}  // namespace slipstream::index
