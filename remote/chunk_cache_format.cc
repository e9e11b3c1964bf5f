// SPDX-License-Identifier: Apache-2.0
#include "remote/chunk_cache_format.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <array>
#include <charconv>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"

namespace slipstream::remote {
namespace {

// Header layout, all integers little-endian:
//   0  magic "slipchk\n"        8 bytes
//   8  format version           u32
//  12  payload CRC-32C          u32
//  16  chunk offset             i64
//  24  chunk length             i64
//  32  digest text length       u32
//  36  header CRC-32C           u32  (bytes 0..35, then the digest text)
//  40  digest text, e.g. "sha256:…"
// The key is repeated inside the file because the file name alone cannot prove which chunk
// a file holds once files can be renamed, copied or restored by hand.
constexpr std::string_view kMagic = "slipchk\n";
constexpr uint32_t kVersion = 1;
constexpr size_t kFixedHeaderBytes = 40;
constexpr size_t kMaxDigestText = 256;

// Slicing-by-8 tables for the reflected Castagnoli polynomial. Table k advances a byte
// through k further zero bytes, which lets the loop consume 8 input bytes per step; a
// byte-at-a-time loop would cost ~2 ms per 1 MiB chunk on every hit.
constexpr uint32_t kCastagnoli = 0x82F63B78u;
using CrcTables = std::array<std::array<uint32_t, 256>, 8>;

constexpr CrcTables MakeCrcTables() {
  CrcTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1) ? (c >> 1) ^ kCastagnoli : c >> 1;
    t[0][i] = c;
  }
  for (size_t k = 1; k < 8; ++k) {
    for (uint32_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
  }
  return t;
}

constexpr CrcTables kCrcTables = MakeCrcTables();

uint32_t Load32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

void Append32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void Append64(std::string* out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

uint32_t Read32(std::string_view s, size_t at) {
  return Load32(reinterpret_cast<const unsigned char*>(s.data() + at));
}

int64_t Read64(std::string_view s, size_t at) {
  uint64_t lo = Read32(s, at);
  uint64_t hi = Read32(s, at + 4);
  return static_cast<int64_t>(lo | hi << 32);
}

// Non-negative decimal without sign or leading zeros, so that every key has exactly one
// file name and a hand-made "007-1" is not mistaken for chunk 7.
bool ParseCanonicalInt(std::string_view text, int64_t* out) {
  if (text.empty() || (text.size() > 1 && text[0] == '0')) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// Debian's Abseil is built with its own string_view, which StrCat accepts but
// std::string_view does not convert to implicitly.
absl::string_view AV(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

#if defined(__x86_64__)
// 8 bytes per instruction (9.3 GB/s here against 2.1 GB/s from the tables): every chunk
// written to or read from the cache is checksummed whole, on the lazy read path.
__attribute__((target("sse4.2"))) uint32_t Crc32cSse42(uint32_t crc, std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint64_t c = ~crc;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
  }
  auto c32 = static_cast<uint32_t>(c);
  for (; n > 0; ++p, --n) c32 = __builtin_ia32_crc32qi(c32, *p);
  return ~c32;
}
#endif

uint32_t Crc32c(uint32_t crc, std::string_view data) {
#if defined(__x86_64__)
  static const bool sse42 = __builtin_cpu_supports("sse4.2");
  if (sse42) return Crc32cSse42(crc, data);
#endif
  return Crc32cPortable(crc, data);
}

uint32_t Crc32cPortable(uint32_t crc, std::string_view data) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo = crc ^ Load32(p);
    uint32_t hi = Load32(p + 4);
    crc = kCrcTables[7][lo & 0xff] ^ kCrcTables[6][(lo >> 8) & 0xff] ^
          kCrcTables[5][(lo >> 16) & 0xff] ^ kCrcTables[4][lo >> 24] ^
          kCrcTables[3][hi & 0xff] ^ kCrcTables[2][(hi >> 8) & 0xff] ^
          kCrcTables[1][(hi >> 16) & 0xff] ^ kCrcTables[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ kCrcTables[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

absl::Status ValidateChunkKey(const ChunkKey& key) {
  if (key.blob.empty()) return absl::InvalidArgumentError("chunk key: no blob digest");
  if (key.offset < 0 || key.length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk key ", key.ToString(), ": negative offset or length"));
  }
  return absl::OkStatus();
}

std::string ChunkRelativePath(const ChunkKey& key) {
  std::string_view hex = key.blob.hex();
  return absl::StrCat(AV(key.blob.algorithm()), "/", AV(hex.substr(0, 2)), "/", AV(hex), "/",
                      key.offset, "-", key.length);
}

absl::StatusOr<ChunkKey> ParseChunkRelativePath(std::string_view algorithm,
                                                std::string_view prefix, std::string_view hex,
                                                std::string_view name) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("chunk file \"", AV(algorithm), "/",
                                                   AV(prefix), "/", AV(hex), "/", AV(name),
                                                   "\": ", AV(why)));
  };
  auto digest = Digest::Parse(absl::StrCat(AV(algorithm), ":", AV(hex)));
  if (!digest.ok()) return bad("not a digest directory");
  if (hex.substr(0, 2) != prefix) return bad("digest under the wrong prefix directory");
  size_t dash = name.find('-');
  ChunkKey key;
  key.blob = *std::move(digest);
  if (dash == std::string_view::npos || !ParseCanonicalInt(name.substr(0, dash), &key.offset) ||
      !ParseCanonicalInt(name.substr(dash + 1), &key.length)) {
    return bad("name is not <offset>-<length>");
  }
  return key;
}

int64_t ChunkHeaderBytes(const ChunkKey& key) {
  return static_cast<int64_t>(kFixedHeaderBytes + key.blob.str().size());
}

int64_t ChunkFileBytes(const ChunkKey& key) { return ChunkHeaderBytes(key) + key.length; }

std::string EncodeChunkHeader(const ChunkKey& key, std::string_view payload) {
  const std::string& digest = key.blob.str();
  std::string out;
  out.reserve(kFixedHeaderBytes + digest.size());
  out.append(kMagic);
  Append32(&out, kVersion);
  Append32(&out, Crc32c(0, payload));
  Append64(&out, key.offset);
  Append64(&out, key.length);
  Append32(&out, static_cast<uint32_t>(digest.size()));
  Append32(&out, Crc32c(Crc32c(0, out), digest));
  out.append(digest);
  return out;
}

absl::StatusOr<uint32_t> DecodeChunkHeader(const ChunkKey& key, std::string_view header) {
  auto damaged = [&](std::string_view why) {
    return absl::DataLossError(absl::StrCat("chunk ", key.ToString(), ": ", AV(why)));
  };
  if (header.size() < kFixedHeaderBytes) return damaged("header truncated");
  if (header.substr(0, kMagic.size()) != kMagic) return damaged("bad magic");
  if (Read32(header, 8) != kVersion) return damaged("unknown format version");
  uint32_t digest_len = Read32(header, 32);
  if (digest_len > kMaxDigestText || header.size() != kFixedHeaderBytes + digest_len) {
    return damaged("bad header length");
  }
  std::string_view digest = header.substr(kFixedHeaderBytes);
  uint32_t want = Read32(header, 36);
  if (Crc32c(Crc32c(0, header.substr(0, 36)), digest) != want) {
    return damaged("header checksum mismatch");
  }
  if (digest != key.blob.str() || Read64(header, 16) != key.offset ||
      Read64(header, 24) != key.length) {
    return damaged("file holds another chunk");
  }
  return Read32(header, 12);
}

absl::StatusOr<std::string> ReadChunkFile(const std::string& path, const ChunkKey& key) {
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return LastErrnoStatus(absl::StrCat("fstat ", path));
  const int64_t header_bytes = ChunkHeaderBytes(key);
  if (st.st_size != header_bytes + key.length) {
    return absl::DataLossError(absl::StrCat("chunk ", key.ToString(), ": file has ",
                                            st.st_size, " bytes, want ",
                                            header_bytes + key.length));
  }
  std::string header(static_cast<size_t>(header_bytes), '\0');
  SS_RETURN_IF_ERROR(PreadExact(fd.get(), header.data(), header.size(), 0));
  SS_ASSIGN_OR_RETURN(uint32_t want_crc, DecodeChunkHeader(key, header));
  std::string payload(static_cast<size_t>(key.length), '\0');
  SS_RETURN_IF_ERROR(PreadExact(fd.get(), payload.data(), payload.size(), header.size()));
  if (Crc32c(0, payload) != want_crc) {
    return absl::DataLossError(absl::StrCat("chunk ", key.ToString(), ": checksum mismatch"));
  }
  return payload;
}

}  // namespace slipstream::remote
