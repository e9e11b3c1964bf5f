// SPDX-License-Identifier: Apache-2.0
// ztoc_seed_gen OUT_DIR: writes the seed corpus of the zTOC fuzz targets from the sample
// layers (fuzz/sample_layers.h), indexed by our own ZtocBuilder:
//   OUT_DIR/ztoc_fuzzer/<layer>-<spans>-<v1|v2>.ztoc   serialized zTOCs
//   OUT_DIR/checkpoints_fuzzer/<name>.bin             checkpoint blobs and TarZinfos
//   OUT_DIR/tar_fuzzer/<name>.tar                     small archives (fuzz/tar_seeds.h)
// Every file stays under 64 KiB: a gzip checkpoint carries a 32 KiB window, so two-span gzip
// seeds use the v1 layout (checkpoint 0 implied). Run by `scripts/fuzz --regen-seeds`.
#include <cstdio>
#include <string>
#include <vector>

#include "common/fd.h"
#include "flatbuffers/flatbuffers.h"
#include "fuzz/sample_layers.h"
#include "fuzz/tar_seeds.h"
#include "index/checkpoints.h"
#include "index/ztoc_format.h"
#include "index/ztoc_generated.h"

namespace slipstream::fuzz {
namespace {

namespace fb = ::slipstream::index::fbs;

constexpr size_t kMaxSeedSize = 64 << 10;

flatbuffers::Offset<flatbuffers::String> MaybeString(flatbuffers::FlatBufferBuilder& b,
                                                     const std::string& s) {
  return s.empty() ? 0 : b.CreateString(s);
}

// `z` serialized with `checkpoints` as its checkpoint blob, bypassing the validation and the
// encoding SerializeZtoc does (it only writes v2).
std::string SerializeWithCheckpoints(const index::Ztoc& z, const std::string& checkpoints) {
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::FileMetadata>> entries;
  for (const index::FileMetadata& e : z.entries) {
    std::vector<flatbuffers::Offset<fb::Xattr>> xattrs;
    for (const index::Xattr& x : e.xattrs) {
      xattrs.push_back(fb::CreateXattr(b, b.CreateString(x.key), b.CreateString(x.value)));
    }
    entries.push_back(fb::CreateFileMetadata(
        b, b.CreateString(e.name), b.CreateString(e.type), e.uncompressed_offset,
        e.uncompressed_size, MaybeString(b, e.linkname), e.mode, e.uid, e.gid,
        MaybeString(b, e.uname), MaybeString(b, e.gname), MaybeString(b, e.mod_time),
        e.devmajor, e.devminor, xattrs.empty() ? 0 : b.CreateVector(xattrs)));
  }
  auto toc = fb::CreateTOC(b, b.CreateVector(entries));
  std::vector<flatbuffers::Offset<flatbuffers::String>> digests;
  for (const Digest& d : z.span_digests) digests.push_back(b.CreateString(d.str()));
  auto info = fb::CreateCompressionInfo(
      b, static_cast<fb::CompressionAlgorithm>(z.compression),
      static_cast<int32_t>(z.SpanCount() - 1), b.CreateVector(digests),
      b.CreateVector(reinterpret_cast<const uint8_t*>(checkpoints.data()), checkpoints.size()));
  b.Finish(fb::CreateZtoc(b, b.CreateString(z.version), b.CreateString(z.build_tool_identifier),
                          z.compressed_archive_size, z.uncompressed_archive_size, toc, info));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

std::string TarZinfoFlatbuffer(const index::TarZinfo& t) {
  flatbuffers::FlatBufferBuilder b;
  b.Finish(fb::CreateTarZinfo(b, t.version, t.span_size, t.size));
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

bool Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  if (bytes.size() >= kMaxSeedSize) {
    std::fprintf(stderr, "ztoc_seed_gen: %s is %zu bytes, over the 64 KiB seed limit\n",
                 name.c_str(), bytes.size());
    return false;
  }
  absl::Status st = MakeDirs(dir);
  if (st.ok()) st = WriteFileAtomic(dir + "/" + name, bytes);
  if (!st.ok()) {
    std::fprintf(stderr, "ztoc_seed_gen: %s\n", st.ToString().c_str());
    return false;
  }
  std::printf("%8zu  %s/%s\n", bytes.size(), dir.c_str(), name.c_str());
  return true;
}

bool WriteSeeds(const std::string& out) {
  const std::string ztocs = out + "/ztoc_fuzzer";
  const std::string blobs = out + "/checkpoints_fuzzer";
  bool ok = true;
  for (const SampleLayer& layer : SampleLayers()) {
    for (int64_t span_size : {kOneSpanSize, layer.span_size}) {
      index::Ztoc z = SampleZtoc(layer, span_size);
      std::string name = layer.name + "-" + std::to_string(z.SpanCount()) + "span";
      if (z.compression == index::CompressionAlgorithm::kUncompressed) {
        ok &= Write(ztocs, name + ".ztoc", *index::SerializeZtoc(z));
        index::TarZinfo t{z.tar_zinfo_version, z.span_size, z.compressed_archive_size};
        ok &= Write(blobs, name + "-tarzinfo.bin", index::EncodeTarZinfo(t));
        ok &= Write(blobs, name + "-tarzinfo-fb.bin", TarZinfoFlatbuffer(t));
        continue;
      }
      std::string v2 = index::EncodeGzipCheckpoints(z.span_size, z.checkpoints);
      std::string v1 = ToV1Checkpoints(v2);
      if (z.SpanCount() == 1) {
        ok &= Write(ztocs, name + "-v2.ztoc", *index::SerializeZtoc(z));
        ok &= Write(blobs, name + "-v2.bin", v2);
        ok &= Write(blobs, name + "-v1.bin", v1);
      } else {
        ok &= Write(ztocs, name + "-v1.ztoc", SerializeWithCheckpoints(z, v1));
        ok &= Write(blobs, name + "-v1.bin", v1);
      }
    }
  }
  return ok;
}

}  // namespace
}  // namespace slipstream::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const bool ztoc_ok = slipstream::fuzz::WriteSeeds(argv[1]);
  const bool tar_ok = slipstream::fuzz::WriteTarSeeds(argv[1]);
  return ztoc_ok && tar_ok ? 0 : 1;
}
