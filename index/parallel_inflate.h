// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "index/span_decoder.h"
#include "index/ztoc.h"
#include "remote/blob_reader.h"

namespace slipstream::index {

// Receives one decoded span: its offset in the uncompressed tar stream and its bytes. Called
// concurrently from the inflate threads, in no particular order; must be thread-safe (pwrite
// into a file is). Returning an error stops the whole inflate.
using SpanSink = std::function<absl::Status(int64_t uncompressed_offset, std::string_view bytes)>;

struct ParallelInflateOptions {
  // Inflate threads, each fetching, verifying and inflating whole spans.
  int threads = 4;
  // Spans fetched per ReadAt: a thread claims this many adjacent spans at a time.
  int spans_per_fetch = 1;
  // kDigest verifies every span's sha256 against the zTOC. kSize only when the caller checks
  // the whole blob's digest before it uses any of the output (see SpanCheck).
  SpanCheck check = SpanCheck::kDigest;
};

// Decodes every span of a layer from `blob` on `options.threads` threads and hands each to
// `sink`; together the calls cover [0, uncompressed_archive_size) exactly once. Used by the
// parallel pull engine to decompress one gzip layer on many cores. The threads are started
// and joined inside this call (none outlive it). Returns the first error (annotated with the
// span) of the BlobReader, the span verification (DataLoss), or the sink; the other threads
// stop claiming work after an error.
absl::Status InflateAllSpans(const Ztoc& ztoc, remote::BlobReader& blob, const SpanSink& sink,
                             const ParallelInflateOptions& options = {});

}  // namespace slipstream::index
