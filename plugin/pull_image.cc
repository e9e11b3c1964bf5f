// SPDX-License-Identifier: Apache-2.0
#include "plugin/pull_image.h"

#include <sys/stat.h>

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"
#include "nlohmann/json.hpp"
#include "plugin/pull_rootfs.h"
#include "plugin/pull_source.h"
#include "plugin/ztoc_span_inflater.h"

namespace slipstream::plugin {
namespace {

std::string ManifestJson(const ImagePullResult& r, const remote::RegistryClient::ResolvedImage& img,
                         bool rootfs) {
  nlohmann::json j;
  j["image"] = r.ref.String();
  j["manifest_digest"] = r.manifest_digest.str();
  j["config_digest"] = img.manifest.config.digest.str();
  j["elapsed_seconds"] = absl::ToDoubleSeconds(r.elapsed);
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < r.layers.size(); ++i) {
    const remote::Descriptor& d = img.manifest.layers[i];
    const unpack::LayerUnpackResult& u = r.layers[i].unpack;
    layers.push_back({{"index", i},
                      {"dir", LayerDirName(i, img.config.diff_ids[i])},
                      {"digest", d.digest.str()},
                      {"diff_id", u.diff_id.str()},
                      {"media_type", d.media_type},
                      {"size", d.size},
                      {"uncompressed_size", u.uncompressed_bytes},
                      {"entries", u.entries}});
  }
  j["layers"] = std::move(layers);
  if (rootfs) j["rootfs"] = "rootfs";
  return j.dump(2) + "\n";
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace

std::string LayerDirName(size_t index, const Digest& diff_id) {
  return absl::StrCat(index, "-", AV(diff_id.hex().substr(0, 12)));
}

absl::StatusOr<ImagePullResult> PullImage(remote::RegistryClient& client,
                                          const remote::Reference& ref,
                                          const remote::Platform& platform,
                                          const ImagePullOptions& options) {
  if (options.dest.empty()) return absl::InvalidArgumentError("pull: empty destination");
  const absl::Time start = absl::Now();
  SS_ASSIGN_OR_RETURN(remote::RegistryClient::ResolvedImage img,
                      client.ResolveImage(ref, platform));
  const auto& layers = img.manifest.layers;
  if (img.config.diff_ids.size() != layers.size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "image ", ref.String(), ": config lists ", img.config.diff_ids.size(),
        " diff_ids for ", layers.size(), " layers"));
  }
  SS_RETURN_IF_ERROR(MakeDirs(options.dest));
  const std::string manifest_path = absl::StrCat(options.dest, "/", kPullManifestName);
  if (Exists(manifest_path)) {
    return absl::AlreadyExistsError(
        absl::StrCat(options.dest, " already holds a pull (", kPullManifestName, ")"));
  }
  const std::string rootfs = absl::StrCat(options.dest, "/rootfs");
  if (options.rootfs && Exists(rootfs)) {
    return absl::AlreadyExistsError(absl::StrCat(rootfs, " already exists"));
  }

  ImagePullResult result;
  result.ref = ref.WithDigest(img.manifest_digest.str());
  result.manifest_digest = img.manifest_digest;
  std::vector<LayerRequest> requests;
  for (size_t i = 0; i < layers.size(); ++i) {
    result.layer_dirs.push_back(
        absl::StrCat(options.dest, "/", LayerDirName(i, img.config.diff_ids[i])));
    requests.push_back({layers[i], img.config.diff_ids[i], result.layer_dirs.back()});
  }

  std::unique_ptr<RangeSource> source;
  if (options.cache != nullptr) {
    source = std::make_unique<CachedRangeSource>(&client, ref, options.cache);
  } else {
    source = std::make_unique<RegistryRangeSource>(&client, ref);
  }
  PullOptions popts = options.pull;
  if (popts.temp_dir.empty()) popts.temp_dir = options.dest;
  std::unique_ptr<ZtocSpanInflater> inflater;
  if (options.use_soci_index && popts.span_inflater == nullptr) {
    inflater = LoadSpanInflater(client, result.ref, platform,
                                {.threads = options.span_inflate_threads,
                                 .unpack = popts.unpack});
    popts.span_inflater = inflater.get();
  }
  PullEngine engine(source.get());
  SS_ASSIGN_OR_RETURN(std::unique_ptr<PullJob> job, engine.Start(std::move(requests), popts));
  log::Info("pull started", {{"image", ref.String()},
                             {"layers", layers.size()},
                             {"chunk_size", job->plan().chunk_size},
                             {"requests", job->plan().requests},
                             {"unpackers", job->plan().unpackers}});
  if (options.on_started) options.on_started(*job);
  absl::Status st = job->Wait();

  if (st.ok()) {
    for (size_t i = 0; i < layers.size(); ++i) {
      absl::StatusOr<LayerResult> r = job->WaitLayer(i);
      if (!r.ok()) {
        st = r.status();
        break;
      }
      result.compressed_bytes += r->unpack.compressed_bytes;
      result.uncompressed_bytes += r->unpack.uncompressed_bytes;
      result.layers.push_back(*std::move(r));
    }
  }
  if (options.on_finished) options.on_finished(*job);
  job.reset();
  if (st.ok() && options.rootfs) {
    st = MergeLayers(result.layer_dirs, rootfs);
  }
  result.elapsed = absl::Now() - start;
  if (st.ok()) st = WriteFileAtomic(manifest_path, ManifestJson(result, img, options.rootfs));
  if (!st.ok()) {
    // All or nothing for an image pull: verified layers of a failed pull are not kept, so
    // the destination never looks more complete than it is.
    for (const std::string& dir : result.layer_dirs) (void)RemoveAll(dir);
    if (options.rootfs) (void)RemoveAll(rootfs);
    return Annotate(st, absl::StrCat("pull ", ref.String()));
  }
  return result;
}

}  // namespace slipstream::plugin
