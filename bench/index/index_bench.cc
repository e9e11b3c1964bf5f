// SPDX-License-Identifier: Apache-2.0
// index_bench: the local half of bench/index/run.sh, on one gzip layer file.
//   index_bench push --layer FILE --ref REF      push a one-layer image whose layer is FILE
//                                                 byte for byte (for `slipstream index create`)
//   index_bench inflate --layer FILE [--threads N] [--span-size N] [--reps N]
//       builds the zTOC from the file (timed), then decodes every span with
//       index::InflateAllSpans on N threads and on 1 thread (best of --reps), and prints
//       key=value lines: layer_bytes, uncompressed_bytes, spans, ztoc_bytes, build_seconds,
//       inflate_seconds (N threads), inflate_1t_seconds, inflate_trusted_seconds (N threads,
//       SpanCheck::kSize: no per-span sha256, as when the caller checks the blob's digest),
//       and the CPU seconds (user + system, all threads) of each as *_cpu_seconds.
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/status.h"
#include "index/parallel_inflate.h"
#include "index/span_decoder.h"
#include "index/ztoc_builder.h"
#include "index/ztoc_format.h"
#include "nlohmann/json.hpp"
#include "remote/blob_reader.h"
#include "remote/manifest.h"
#include "remote/media_types.h"
#include "remote/platform.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "unpack/decompressor.h"

namespace slipstream::bench {
namespace {

// A layer file read with pread; thread-safe.
class FileBlobReader : public remote::BlobReader {
 public:
  FileBlobReader(UniqueFd fd, int64_t size, Digest digest)
      : fd_(std::move(fd)), size_(size), digest_(std::move(digest)) {}
  const Digest& digest() const override { return digest_; }
  int64_t size() const override { return size_; }
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override {
    if (offset < 0 || length < 0 || offset > size_) {
      return absl::OutOfRangeError(absl::StrCat("read of ", length, " at ", offset));
    }
    length = std::min(length, size_ - offset);
    std::string out(static_cast<size_t>(length), '\0');
    SS_RETURN_IF_ERROR(PreadExact(fd_.get(), out.data(), out.size(), offset));
    return out;
  }

 private:
  UniqueFd fd_;
  int64_t size_;
  Digest digest_;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// User + system CPU seconds of this process (all threads) so far.
double CpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Wall and CPU seconds of one timed run.
struct Timing {
  double wall = 1e30;
  double cpu = 1e30;
};

absl::StatusOr<std::unique_ptr<FileBlobReader>> OpenLayer(const std::string& path,
                                                          bool hash) {
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  struct stat st;
  if (fstat(fd.get(), &st) != 0) return LastErrnoStatus("stat " + path);
  Digest digest = Sha256Of("");
  if (hash) {
    Sha256Hasher hasher;
    std::string buf(4 << 20, '\0');
    for (int64_t off = 0; off < st.st_size; off += static_cast<int64_t>(buf.size())) {
      size_t n = static_cast<size_t>(std::min<int64_t>(buf.size(), st.st_size - off));
      SS_RETURN_IF_ERROR(PreadExact(fd.get(), buf.data(), n, off));
      hasher.Update(std::string_view(buf.data(), n));
    }
    digest = hasher.Finish();
  }
  return std::make_unique<FileBlobReader>(std::move(fd), st.st_size, std::move(digest));
}

// Pushes a one-layer image whose layer is the file as it is (its diff_id computed by
// decompressing it), so that `slipstream index create REF` indexes exactly this layer.
absl::Status Push(const std::string& layer_path, const std::string& ref_text) {
  SS_ASSIGN_OR_RETURN(remote::Reference ref, remote::Reference::Parse(ref_text));
  SS_ASSIGN_OR_RETURN(auto layer, OpenLayer(layer_path, /*hash=*/true));
  Sha256Hasher diff;
  auto gunzip = unpack::NewGzipDecompressor([&](std::string_view b) {
    diff.Update(b);
    return absl::OkStatus();
  });
  for (int64_t off = 0; off < layer->size(); off += 4 << 20) {
    SS_ASSIGN_OR_RETURN(std::string chunk, layer->ReadAt(off, 4 << 20));
    SS_RETURN_IF_ERROR(gunzip->Write(chunk));
  }
  SS_RETURN_IF_ERROR(gunzip->Finish());
  const remote::Platform platform = remote::Platform::Host();
  nlohmann::ordered_json config = {
      {"architecture", platform.architecture},
      {"os", platform.os},
      {"config", nlohmann::ordered_json::object()},
      {"rootfs", {{"type", "layers"}, {"diff_ids", {diff.Finish().str()}}}}};
  const std::string config_json = config.dump();

  remote::Manifest m;
  m.media_type = std::string(remote::kOciManifest);
  m.config = {.media_type = std::string(remote::kOciConfig),
              .digest = Sha256Of(config_json),
              .size = static_cast<int64_t>(config_json.size())};
  m.layers.push_back({.media_type = std::string(remote::kOciLayerGzip),
                      .digest = layer->digest(),
                      .size = layer->size()});
  SS_ASSIGN_OR_RETURN(auto client, remote::RegistryClient::Create({}));
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(layer_path, O_RDONLY));
  SS_RETURN_IF_ERROR(client->PushBlobFromFile(ref, layer->digest(), fd.get(), layer->size()));
  SS_RETURN_IF_ERROR(client->PushBlob(ref, m.config.digest, config_json));
  SS_ASSIGN_OR_RETURN(Digest pushed, client->PushManifest(ref, remote::kOciManifest, m.ToJson()));
  std::cout << "pushed " << ref.String() << "@" << pushed.str() << " (layer "
            << layer->digest().str() << ", " << layer->size() << " bytes)\n";
  return absl::OkStatus();
}

// The fastest (wall) of `reps` InflateAllSpans runs on `threads` threads, with its CPU time;
// checks that the spans cover the whole uncompressed stream.
absl::StatusOr<Timing> TimeInflate(const index::Ztoc& z, remote::BlobReader& blob, int threads,
                                   int reps, index::SpanCheck check = index::SpanCheck::kDigest) {
  Timing best;
  for (int r = 0; r < reps; ++r) {
    std::atomic<int64_t> bytes{0};
    const double cpu = CpuSeconds();
    auto start = std::chrono::steady_clock::now();
    SS_RETURN_IF_ERROR(index::InflateAllSpans(
        z, blob,
        [&](int64_t, std::string_view data) {
          bytes += static_cast<int64_t>(data.size());
          return absl::OkStatus();
        },
        {.threads = threads, .check = check}));
    const double wall = Seconds(start);
    if (wall < best.wall) best = {wall, CpuSeconds() - cpu};
    if (bytes != z.uncompressed_archive_size) {
      return absl::DataLossError(absl::StrCat("spans gave ", bytes.load(), " bytes, expected ",
                                              z.uncompressed_archive_size));
    }
  }
  return best;
}

absl::Status Inflate(const std::string& layer_path, int threads, int64_t span_size, int reps) {
  SS_ASSIGN_OR_RETURN(auto layer, OpenLayer(layer_path, /*hash=*/false));
  index::ZtocBuilderOptions options;
  options.span_size = span_size;
  options.min_layer_size = 0;
  const double cpu = CpuSeconds();
  auto start = std::chrono::steady_clock::now();
  SS_ASSIGN_OR_RETURN(std::optional<index::Ztoc> built, index::BuildZtoc(*layer, options));
  const Timing build{Seconds(start), CpuSeconds() - cpu};
  if (!built.has_value()) return absl::InternalError("no zTOC built");
  SS_ASSIGN_OR_RETURN(std::string bytes, index::SerializeZtoc(*built));
  SS_ASSIGN_OR_RETURN(Timing parallel, TimeInflate(*built, *layer, threads, reps));
  SS_ASSIGN_OR_RETURN(Timing single, TimeInflate(*built, *layer, 1, reps));
  SS_ASSIGN_OR_RETURN(Timing trusted,
                      TimeInflate(*built, *layer, threads, reps, index::SpanCheck::kSize));
  std::cout << "layer_bytes=" << layer->size() << "\n"
            << "uncompressed_bytes=" << built->uncompressed_archive_size << "\n"
            << "spans=" << built->SpanCount() << "\n"
            << "ztoc_bytes=" << bytes.size() << "\n"
            << "build_seconds=" << build.wall << "\n"
            << "build_cpu_seconds=" << build.cpu << "\n"
            << "threads=" << threads << "\n"
            << "inflate_seconds=" << parallel.wall << "\n"
            << "inflate_cpu_seconds=" << parallel.cpu << "\n"
            << "inflate_1t_seconds=" << single.wall << "\n"
            << "inflate_1t_cpu_seconds=" << single.cpu << "\n"
            << "inflate_trusted_seconds=" << trusted.wall << "\n"
            << "inflate_trusted_cpu_seconds=" << trusted.cpu << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace slipstream::bench

int main(int argc, char** argv) {
  CLI::App app{"index_bench: zTOC build and parallel inflate on a local gzip layer"};
  app.require_subcommand(1);
  std::string layer, ref;
  int threads = 2, reps = 3;
  int64_t span_size = 4 << 20;
  CLI::App* push = app.add_subcommand("push", "push a one-layer image made of the file");
  push->add_option("--layer", layer, "gzip layer file")->required();
  push->add_option("--ref", ref, "image reference")->required();
  CLI::App* inflate = app.add_subcommand("inflate", "time zTOC build and InflateAllSpans");
  inflate->add_option("--layer", layer, "gzip layer file")->required();
  inflate->add_option("--threads", threads, "inflate threads")->capture_default_str();
  inflate->add_option("--span-size", span_size, "zTOC span size")->capture_default_str();
  inflate->add_option("--reps", reps, "repetitions (best is reported)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  absl::Status st = push->parsed()
                        ? slipstream::bench::Push(layer, ref)
                        : slipstream::bench::Inflate(layer, threads, span_size, reps);
  if (!st.ok()) {
    std::cerr << "index_bench: " << st << "\n";
    return 1;
  }
  return 0;
}
