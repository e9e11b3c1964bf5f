// SPDX-License-Identifier: Apache-2.0
#include "index/span_decoder.h"

#include <zlib.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/status.h"
#include "common/strings.h"
#include "index/gzip_member.h"

namespace slipstream::index {
namespace {

// Deflate cannot expand data by more than ~1032x; a zTOC claiming more for a span is lying.
constexpr int64_t kMaxInflateRatio = 1032;

// Owns a raw inflater for one span decode.
class RawInflater {
 public:
  RawInflater() = default;
  ~RawInflater() {
    if (ready_) inflateEnd(&strm_);
  }
  RawInflater(const RawInflater&) = delete;
  RawInflater& operator=(const RawInflater&) = delete;
  absl::Status Init() {
    if (inflateInit2(&strm_, -15) != Z_OK) return absl::InternalError("zlib: inflateInit2");
    ready_ = true;
    return absl::OkStatus();
  }
  z_stream* get() { return &strm_; }

 private:
  z_stream strm_{};
  bool ready_ = false;
};

absl::Status SpanError(int64_t span, std::string_view what) {
  return absl::DataLossError(absl::StrCat("span ", span, ": ", AV(what)));
}

// Skips a member trailer and the next member's header at the start of `in`. Sets
// `*more_members` to false when only zero padding (or nothing) follows.
absl::Status SkipMemberBoundary(int64_t span, std::string_view* in, bool* more_members) {
  if (in->size() < kGzipTrailerSize) {
    *more_members = false;
    in->remove_prefix(in->size());
    return absl::OkStatus();
  }
  in->remove_prefix(kGzipTrailerSize);
  if (in->empty() || in->find_first_not_of('\0') == std::string_view::npos) {
    *more_members = false;
    return absl::OkStatus();
  }
  GzipHeaderParser header;
  size_t used = 0;
  SS_RETURN_IF_ERROR(Annotate(header.Consume(*in, &used), absl::StrCat("span ", span)));
  if (!header.done()) return SpanError(span, "gzip member header cut off");
  in->remove_prefix(used);
  *more_members = true;
  return absl::OkStatus();
}

// Inflates exactly `target` bytes of span `span` from its compressed bytes `in` into `out`.
absl::Status InflateGzipSpan(const Ztoc& z, int64_t span, std::string_view in, size_t target,
                             std::string* out) {
  const Checkpoint& cp = z.checkpoints[span];
  RawInflater inflater;
  SS_RETURN_IF_ERROR(inflater.Init());
  z_stream* strm = inflater.get();
  if (cp.bits > 0) {
    // The span's first byte is shared with the previous span: only its top `bits` bits
    // belong to this one.
    int value = static_cast<uint8_t>(in[0]) >> (8 - cp.bits);
    if (inflatePrime(strm, cp.bits, value) != Z_OK) return SpanError(span, "inflatePrime");
    in.remove_prefix(1);
  }
  if (cp.out > 0) {
    if (inflateSetDictionary(strm, reinterpret_cast<const Bytef*>(cp.window.data()),
                             static_cast<uInt>(cp.window.size())) != Z_OK) {
      return SpanError(span, "inflateSetDictionary");
    }
  }
  // The output grows with what actually inflates (doubling), so a zTOC that lies about a
  // span's size costs at most twice the real data. zlib counts in uInt: at most 1 GiB per call.
  constexpr size_t kChunk = size_t{1} << 30;
  size_t produced = 0;
  while (produced < target) {
    if (out->size() == produced) {
      out->resize(std::min(target, std::max<size_t>(2 * produced, size_t{1} << 20)));
    }
    size_t in_chunk = std::min(in.size(), kChunk);
    size_t out_chunk = std::min(out->size() - produced, kChunk);
    strm->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    strm->avail_in = static_cast<uInt>(in_chunk);
    strm->next_out = reinterpret_cast<Bytef*>(out->data() + produced);
    strm->avail_out = static_cast<uInt>(out_chunk);
    int ret = inflate(strm, Z_NO_FLUSH);
    in.remove_prefix(in_chunk - strm->avail_in);
    produced += out_chunk - strm->avail_out;
    if (ret == Z_STREAM_END) {
      bool more = false;
      SS_RETURN_IF_ERROR(SkipMemberBoundary(span, &in, &more));
      if (!more) break;
      if (inflateReset(strm) != Z_OK) return SpanError(span, "inflateReset");
      continue;
    }
    if (ret == Z_BUF_ERROR && in.empty()) break;  // input exhausted before the span's end
    if (ret != Z_OK) {
      return SpanError(span, absl::StrCat("corrupt deflate data: ", strm->msg ? strm->msg : "?"));
    }
  }
  if (produced != target) {
    return SpanError(span, absl::StrCat("inflated to ", produced, " bytes, expected ", target));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status VerifySpan(const Ztoc& z, int64_t span, std::string_view compressed) {
  if (span < 0 || span >= z.SpanCount()) {
    return absl::OutOfRangeError(absl::StrCat("span ", span, " of ", z.SpanCount()));
  }
  int64_t expected = z.SpanCompressedEnd(span) - z.SpanCompressedStart(span);
  if (static_cast<int64_t>(compressed.size()) != expected) {
    return SpanError(span, absl::StrCat("got ", compressed.size(), " compressed bytes, expected ",
                                        expected));
  }
  Digest got = Sha256Of(compressed);
  if (got != z.span_digests[span]) {
    return SpanError(span, absl::StrCat("digest ", got.str(), " does not match the zTOC's ",
                                        z.span_digests[span].str()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DecodeSpan(const Ztoc& z, int64_t span, std::string_view compressed) {
  SS_RETURN_IF_ERROR(VerifySpan(z, span, compressed));
  if (z.compression == CompressionAlgorithm::kUncompressed) return std::string(compressed);
  int64_t size = z.SpanUncompressedEnd(span) - z.SpanUncompressedStart(span);
  if (size > (static_cast<int64_t>(compressed.size()) + 1) * kMaxInflateRatio) {
    return SpanError(span, absl::StrCat("claims ", size, " bytes from ", compressed.size()));
  }
  std::string out;
  if (size == 0) return out;
  SS_RETURN_IF_ERROR(InflateGzipSpan(z, span, compressed, static_cast<size_t>(size), &out));
  return out;
}

}  // namespace slipstream::index
