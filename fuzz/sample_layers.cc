// SPDX-License-Identifier: Apache-2.0
#include "fuzz/sample_layers.h"

#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "fuzz/mini_tar.h"
#include "index/checkpoints.h"
#include "index/ztoc_builder.h"

namespace slipstream::fuzz {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "sample layers: %s\n", what.c_str());
  std::abort();
}

// Words and digits from a fixed LCG: compresses about 3:1, like text and binaries.
std::string Text(size_t size, uint32_t seed) {
  static const char* const kWords[] = {"layer ", "span ", "window ", "checkpoint ", "tar ",
                                       "gzip ", "index\n", "registry ", "blob ", "zTOC "};
  std::string out;
  uint32_t x = seed;
  while (out.size() < size) {
    x = x * 1103515245u + 12345u;
    if ((x >> 16) % 4 == 0) {
      out += std::to_string(x % 100000);
    } else {
      out += kWords[(x >> 16) % 10];
    }
  }
  out.resize(size);
  return out;
}

std::string Entries() {
  MiniTar t;
  t.Add("etc/", '5', "", "", {{"SCHILY.xattr.user.note", "fuzz"}});
  t.Add("etc/data.txt", '0', Text(10000, 1));
  t.Add("etc/empty", '0', "");
  t.Add("etc/small", '0', Text(700, 2));
  t.Add("etc/link", '2', "", "data.txt");
  t.Add("etc/hard", '1', "", "etc/small");
  t.Add("etc/fifo", '6');
  std::string long_name = "usr/share/" + std::string(120, 'n') + "/file";
  t.Add(long_name.substr(0, 99), '0', Text(300, 3), "", {{"path", long_name}});
  return t.Finish();
}

// One gzip member (10-byte header, no name, mtime 0). memLevel 1 makes deflate end a block
// every ~128 symbols, so even a small layer has many block boundaries to checkpoint at.
std::string GzipMember(std::string_view data) {
  z_stream s{};
  if (deflateInit2(&s, 6, Z_DEFLATED, 15 + 16, 1, Z_DEFAULT_STRATEGY) != Z_OK) Die("deflateInit2");
  std::string out(deflateBound(&s, data.size()), '\0');
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  s.avail_in = static_cast<uInt>(data.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  if (deflate(&s, Z_FINISH) != Z_STREAM_END) Die("deflate");
  out.resize(s.total_out);
  deflateEnd(&s);
  return out;
}

std::vector<SampleLayer> Build() {
  std::string tar = Entries();
  std::vector<SampleLayer> layers;
  // Spans a bit over half the stream: exactly two spans (checkpoints come after span_size).
  int64_t half = static_cast<int64_t>(tar.size()) * 5 / 9;
  layers.push_back({"gzip", tar, GzipMember(tar), half & ~int64_t{1}});
  std::string members = GzipMember(std::string_view(tar).substr(0, 7001)) +
                        GzipMember(std::string_view(tar).substr(7001)) + std::string(100, '\0');
  layers.push_back({"members", tar, members, half | 1});
  layers.push_back({"tar", tar, tar, 2048});
  for (size_t i = 0; i < layers.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (layers[i].blob.size() == layers[j].blob.size()) Die("two blobs of the same size");
    }
  }
  return layers;
}

}  // namespace

const std::vector<SampleLayer>& SampleLayers() {
  static const std::vector<SampleLayer>* layers = new std::vector<SampleLayer>(Build());
  return *layers;
}

const SampleLayer* FindSampleLayer(int64_t blob_size) {
  for (const SampleLayer& l : SampleLayers()) {
    if (static_cast<int64_t>(l.blob.size()) == blob_size) return &l;
  }
  return nullptr;
}

const SampleLayer& SampleLayerNamed(std::string_view name) {
  for (const SampleLayer& l : SampleLayers()) {
    if (l.name == name) return l;
  }
  Die("no sample layer " + std::string(name));
}

index::Ztoc SampleZtoc(const SampleLayer& layer, int64_t span_size) {
  index::ZtocBuilderOptions options;
  options.span_size = span_size;
  options.min_layer_size = 0;
  options.build_tool_identifier = "slipstream fuzz seeds";
  index::ZtocBuilder builder(options);
  absl::Status st = builder.Write(layer.blob);
  if (!st.ok()) Die(st.ToString());
  auto built = builder.Finish();
  if (!built.ok()) Die(built.status().ToString());
  if (!built->has_value()) Die("no zTOC for " + layer.name);
  return **std::move(built);
}

const index::Ztoc* ReferenceZtoc(const SampleLayer& layer, int64_t span_size) {
  if (span_size != layer.span_size && span_size != kOneSpanSize) return nullptr;
  // Keyed by layer and span size; a handful of entries, built on first use.
  static auto* cache = new std::map<std::pair<std::string, int64_t>, index::Ztoc>();
  auto key = std::make_pair(layer.name, span_size);
  auto it = cache->find(key);
  if (it == cache->end()) it = cache->emplace(key, SampleZtoc(layer, span_size)).first;
  return &it->second;
}

void WarmUpSampleLayers() {
  for (const SampleLayer& l : SampleLayers()) {
    ReferenceZtoc(l, l.span_size);
    ReferenceZtoc(l, kOneSpanSize);
  }
}

std::string ToV1Checkpoints(std::string_view v2_blob) {
  if (v2_blob.size() < index::kCheckpointBlobHeaderSize + index::kCheckpointRecordSize) {
    Die("checkpoint blob without checkpoint 0");
  }
  std::string v1(v2_blob.substr(0, index::kCheckpointBlobHeaderSize));
  v1 += v2_blob.substr(index::kCheckpointBlobHeaderSize + index::kCheckpointRecordSize);
  return v1;
}

}  // namespace slipstream::fuzz
