// SPDX-License-Identifier: Apache-2.0
#include "tests/index/test_layers.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <thread>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "flatbuffers/flatbuffers.h"
#include "index/checkpoints.h"
#include "index/ztoc_builder.h"
#include "index/ztoc_generated.h"

namespace slipstream::index::testing {

absl::StatusOr<std::string> MemoryBlobReader::ReadAt(int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) return absl::InvalidArgumentError("negative read");
  if (offset > size()) return absl::OutOfRangeError("read past the end");
  ++reads_;
  std::string out = data_.substr(offset, length);
  bytes_read_ += static_cast<int64_t>(out.size());
  return out;
}

std::string PseudoRandomText(size_t size, uint64_t seed) {
  static const char* const kWords[] = {"layer ", "span ", "index ", "gzip ", "tar ", "block ",
                                       "window ", "zran ", "chunk ", "registry ", "\n",
                                       "snapshot ", "overlay ", "digest "};
  std::mt19937_64 rng(seed);
  std::string out;
  out.reserve(size + 16);
  while (out.size() < size) {
    uint64_t r = rng();
    if ((r & 7) == 0) {
      // Noise keeps the Huffman tables changing, so deflate emits many blocks.
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((r >> (8 * i)) & 0xff));
    } else {
      out.append(kWords[(r >> 8) % (sizeof(kWords) / sizeof(kWords[0]))]);
    }
  }
  out.resize(size);
  return out;
}

namespace {

void PutOctal(std::string& h, size_t pos, size_t width, int64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(v));
  h.replace(pos, width - 1, buf, width - 1);
  h[pos + width - 1] = '\0';
}

void PutString(std::string& h, size_t pos, size_t width, const std::string& s) {
  h.replace(pos, std::min(width, s.size()), s.substr(0, width));
}

std::string Header(const std::string& name, char typeflag, int64_t size,
                   const std::string& linkname, const TarBuilder::Attrs& a,
                   int64_t devmajor = 0, int64_t devminor = 0) {
  std::string h(512, '\0');
  PutString(h, 0, 100, name);
  PutOctal(h, 100, 8, a.mode);
  PutOctal(h, 108, 8, a.uid);
  PutOctal(h, 116, 8, a.gid);
  PutOctal(h, 124, 12, size);
  PutOctal(h, 136, 12, a.mtime);
  h[156] = typeflag;
  PutString(h, 157, 100, linkname);
  if (a.gnu_magic) {
    PutString(h, 257, 8, std::string("ustar  \0", 8));
  } else {
    PutString(h, 257, 8, std::string("ustar\0" "00", 8));
  }
  PutString(h, 265, 32, a.uname);
  PutString(h, 297, 32, a.gname);
  PutOctal(h, 329, 8, devmajor);
  PutOctal(h, 337, 8, devminor);
  if (!a.gnu_magic) PutString(h, 345, 155, a.prefix);
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (char c : h) sum += static_cast<uint8_t>(c);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%06o", sum);
  h.replace(148, 6, buf, 6);
  h[154] = '\0';
  h[155] = ' ';
  return h;
}

void AppendData(std::string& out, const std::string& data) {
  out += data;
  out.append((512 - data.size() % 512) % 512, '\0');
}

}  // namespace

void TarBuilder::AddRaw(const std::string& name, char typeflag, const std::string& data,
                        const std::string& linkname, const Attrs& a) {
  out_ += Header(name, typeflag, static_cast<int64_t>(data.size()), linkname, a);
  AppendData(out_, data);
}

void TarBuilder::AddFile(const std::string& name, const std::string& data, const Attrs& a) {
  AddRaw(name, '0', data, "", a);
}
void TarBuilder::AddDir(const std::string& name, const Attrs& a) {
  Attrs d = a;
  d.mode = 0755;
  AddRaw(name, '5', "", "", d);
}
void TarBuilder::AddSymlink(const std::string& name, const std::string& target, const Attrs& a) {
  AddRaw(name, '2', "", target, a);
}
void TarBuilder::AddHardlink(const std::string& name, const std::string& target,
                             const Attrs& a) {
  AddRaw(name, '1', "", target, a);
}
void TarBuilder::AddFifo(const std::string& name, const Attrs& a) { AddRaw(name, '6', "", "", a); }
void TarBuilder::AddChar(const std::string& name, int64_t major, int64_t minor, const Attrs& a) {
  out_ += Header(name, '3', 0, "", a, major, minor);
}

void TarBuilder::AddPax(const std::map<std::string, std::string>& records) {
  std::string body;
  for (const auto& [k, v] : records) {
    std::string rest = absl::StrCat(" ", k, "=", v, "\n");
    size_t len = rest.size() + 1;
    while (absl::StrCat(len).size() + rest.size() != len) ++len;
    body += absl::StrCat(len, rest);
  }
  AddRaw("PaxHeaders/x", 'x', body);
}

void TarBuilder::AddGnuLongName(const std::string& name) {
  Attrs a;
  a.gnu_magic = true;
  AddRaw("././@LongLink", 'L', name + std::string(1, '\0'), "", a);
}

std::string TarBuilder::Finish() const { return out_ + std::string(1024, '\0'); }

absl::StatusOr<std::string> RunFilter(const std::vector<std::string>& argv,
                                      const std::string& input) {
  SubprocessOptions opts;
  opts.stdin_data = input;
  opts.max_output = size_t{1} << 30;
  opts.timeout = absl::Seconds(60);
  auto r = RunSubprocess(argv, opts);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return absl::InternalError(absl::StrCat(argv[0], " exited ", r->exit_code, ": ",
                                            r->stderr_data));
  }
  return std::move(r->stdout_data);
}

absl::StatusOr<std::string> Compress(const std::string& tool, const std::string& tar) {
  if (tool == "gzip") return RunFilter({"gzip", "-n", "-6", "-c"}, tar);
  if (tool == "gzip1") return RunFilter({"gzip", "-n", "-1", "-c"}, tar);
  if (tool == "pigz") return RunFilter({"pigz", "-n", "-p", "2", "-c"}, tar);
  if (tool == "members") {
    // Odd cut points so members end mid-block and mid-span.
    std::string out;
    size_t pos = 0, step = 100003;
    while (pos < tar.size()) {
      size_t n = std::min(step, tar.size() - pos);
      auto part = RunFilter({"gzip", "-n", "-1", "-c"}, tar.substr(pos, n));
      if (!part.ok()) return part.status();
      out += *part;
      pos += n;
      step = step * 3 / 2 + 7;
    }
    return out;
  }
  return absl::InvalidArgumentError(tool);
}

absl::StatusOr<std::string> TarExtract(const std::string& tar, const std::string& name) {
  return RunFilter({"tar", "-xOf", "-", name}, tar);
}

absl::StatusOr<Ztoc> BuildTestZtoc(const std::string& blob, int64_t span_size, size_t chunk) {
  ZtocBuilderOptions opts;
  opts.span_size = span_size;
  opts.min_layer_size = 0;
  opts.build_tool_identifier = "slipstream-test";
  ZtocBuilder builder(opts);
  for (size_t pos = 0; pos < blob.size(); pos += chunk) {
    absl::Status s = builder.Write(std::string_view(blob).substr(pos, chunk));
    if (!s.ok()) return s;
  }
  auto z = builder.Finish();
  if (!z.ok()) return z.status();
  if (!z->has_value()) return absl::InternalError("no zTOC built");
  return **std::move(z);
}

std::string SerializeRaw(const Ztoc& z, const RawOverrides& o) {
  namespace fb = ::slipstream::index::fbs;
  flatbuffers::FlatBufferBuilder b;
  std::vector<flatbuffers::Offset<fb::FileMetadata>> entries;
  for (const FileMetadata& e : z.entries) {
    std::vector<flatbuffers::Offset<fb::Xattr>> xattrs;
    for (const Xattr& x : e.xattrs) {
      xattrs.push_back(fb::CreateXattr(b, b.CreateString(x.key), b.CreateString(x.value)));
    }
    entries.push_back(fb::CreateFileMetadata(
        b, b.CreateString(e.name), b.CreateString(e.type), e.uncompressed_offset,
        e.uncompressed_size, b.CreateString(e.linkname), e.mode, e.uid, e.gid,
        b.CreateString(e.uname), b.CreateString(e.gname), b.CreateString(e.mod_time),
        e.devmajor, e.devminor, b.CreateVector(xattrs)));
  }
  auto toc = fb::CreateTOC(b, b.CreateVector(entries));
  std::vector<std::string> digest_text;
  if (o.span_digests) {
    digest_text = *o.span_digests;
  } else {
    for (const Digest& d : z.span_digests) digest_text.push_back(d.str());
  }
  std::vector<flatbuffers::Offset<flatbuffers::String>> digests;
  for (const std::string& d : digest_text) digests.push_back(b.CreateString(d));
  std::string blob = o.checkpoints_blob ? *o.checkpoints_blob
                     : z.compression == CompressionAlgorithm::kGzip
                         ? EncodeGzipCheckpoints(z.span_size, z.checkpoints)
                         : EncodeTarZinfo({z.tar_zinfo_version, z.span_size,
                                           z.compressed_archive_size});
  auto info = fb::CreateCompressionInfo(
      b,
      static_cast<fb::CompressionAlgorithm>(
          o.compression_algorithm.value_or(static_cast<int8_t>(z.compression))),
      o.max_span_id.value_or(static_cast<int32_t>(z.SpanCount() - 1)), b.CreateVector(digests),
      b.CreateVector(reinterpret_cast<const uint8_t*>(blob.data()), blob.size()));
  auto root = fb::CreateZtoc(b, b.CreateString(z.version), b.CreateString(z.build_tool_identifier),
                             z.compressed_archive_size, z.uncompressed_archive_size, toc, info);
  b.Finish(root);
  return std::string(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
}

}  // namespace slipstream::index::testing

namespace slipstream::index::testing {
namespace {

void WriteOrDie(const std::string& path, const std::string& data) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr || std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::abort();
  std::fclose(f);
}

GnuTarCorpus* MakeCorpus() {
  auto* c = new GnuTarCorpus;
  static auto dir = TempDir::Create("index-corpus-");
  if (!dir.ok()) std::abort();
  std::string root = dir->Join("root");
  std::vector<std::string> dirs = {"", "/files", "/nested", "/nested/a", "/nested/a/b", "/empty",
                                   "/deep"};
  for (const std::string& d : dirs) {
    if (!MakeDirs(root + d).ok()) std::abort();
  }
  std::map<std::string, std::string> plain;  // relative path -> content
  uint64_t seed = 1;
  for (size_t size : {0, 1, 100, 511, 512, 513, 4095, 65536, 65537, 200000, 1 << 20}) {
    plain[absl::StrCat("files/f_", size)] = PseudoRandomText(size, seed++);
  }
  plain["nested/a/b/leaf.txt"] = "leaf\n";
  plain["nested/a/mid.bin"] = PseudoRandomText(300000, seed++);
  plain[std::string("deep/") + std::string(120, 'n') + ".txt"] = PseudoRandomText(7000, seed++);
  c->big_name = "./big.bin";
  {
    // Rotated copies of 1 MB of text: as hard for deflate as fresh text (repeats are far
    // beyond its 32 KiB window) and much faster to make in a debug build.
    std::string base = PseudoRandomText((1 << 20) + 4099, seed++);
    std::string big;
    big.reserve(30 << 20);
    for (size_t i = 0; big.size() < (30u << 20); ++i) {
      size_t rot = (i * 7919) % base.size();
      big.append(base, rot, std::string::npos);
      big.append(base, 0, rot);
    }
    big.resize(30 << 20);
    plain["big.bin"] = std::move(big);
  }
  for (const auto& [rel, data] : plain) {
    WriteOrDie(root + "/" + rel, data);
    c->files["./" + rel] = data;
  }
  if (symlink("files/f_100", (root + "/link").c_str()) != 0) std::abort();
  if (link((root + "/files/f_513").c_str(), (root + "/hard").c_str()) != 0) std::abort();

  auto tar = RunFilter({"tar", "-C", root, "--sort=name", "--format=gnu", "--owner=0",
                        "--group=0", "--numeric-owner", "-cf", "-", "."},
                       "");
  if (!tar.ok()) std::abort();
  c->tar = *std::move(tar);
  c->tar_path = dir->Join("layer.tar");
  WriteOrDie(c->tar_path, c->tar);
  // The three compressors run at once: they dominate the corpus's cost.
  const std::vector<std::string> tools = {"gzip", "pigz", "members"};
  std::vector<absl::StatusOr<std::string>> blobs(tools.size(), absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < tools.size(); ++i) {
    threads.emplace_back([&, i] { blobs[i] = Compress(tools[i], c->tar); });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < tools.size(); ++i) {
    if (!blobs[i].ok()) std::abort();
    c->layers[tools[i]] = *std::move(blobs[i]);
  }
  return c;
}

}  // namespace

const GnuTarCorpus& Corpus() {
  static const GnuTarCorpus* corpus = MakeCorpus();
  return *corpus;
}

}  // namespace slipstream::index::testing
