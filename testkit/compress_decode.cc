// SPDX-License-Identifier: Apache-2.0
// DecompressString: in-memory decoding for tests (the production decompressors live in
// unpack/). Kept apart from the compressors so each file stays about one direction.
#include <zlib.h>
#include <zstd.h>

#include "absl/strings/str_cat.h"
#include "testkit/compress.h"

namespace slipstream::testkit {

namespace {

constexpr size_t kChunk = 256 << 10;

absl::Status CheckLimit(const std::string& out, size_t max_output) {
  if (out.size() > max_output) {
    return absl::ResourceExhaustedError(
        absl::StrCat("decompressed output exceeds ", max_output, " bytes"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> Gunzip(std::string_view data, size_t max_output) {
  std::string out;
  z_stream z{};
  // 15 + 16: gzip wrapper only, so that a raw deflate or zlib stream is rejected.
  if (inflateInit2(&z, 15 + 16) != Z_OK) return absl::InternalError("inflateInit2 failed");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  absl::Status status;
  bool in_member = true;
  while (true) {
    const size_t old = out.size();
    out.resize(old + kChunk);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + old);
    z.avail_out = static_cast<uInt>(kChunk);
    const int rc = inflate(&z, Z_NO_FLUSH);
    out.resize(old + kChunk - z.avail_out);
    if (!(status = CheckLimit(out, max_output)).ok()) break;
    if (rc == Z_STREAM_END) {
      in_member = false;
      if (z.avail_in == 0) break;
      // Another member follows: gzip streams are concatenations of members.
      inflateReset(&z);
      in_member = true;
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) break;  // input ended inside a member
    status = absl::DataLossError(absl::StrCat("gzip: ", z.msg ? z.msg : "corrupt stream"));
    break;
  }
  inflateEnd(&z);
  if (!status.ok()) return status;
  if (in_member) return absl::DataLossError("gzip: truncated stream");
  return out;
}

absl::StatusOr<std::string> Unzstd(std::string_view data, size_t max_output) {
  ZSTD_DCtx* dctx = ZSTD_createDCtx();
  if (dctx == nullptr) return absl::InternalError("ZSTD_createDCtx failed");
  std::string out;
  ZSTD_inBuffer in{data.data(), data.size(), 0};
  absl::Status status;
  size_t last = 0;  // 0 once a frame is complete
  while (true) {
    const size_t old = out.size();
    out.resize(old + kChunk);
    ZSTD_outBuffer o{out.data() + old, kChunk, 0};
    last = ZSTD_decompressStream(dctx, &o, &in);
    out.resize(old + o.pos);
    if (ZSTD_isError(last)) {
      status = absl::DataLossError(absl::StrCat("zstd: ", ZSTD_getErrorName(last)));
      break;
    }
    if (!(status = CheckLimit(out, max_output)).ok()) break;
    // Done when all input is used and the last frame is complete (0), or when nothing more
    // can come out (output not full) although a frame is still open: truncated. Calling
    // again after a complete frame would return the header size of a next frame instead.
    if (in.pos == in.size && (last == 0 || o.pos < kChunk)) break;
  }
  ZSTD_freeDCtx(dctx);
  if (!status.ok()) return status;
  if (last != 0 || data.empty()) return absl::DataLossError("zstd: truncated stream");
  return out;
}

}  // namespace

absl::StatusOr<std::string> DecompressString(remote::Compression compression,
                                             std::string_view data, size_t max_output) {
  switch (compression) {
    case remote::Compression::kGzip: return Gunzip(data, max_output);
    case remote::Compression::kZstd: return Unzstd(data, max_output);
    case remote::Compression::kNone:
      if (data.size() > max_output) {
        return absl::ResourceExhaustedError(
            absl::StrCat("decompressed output exceeds ", max_output, " bytes"));
      }
      return std::string(data);
  }
  return absl::InvalidArgumentError("decompress: unknown compression");
}

}  // namespace slipstream::testkit
