// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "index/ztoc.h"
#include "remote/blob_reader.h"

namespace slipstream::index {

// How the layer blob fed to ZtocBuilder is compressed.
enum class LayerCompression {
  kAuto,          // gzip when it starts with the gzip magic, else uncompressed tar
  kGzip,
  kUncompressed,  // a plain tar layer
};

struct ZtocBuilderOptions {
  int64_t span_size = kDefaultSpanSize;
  // Layers whose (compressed) blob is smaller get no zTOC: Finish() returns std::nullopt.
  int64_t min_layer_size = kDefaultMinLayerSize;
  LayerCompression compression = LayerCompression::kAuto;
  std::string build_tool_identifier = "slipstream";
};

// Builds the zTOC of one layer in a single pass over its blob, pushed in chunks of any size:
// the blob is inflated once, its tar stream parsed as it flows (TarTocParser), checkpoints
// and span digests recorded (GzipIndexer, or fixed slices for uncompressed tar). Nothing of
// the layer is kept, so memory is bounded by the TOC and the checkpoints (32 KiB per span),
// whatever the layer size. Owned by its caller; not thread-safe (one per layer; build several
// layers on several threads with several builders).
class ZtocBuilder {
 public:
  explicit ZtocBuilder(ZtocBuilderOptions options = {});
  ~ZtocBuilder();
  ZtocBuilder(const ZtocBuilder&) = delete;
  ZtocBuilder& operator=(const ZtocBuilder&) = delete;

  // Feeds the next bytes of the blob. DataLoss for a corrupt gzip stream, InvalidArgument for
  // a malformed tar stream or bad options, Unimplemented for zstd layers. After an error,
  // every later call returns the same error.
  absl::Status Write(std::string_view bytes);

  // Ends the blob. Returns std::nullopt when the blob is smaller than min_layer_size, else
  // the validated zTOC. Same errors as Write, plus truncated streams.
  absl::StatusOr<std::optional<Ztoc>> Finish();

 private:
  absl::Status Start(std::string_view first_bytes);

  ZtocBuilderOptions options_;
  absl::Status error_;
  bool started_ = false;
  bool gzip_ = false;
  std::string sniff_;  // first bytes, held until the compression is known
  int64_t total_ = 0;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads `blob` sequentially in `chunk_size` pieces through a ZtocBuilder. Errors of the
// reader pass through, annotated with the blob's digest.
absl::StatusOr<std::optional<Ztoc>> BuildZtoc(remote::BlobReader& blob,
                                              const ZtocBuilderOptions& options,
                                              int64_t chunk_size = 4 << 20);

}  // namespace slipstream::index
