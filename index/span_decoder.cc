// SPDX-License-Identifier: Apache-2.0
#include "index/span_decoder.h"

#include <isa-l/igzip_lib.h>

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/status.h"
#include "common/strings.h"
#include "index/gzip_member.h"

namespace slipstream::index {
namespace {

// Deflate cannot expand data by more than ~1032x; a zTOC claiming more for a span is lying.
constexpr int64_t kMaxInflateRatio = 1032;
// isal_inflate counts input and output in 32 bits.
constexpr size_t kMaxPerCall = size_t{1} << 30;
// The smallest first output buffer of a span decode.
constexpr size_t kMinOutput = size_t{1} << 20;

// A raw-deflate ISA-L inflater for one span decode. ISA-L (igzip) inflates 2-3x faster than
// zlib, which is what makes decoding spans on N threads beat one sequential igzip.
class RawInflater {
 public:
  RawInflater() : state_(std::make_unique<inflate_state>()) { Reset(); }
  void Reset() {
    isal_inflate_init(state_.get());
    state_->crc_flag = ISAL_DEFLATE;  // raw deflate: no header, no trailer, no checksum
  }
  inflate_state* get() { return state_.get(); }

 private:
  std::unique_ptr<inflate_state> state_;  // ~45 KiB: keep it off the stack
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
  const std::string_view all = in;
  RawInflater inflater;
  inflate_state* s = inflater.get();
  if (cp.out > 0) {
    if (isal_inflate_set_dict(s, reinterpret_cast<uint8_t*>(const_cast<char*>(cp.window.data())),
                              static_cast<uint32_t>(cp.window.size())) != COMP_OK) {
      return SpanError(span, "isal_inflate_set_dict");
    }
  }
  if (cp.bits > 0) {
    // The span's first byte is shared with the previous span: only its top `bits` bits
    // belong to this one. They become the first bits ISA-L reads (its bit buffer is
    // LSB-first, like zlib's inflatePrime).
    s->read_in = static_cast<uint8_t>(in[0]) >> (8 - cp.bits);
    s->read_in_length = cp.bits;
    in.remove_prefix(1);
  }
  // `out` may hold an earlier span: its bytes are overwritten and its size reused, so a
  // thread decoding span after span neither reallocates nor zero-fills. Otherwise it starts
  // at what real layers need (they rarely expand 8x) and doubles with what actually inflates,
  // so a zTOC that lies about a span's size costs little more than the real data.
  const size_t first_guess = std::min(target, std::max(kMinOutput, 8 * in.size()));
  if (out->size() < first_guess) out->resize(first_guess);
  size_t produced = 0;
  while (produced < target) {
    if (out->size() <= produced) out->resize(std::min(target, 2 * produced));
    const size_t in_chunk = std::min(in.size(), kMaxPerCall);
    const size_t out_chunk = std::min(std::min(out->size(), target) - produced, kMaxPerCall);
    s->next_in = reinterpret_cast<uint8_t*>(const_cast<char*>(in.data()));
    s->avail_in = static_cast<uint32_t>(in_chunk);
    s->next_out = reinterpret_cast<uint8_t*>(out->data() + produced);
    s->avail_out = static_cast<uint32_t>(out_chunk);
    const int ret = isal_inflate(s);
    if (ret < 0 || ret == ISAL_NEED_DICT) {
      return SpanError(span, absl::StrCat("corrupt deflate data (isal_inflate ", ret, ")"));
    }
    const size_t used = in_chunk - s->avail_in;
    const size_t made = out_chunk - s->avail_out;
    in.remove_prefix(used);
    produced += made;
    if (s->block_state == ISAL_BLOCK_FINISH) {
      // A member ends inside the span. Whole bytes still in ISA-L's bit buffer were read
      // ahead and belong to the trailer: give them back (none when ISA-L already did).
      const size_t ahead = static_cast<size_t>(std::max(s->read_in_length, 0) / 8);
      if (ahead > static_cast<size_t>(in.data() - all.data())) {
        return SpanError(span, "inflater read ahead of the span");
      }
      in = std::string_view(in.data() - ahead, in.size() + ahead);
      bool more = false;
      SS_RETURN_IF_ERROR(SkipMemberBoundary(span, &in, &more));
      if (!more) break;
      inflater.Reset();
      continue;
    }
    if (used == 0 && made == 0) break;  // input exhausted before the span's end
  }
  if (produced != target) {
    return SpanError(span, absl::StrCat("inflated to ", produced, " bytes, expected ", target));
  }
  out->resize(target);
  return absl::OkStatus();
}

// The span index and the size of its compressed bytes.
absl::Status CheckSpanSize(const Ztoc& z, int64_t span, std::string_view compressed) {
  if (span < 0 || span >= z.SpanCount()) {
    return absl::OutOfRangeError(absl::StrCat("span ", span, " of ", z.SpanCount()));
  }
  int64_t expected = z.SpanCompressedEnd(span) - z.SpanCompressedStart(span);
  if (static_cast<int64_t>(compressed.size()) != expected) {
    return SpanError(span, absl::StrCat("got ", compressed.size(), " compressed bytes, expected ",
                                        expected));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status VerifySpan(const Ztoc& z, int64_t span, std::string_view compressed) {
  SS_RETURN_IF_ERROR(CheckSpanSize(z, span, compressed));
  Digest got = Sha256Of(compressed);
  if (got != z.span_digests[span]) {
    return SpanError(span, absl::StrCat("digest ", got.str(), " does not match the zTOC's ",
                                        z.span_digests[span].str()));
  }
  return absl::OkStatus();
}

absl::Status DecodeSpanInto(const Ztoc& z, int64_t span, std::string_view compressed,
                            std::string* out, SpanCheck check) {
  SS_RETURN_IF_ERROR(check == SpanCheck::kDigest ? VerifySpan(z, span, compressed)
                                                 : CheckSpanSize(z, span, compressed));
  if (z.compression == CompressionAlgorithm::kUncompressed) {
    out->assign(compressed);
    return absl::OkStatus();
  }
  int64_t size = z.SpanUncompressedEnd(span) - z.SpanUncompressedStart(span);
  if (size > (static_cast<int64_t>(compressed.size()) + 1) * kMaxInflateRatio) {
    return SpanError(span, absl::StrCat("claims ", size, " bytes from ", compressed.size()));
  }
  if (size == 0) {
    out->clear();
    return absl::OkStatus();
  }
  return InflateGzipSpan(z, span, compressed, static_cast<size_t>(size), out);
}

absl::StatusOr<std::string> DecodeSpan(const Ztoc& z, int64_t span, std::string_view compressed) {
  std::string out;
  SS_RETURN_IF_ERROR(DecodeSpanInto(z, span, compressed, &out));
  return out;
}

}  // namespace slipstream::index
