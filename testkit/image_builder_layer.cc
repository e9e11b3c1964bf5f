// SPDX-License-Identifier: Apache-2.0
// BuildLayer: tar source → diff_id hasher → compressor → blob hasher → temp file → rename.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"
#include "testkit/compress.h"
#include "testkit/image_builder.h"
#include "testkit/tar_writer.h"

namespace slipstream::testkit {

namespace {

using remote::Compression;

// Removes a temp file unless Release() was called (the file was renamed into place).
class TempFileGuard {
 public:
  explicit TempFileGuard(std::string path) : path_(std::move(path)) {}
  ~TempFileGuard() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// Streams the layer's uncompressed tar into `sink`.
absl::Status FeedSource(const LayerSpec& spec, const remote::BodySink& sink) {
  if (!spec.tar_bytes.empty()) return sink(spec.tar_bytes);
  if (!spec.source_tar.empty()) {
    SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(spec.source_tar, O_RDONLY));
    std::string buf(1 << 20, '\0');
    while (true) {
      const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return LastErrnoStatus(absl::StrCat("read ", spec.source_tar));
      }
      if (n == 0) return absl::OkStatus();
      SS_RETURN_IF_ERROR(sink(std::string_view(buf.data(), static_cast<size_t>(n))));
    }
  }
  TarWriter writer(sink);
  SS_RETURN_IF_ERROR(AddDirectoryTree(writer, spec.source_dir, spec.tree));
  return writer.Finish();
}

int64_t MemberSize(const LayerSpec& spec) {
  switch (spec.compression) {
    case Compression::kGzip: return spec.gzip_members_every;
    case Compression::kZstd: return spec.zstd_frames_every;
    case Compression::kNone: return 0;
  }
  return 0;
}

// Where the record of a cached layer lives: the key covers everything that changes the
// blob's bytes besides the source itself.
std::string CachePath(const LayerSpec& spec, const std::string& work_dir) {
  const Digest key = Sha256Of(absl::StrCat(spec.cache_key, "|", AV(CompressionName(spec.compression)),
                                           "|", spec.level, "|", MemberSize(spec)));
  return absl::StrCat(work_dir, "/layer-cache/", AV(key.hex()), ".json");
}

// A cached layer whose blob is still on disk with the recorded size, or nullopt.
std::optional<BuiltLayer> LoadCached(const LayerSpec& spec, const std::string& work_dir) {
  auto text = ReadFileToString(CachePath(spec, work_dir));
  if (!text.ok()) return std::nullopt;
  const auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  try {
    auto digest = Digest::Parse(j.at("digest").get<std::string>());
    auto diff_id = Digest::Parse(j.at("diff_id").get<std::string>());
    if (!digest.ok() || !diff_id.ok()) return std::nullopt;
    BuiltLayer layer;
    layer.descriptor.media_type = std::string(LayerMediaType(spec.compression));
    layer.descriptor.digest = *digest;
    layer.descriptor.size = j.at("size").get<int64_t>();
    layer.descriptor.annotations = spec.annotations;
    layer.diff_id = *diff_id;
    layer.uncompressed_size = j.at("uncompressed_size").get<int64_t>();
    layer.path = absl::StrCat(work_dir, "/blobs/sha256/", AV(digest->hex()));
    struct stat st;
    if (::stat(layer.path.c_str(), &st) != 0 || st.st_size != layer.descriptor.size) {
      return std::nullopt;
    }
    return layer;
  } catch (const std::exception&) {
    // A damaged record only costs a rebuild.
    return std::nullopt;
  }
}

absl::Status SaveCached(const LayerSpec& spec, const std::string& work_dir,
                        const BuiltLayer& layer) {
  SS_RETURN_IF_ERROR(MakeDirs(work_dir + "/layer-cache"));
  nlohmann::ordered_json j;
  j["key"] = spec.cache_key;
  j["digest"] = layer.descriptor.digest.str();
  j["size"] = layer.descriptor.size;
  j["diff_id"] = layer.diff_id.str();
  j["uncompressed_size"] = layer.uncompressed_size;
  return WriteFileAtomic(CachePath(spec, work_dir), j.dump(2) + "\n");
}

}  // namespace

absl::StatusOr<BuiltLayer> BuildLayer(const LayerSpec& spec, const std::string& work_dir) {
  const int sources = !spec.source_dir.empty() + !spec.source_tar.empty() +
                      !spec.tar_bytes.empty();
  if (sources != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "layer spec needs exactly one of source_dir, source_tar, tar_bytes (got ", sources, ")"));
  }
  if (!spec.cache_key.empty()) {
    if (auto cached = LoadCached(spec, work_dir)) {
      log::Info("reusing cached layer", {{"key", spec.cache_key},
                                         {"digest", cached->descriptor.digest.Short()}});
      return *std::move(cached);
    }
  }
  const std::string blobs = work_dir + "/blobs/sha256";
  SS_RETURN_IF_ERROR(MakeDirs(blobs));
  std::string temp = blobs + "/.layer-XXXXXX";
  UniqueFd fd(::mkostemp(temp.data(), O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus(absl::StrCat("mkstemp in ", blobs));
  TempFileGuard guard(temp);

  Sha256Hasher blob_hash;
  int64_t blob_size = 0;
  const remote::BodySink file_sink = [&](std::string_view chunk) {
    blob_hash.Update(chunk);
    blob_size += static_cast<int64_t>(chunk.size());
    return WriteAll(fd.get(), chunk);
  };
  SS_ASSIGN_OR_RETURN(std::unique_ptr<Compressor> compressor,
                      MakeCompressor(spec.compression, file_sink,
                                     {.level = spec.level, .member_size = MemberSize(spec)}));
  Sha256Hasher tar_hash;
  int64_t tar_size = 0;
  const remote::BodySink tar_sink = [&](std::string_view chunk) {
    tar_hash.Update(chunk);
    tar_size += static_cast<int64_t>(chunk.size());
    return compressor->Update(chunk);
  };
  SS_RETURN_IF_ERROR(FeedSource(spec, tar_sink));
  SS_RETURN_IF_ERROR(compressor->Finish());
  // Readable by the registry fixture or anyone serving the layout (mkstemp made it 0600).
  if (::fchmod(fd.get(), 0644) != 0) return LastErrnoStatus(absl::StrCat("fchmod ", temp));

  BuiltLayer layer;
  layer.descriptor.media_type = std::string(LayerMediaType(spec.compression));
  layer.descriptor.digest = blob_hash.Finish();
  layer.descriptor.size = blob_size;
  layer.descriptor.annotations = spec.annotations;
  layer.diff_id = tar_hash.Finish();
  layer.uncompressed_size = tar_size;
  layer.path = absl::StrCat(blobs, "/", AV(layer.descriptor.digest.hex()));
  if (::rename(temp.c_str(), layer.path.c_str()) != 0) {
    return LastErrnoStatus(absl::StrCat("rename ", temp, " to ", layer.path));
  }
  guard.Release();
  if (!spec.cache_key.empty()) SS_RETURN_IF_ERROR(SaveCached(spec, work_dir, layer));
  log::Info("built layer", {{"digest", layer.descriptor.digest.Short()},
                            {"compression", CompressionName(spec.compression)},
                            {"size", layer.descriptor.size},
                            {"uncompressed", layer.uncompressed_size}});
  return layer;
}

}  // namespace slipstream::testkit
