// SPDX-License-Identifier: Apache-2.0
#include "testkit/image_builder.h"

#include <fcntl.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::testkit {

namespace {

using OrderedJson = nlohmann::ordered_json;

std::string ConfigJson(const ImageSpec& spec, const remote::Platform& platform,
                       const std::vector<BuiltLayer>& layers) {
  OrderedJson j;
  if (!spec.created.empty()) j["created"] = spec.created;
  j["architecture"] = platform.architecture;
  j["os"] = platform.os;
  if (!platform.variant.empty()) j["variant"] = platform.variant;
  OrderedJson config = OrderedJson::object();
  if (!spec.env.empty()) config["Env"] = spec.env;
  if (!spec.entrypoint.empty()) config["Entrypoint"] = spec.entrypoint;
  if (!spec.cmd.empty()) config["Cmd"] = spec.cmd;
  if (!spec.working_dir.empty()) config["WorkingDir"] = spec.working_dir;
  j["config"] = std::move(config);
  OrderedJson diff_ids = OrderedJson::array();
  OrderedJson history = OrderedJson::array();
  for (size_t i = 0; i < layers.size(); ++i) {
    diff_ids.push_back(layers[i].diff_id.str());
    OrderedJson h;
    if (!spec.created.empty()) h["created"] = spec.created;
    h["created_by"] = absl::StrCat("slipstream testkit: layer ", i);
    history.push_back(std::move(h));
  }
  j["rootfs"] = {{"type", "layers"}, {"diff_ids", std::move(diff_ids)}};
  j["history"] = std::move(history);
  return j.dump();
}

std::string BlobPath(const std::string& work_dir, const Digest& digest) {
  return absl::StrCat(work_dir, "/blobs/sha256/", AV(digest.hex()));
}

// Writes a small blob into the layout (atomically: a reader never sees half a blob).
absl::Status WriteBlob(const std::string& work_dir, const Digest& digest, std::string_view data) {
  return WriteFileAtomic(BlobPath(work_dir, digest), data);
}

// oci-layout and an index.json naming `top` (the image manifest or index).
absl::Status WriteLayoutIndex(const std::string& work_dir, const remote::Descriptor& top) {
  SS_RETURN_IF_ERROR(
      WriteFileAtomic(work_dir + "/oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}"));
  remote::ImageIndex layout;
  layout.media_type = std::string(remote::kOciIndex);
  layout.manifests.push_back(top);
  return WriteFileAtomic(work_dir + "/index.json", layout.ToJson());
}

// Builds the layers of `spec`, at most spec.parallel_layers at a time: compression is the
// slow part and each layer is an independent stream.
absl::StatusOr<std::vector<BuiltLayer>> BuildLayers(const ImageSpec& spec,
                                                    const std::string& work_dir) {
  const size_t n = spec.layers.size();
  std::vector<std::optional<absl::StatusOr<BuiltLayer>>> results(n);
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i = next++; i < n; i = next++) {
      results[i] = BuildLayer(spec.layers[i], work_dir);
    }
  };
  const size_t threads =
      std::min<size_t>(n, static_cast<size_t>(std::max(1, spec.parallel_layers)));
  std::vector<std::thread> pool;
  for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (std::thread& t : pool) t.join();

  std::vector<BuiltLayer> layers;
  for (size_t i = 0; i < n; ++i) {
    if (!(*results[i]).ok()) {
      return Annotate((*results[i]).status(), absl::StrCat("build layer ", i));
    }
    layers.push_back(*std::move(*results[i]));
  }
  return layers;
}

}  // namespace

remote::Descriptor BuiltImage::ManifestDescriptor() const {
  remote::Descriptor d;
  d.media_type = std::string(remote::kOciManifest);
  d.digest = manifest_digest;
  d.size = static_cast<int64_t>(manifest_json.size());
  d.platform = platform;
  return d;
}

absl::StatusOr<BuiltImage> BuildImage(const ImageSpec& spec, const std::string& work_dir) {
  if (spec.layers.empty()) return absl::InvalidArgumentError("image spec has no layers");
  SS_RETURN_IF_ERROR(MakeDirs(work_dir + "/blobs/sha256"));
  BuiltImage image;
  image.platform = spec.platform;
  if (image.platform.os.empty() || image.platform.architecture.empty()) {
    image.platform = remote::Platform::Host();
  }
  SS_ASSIGN_OR_RETURN(image.layers, BuildLayers(spec, work_dir));
  for (const BuiltLayer& layer : image.layers) image.layer_files.push_back(layer.path);

  image.config_json = ConfigJson(spec, image.platform, image.layers);
  image.config_digest = Sha256Of(image.config_json);
  SS_RETURN_IF_ERROR(WriteBlob(work_dir, image.config_digest, image.config_json));

  remote::Manifest& m = image.manifest;
  m.media_type = std::string(remote::kOciManifest);
  m.config.media_type = std::string(remote::kOciConfig);
  m.config.digest = image.config_digest;
  m.config.size = static_cast<int64_t>(image.config_json.size());
  for (const BuiltLayer& layer : image.layers) m.layers.push_back(layer.descriptor);
  m.annotations = spec.annotations;
  image.manifest_json = m.ToJson();
  image.manifest_digest = Sha256Of(image.manifest_json);
  SS_RETURN_IF_ERROR(WriteBlob(work_dir, image.manifest_digest, image.manifest_json));
  SS_RETURN_IF_ERROR(WriteLayoutIndex(work_dir, image.ManifestDescriptor()));
  log::Info("built image", {{"manifest", image.manifest_digest.str()},
                            {"platform", image.platform.String()},
                            {"layers", image.layers.size()}});
  return image;
}

absl::StatusOr<BuiltIndex> BuildIndex(std::vector<BuiltImage> images,
                                      const std::string& work_dir) {
  if (images.empty()) return absl::InvalidArgumentError("image index needs at least one image");
  BuiltIndex out;
  out.index.media_type = std::string(remote::kOciIndex);
  for (const BuiltImage& image : images) out.index.manifests.push_back(image.ManifestDescriptor());
  out.index_json = out.index.ToJson();
  out.index_digest = Sha256Of(out.index_json);
  out.images = std::move(images);
  SS_RETURN_IF_ERROR(MakeDirs(work_dir + "/blobs/sha256"));
  SS_RETURN_IF_ERROR(WriteBlob(work_dir, out.index_digest, out.index_json));
  remote::Descriptor top;
  top.media_type = std::string(remote::kOciIndex);
  top.digest = out.index_digest;
  top.size = static_cast<int64_t>(out.index_json.size());
  SS_RETURN_IF_ERROR(WriteLayoutIndex(work_dir, top));
  return out;
}

namespace {

// Blobs before the manifest: a registry may refuse a manifest whose blobs it lacks.
absl::Status PushImageBlobs(remote::RegistryClient& client, const BuiltImage& image,
                            const remote::Reference& repo) {
  for (size_t i = 0; i < image.layers.size(); ++i) {
    const BuiltLayer& layer = image.layers[i];
    SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(layer.path, O_RDONLY));
    SS_RETURN_IF_ERROR(Annotate(
        client.PushBlobFromFile(repo, layer.descriptor.digest, fd.get(), layer.descriptor.size),
        absl::StrCat("push layer ", i, " ", layer.descriptor.digest.Short())));
  }
  return Annotate(client.PushBlob(repo, image.config_digest, image.config_json),
                  absl::StrCat("push config ", image.config_digest.Short()));
}

absl::Status CheckDigest(const Digest& got, const Digest& want, std::string_view what) {
  if (got == want) return absl::OkStatus();
  return absl::DataLossError(absl::StrCat("push ", AV(what), ": registry reports digest ",
                                          got.str(), ", expected ", want.str()));
}

}  // namespace

absl::StatusOr<Digest> PushImage(remote::RegistryClient& client, const BuiltImage& image,
                                 const remote::Reference& ref) {
  SS_RETURN_IF_ERROR(PushImageBlobs(client, image, ref));
  SS_ASSIGN_OR_RETURN(Digest pushed,
                      client.PushManifest(ref, remote::kOciManifest, image.manifest_json));
  SS_RETURN_IF_ERROR(CheckDigest(pushed, image.manifest_digest, "manifest"));
  log::Info("pushed image", {{"ref", ref.String()}, {"manifest", pushed.str()}});
  return pushed;
}

absl::StatusOr<Digest> PushIndex(remote::RegistryClient& client, const BuiltIndex& index,
                                 const remote::Reference& ref) {
  for (const BuiltImage& image : index.images) {
    SS_RETURN_IF_ERROR(PushImageBlobs(client, image, ref));
    // Platform manifests go by digest: only the index gets the tag.
    remote::Reference by_digest = ref;
    by_digest.tag.clear();
    by_digest.digest = image.manifest_digest.str();
    SS_ASSIGN_OR_RETURN(Digest pushed,
                        client.PushManifest(by_digest, remote::kOciManifest, image.manifest_json));
    SS_RETURN_IF_ERROR(CheckDigest(pushed, image.manifest_digest, "platform manifest"));
  }
  SS_ASSIGN_OR_RETURN(Digest pushed, client.PushManifest(ref, remote::kOciIndex, index.index_json));
  SS_RETURN_IF_ERROR(CheckDigest(pushed, index.index_digest, "index"));
  log::Info("pushed index", {{"ref", ref.String()}, {"index", pushed.str()}});
  return pushed;
}

}  // namespace slipstream::testkit
