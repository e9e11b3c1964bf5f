// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the checkpoints blob of a zTOC (index/checkpoints.h): the same bytes go
// to the gzip decoder (v1 and v2 layouts) and to the TarZinfo decoder. Decoded gzip
// checkpoints are re-encoded (round trip), then used the way the span decoder uses them: on a
// sample gzip layer ("members" when span_size is odd, else "gzip"), every span is verified
// and inflated from its checkpoint. Seeds: fuzz/corpus/checkpoints_fuzzer, written by
// ztoc_seed_gen from checkpoints our builder made.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/digest.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/sample_layers.h"
#include "index/checkpoints.h"
#include "index/span_decoder.h"
#include "index/ztoc.h"

namespace slipstream::fuzz {
namespace {

void CheckTarZinfo(std::string_view blob) {
  absl::StatusOr<index::TarZinfo> zinfo = index::DecodeTarZinfo(blob);
  if (!zinfo.ok()) return;
  // The packed form is the only one we write; it must read back exactly.
  std::string packed = index::EncodeTarZinfo(*zinfo);
  if (blob.size() == index::kTarZinfoPackedSize) FUZZ_CHECK(packed == blob);
  absl::StatusOr<index::TarZinfo> again = index::DecodeTarZinfo(packed);
  FUZZ_CHECK(again.ok() && again->version == zinfo->version &&
             again->span_size == zinfo->span_size && again->size == zinfo->size);
}

// Re-encoding always gives the v2 layout, which decodes to the same checkpoints.
void CheckRoundTrip(std::string_view blob, const index::GzipCheckpoints& decoded) {
  FUZZ_CHECK(!decoded.checkpoints.empty());
  std::string encoded = index::EncodeGzipCheckpoints(decoded.span_size, decoded.checkpoints);
  if (!decoded.v1) FUZZ_CHECK(encoded == blob);
  absl::StatusOr<index::GzipCheckpoints> again = index::DecodeGzipCheckpoints(
      encoded, static_cast<int64_t>(decoded.checkpoints.size()));
  FUZZ_CHECK(again.ok() && !again->v1 && again->span_size == decoded.span_size &&
             again->checkpoints == decoded.checkpoints);
}

// The checkpoints as a zTOC of a sample layer: span digests are computed for the spans the
// checkpoints describe, so every span gets verified and inflated, however wrong its offsets,
// bits or window are. Decoding may fail (DataLoss) but never crash; when every span decodes,
// together they are exactly the layer's size, and the layer's tar when the checkpoints are
// the ones our builder made.
void DecodeSampleSpans(index::GzipCheckpoints decoded) {
  const SampleLayer& layer = SampleLayerNamed(decoded.span_size & 1 ? "members" : "gzip");
  index::Ztoc z;
  z.compressed_archive_size = static_cast<int64_t>(layer.blob.size());
  z.uncompressed_archive_size = static_cast<int64_t>(layer.tar.size());
  z.span_size = decoded.span_size;
  z.checkpoints = std::move(decoded.checkpoints);
  z.span_digests.assign(z.checkpoints.size(), Sha256Of(""));
  if (!index::ValidateZtoc(z).ok()) return;
  const std::string_view blob(layer.blob);
  for (int64_t i = 0; i < z.SpanCount(); ++i) {
    z.span_digests[i] = Sha256Of(blob.substr(
        z.SpanCompressedStart(i), z.SpanCompressedEnd(i) - z.SpanCompressedStart(i)));
  }
  std::string tar;
  for (int64_t i = 0; i < z.SpanCount(); ++i) {
    std::string_view bytes = blob.substr(z.SpanCompressedStart(i),
                                         z.SpanCompressedEnd(i) - z.SpanCompressedStart(i));
    absl::StatusOr<std::string> span = index::DecodeSpan(z, i, bytes);
    if (!span.ok()) return;
    FUZZ_CHECK(static_cast<int64_t>(span->size()) ==
               z.SpanUncompressedEnd(i) - z.SpanUncompressedStart(i));
    tar += *span;
  }
  FUZZ_CHECK(tar.size() == layer.tar.size());
  const index::Ztoc* ref = ReferenceZtoc(layer, z.span_size);
  if (ref != nullptr && ref->checkpoints == z.checkpoints) FUZZ_CHECK(tar == layer.tar);
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  slipstream::fuzz::WarmUpSampleLayers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipstream;
  const std::string_view blob(reinterpret_cast<const char*>(data), size);
  fuzz::CheckTarZinfo(blob);
  absl::StatusOr<index::GzipCheckpoints> decoded = index::DecodeGzipCheckpoints(blob);
  if (!decoded.ok()) return 0;
  fuzz::CheckRoundTrip(blob, *decoded);
  fuzz::DecodeSampleSpans(*std::move(decoded));
  return 0;
}
