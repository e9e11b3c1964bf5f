// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the zTOC parser: untrusted bytes go to index::ParseZtoc, and a zTOC
// that parses is used the way a reader uses one: serialized again, its span geometry walked,
// its entries looked up and read through a ZtocReader over the layer it claims (one of the
// sample layers when the archive size matches, zeros otherwise). Seeds: fuzz/corpus/
// ztoc_fuzzer, written by ztoc_seed_gen from zTOCs our builder made.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "fuzz/padded_blob_reader.h"
#include "fuzz/sample_layers.h"
#include "index/ztoc.h"
#include "index/ztoc_format.h"
#include "index/ztoc_reader.h"

namespace slipstream::fuzz {
namespace {

// Per input, at most this many file reads of at most this many bytes each: enough to reach
// every span of the sample layers, small enough to keep an input well under a millisecond.
constexpr int kMaxReads = 8;
constexpr int64_t kMaxReadLength = 64 << 10;

// A parsed zTOC is valid, so it serializes, and reads back as the same value.
void CheckRoundTrip(const index::Ztoc& z) {
  absl::StatusOr<std::string> bytes = index::SerializeZtoc(z);
  FUZZ_CHECK(bytes.ok());
  absl::StatusOr<index::Ztoc> again = index::ParseZtoc(*bytes);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == z);
}

// Spans tile the uncompressed stream in order, lie inside the archive, and every offset of a
// span maps back to it.
void CheckSpanGeometry(const index::Ztoc& z) {
  const int64_t count = z.SpanCount();
  FUZZ_CHECK(count >= 1);
  FUZZ_CHECK(z.SpanUncompressedStart(0) == 0);
  FUZZ_CHECK(z.SpanUncompressedEnd(count - 1) == z.uncompressed_archive_size);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t us = z.SpanUncompressedStart(i), ue = z.SpanUncompressedEnd(i);
    const int64_t cs = z.SpanCompressedStart(i), ce = z.SpanCompressedEnd(i);
    FUZZ_CHECK(0 <= us && us <= ue && ue <= z.uncompressed_archive_size);
    FUZZ_CHECK(0 <= cs && cs <= ce && ce <= z.compressed_archive_size);
    if (i + 1 < count) FUZZ_CHECK(us < ue && ue == z.SpanUncompressedStart(i + 1));
    if (us < ue) {
      FUZZ_CHECK(z.SpanForUncompressedOffset(us) == i);
      FUZZ_CHECK(z.SpanForUncompressedOffset(ue - 1) == i);
    }
  }
}

// When `z` has exactly the checkpoints our builder makes for `layer`, whatever decodes is the
// layer's tar (span digests were checked, and the checkpoints are right).
bool DecodesToTar(const index::Ztoc& z, const SampleLayer* layer) {
  if (layer == nullptr || z.uncompressed_archive_size != static_cast<int64_t>(layer->tar.size())) {
    return false;
  }
  const index::Ztoc* ref = ReferenceZtoc(*layer, z.span_size);
  return ref != nullptr && ref->compression == z.compression && ref->checkpoints == z.checkpoints;
}

void CheckRead(const absl::StatusOr<std::string>& data, int64_t offset, int64_t expected,
               bool oracle, const SampleLayer* layer) {
  if (!data.ok()) return;  // bad spans are errors, never crashes
  FUZZ_CHECK(static_cast<int64_t>(data->size()) == expected);
  if (oracle) FUZZ_CHECK(*data == std::string_view(layer->tar).substr(offset, expected));
}

void ExerciseReader(index::Ztoc parsed) {
  const SampleLayer* layer = FindSampleLayer(parsed.compressed_archive_size);
  PaddedBlobReader blob(layer != nullptr ? std::string_view(layer->blob) : std::string_view(),
                        parsed.compressed_archive_size);
  index::ZtocReader reader(std::make_shared<const index::Ztoc>(std::move(parsed)), blob);
  const index::Ztoc& z = reader.ztoc();
  const bool oracle = DecodesToTar(z, layer);

  int reads = 0;
  for (const index::FileMetadata& e : z.entries) {
    const index::FileMetadata* found = reader.Find(e.name);
    FUZZ_CHECK(found != nullptr);
    FUZZ_CHECK(index::CleanEntryPath(found->name) == index::CleanEntryPath(e.name));
    const int64_t span = z.SpanForUncompressedOffset(e.uncompressed_offset);
    FUZZ_CHECK(span >= 0 && span < z.SpanCount());
    if (e.uncompressed_offset < z.uncompressed_archive_size) {
      FUZZ_CHECK(z.SpanUncompressedStart(span) <= e.uncompressed_offset &&
                 e.uncompressed_offset < z.SpanUncompressedEnd(span));
    }
    if (reads >= kMaxReads || (e.type != index::kTypeReg && e.type != index::kTypeHardlink)) {
      continue;
    }
    ++reads;
    const index::FileMetadata* file = e.type == index::kTypeHardlink ? reader.Find(e.linkname) : &e;
    absl::StatusOr<std::string> data = reader.ReadFile(e, 0, kMaxReadLength);
    if (file == nullptr || file->type != index::kTypeReg) {
      FUZZ_CHECK(!data.ok());
      continue;
    }
    CheckRead(data, file->uncompressed_offset,
              std::min(file->uncompressed_size, kMaxReadLength), oracle, layer);
  }
  // A read across the first span boundary, as a FUSE read of a file spanning two spans does.
  if (z.SpanCount() > 1) {
    const int64_t at = std::max<int64_t>(z.SpanUncompressedStart(1) - 100, 0);
    const int64_t expected = std::min<int64_t>(200, z.uncompressed_archive_size - at);
    CheckRead(reader.ReadUncompressed(at, 200), at, expected, oracle, layer);
  }
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  slipstream::fuzz::WarmUpSampleLayers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipstream;
  absl::StatusOr<index::Ztoc> parsed =
      index::ParseZtoc(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!parsed.ok()) return 0;
  fuzz::CheckRoundTrip(*parsed);
  fuzz::CheckSpanGeometry(*parsed);
  fuzz::ExerciseReader(*std::move(parsed));
  return 0;
}
