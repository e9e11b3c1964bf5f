// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "index/ztoc.h"

namespace slipstream::fuzz {

// A small layer made the way real layers are (tar, then gzip), deterministic to the byte.
struct SampleLayer {
  std::string name;       // "gzip", "members" or "tar"
  std::string tar;        // the uncompressed tar stream
  std::string blob;       // the layer blob as a registry stores it
  int64_t span_size = 0;  // span size of its seed zTOCs: 2 spans for gzip layers
};

// The sample layers the seed corpus is built from and the fuzz targets read spans of:
//   "gzip"     one gzip member, deflated in many small blocks (many checkpoint candidates)
//   "members"  two gzip members cut mid-file, then zero padding; its span size is odd
//   "tar"      the uncompressed tar
// All hold the same entries: a directory with an xattr, files of 0, 700 and ~10000 bytes, a
// symlink, a hardlink, a fifo and a name longer than 100 bytes (PAX path). Blob sizes differ,
// so a blob size names a layer. Built on first use; not thread-safe (fuzz targets are not).
const std::vector<SampleLayer>& SampleLayers();

// The sample layer whose blob is `blob_size` bytes long, or nullptr.
const SampleLayer* FindSampleLayer(int64_t blob_size);
// The sample layer called `name`; aborts when there is none.
const SampleLayer& SampleLayerNamed(std::string_view name);

// The zTOC of `layer` as index::ZtocBuilder makes it (min_layer_size 0). Aborts on error:
// the sample layers are ours, so failing to index one is a bug.
index::Ztoc SampleZtoc(const SampleLayer& layer, int64_t span_size);

// Span size that gives every sample layer a single span.
inline constexpr int64_t kOneSpanSize = int64_t{1} << 20;

// The zTOC SampleZtoc makes for `layer` at `span_size`, when that is layer.span_size or
// kOneSpanSize (built once and cached), else nullptr. Fuzz targets compare against it: data
// decoded with exactly these checkpoints must be the layer's tar.
const index::Ztoc* ReferenceZtoc(const SampleLayer& layer, int64_t span_size);

// Builds the sample layers and every reference zTOC now (for LLVMFuzzerInitialize, so the
// first inputs are not slower than the rest).
void WarmUpSampleLayers();

// The "v1" form of a v2 gzip checkpoint blob: checkpoint 0 left out, the count unchanged.
std::string ToV1Checkpoints(std::string_view v2_blob);

}  // namespace slipstream::fuzz
