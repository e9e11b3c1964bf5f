// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "plugin/pull_engine.h"
#include "remote/chunk_cache.h"
#include "remote/platform.h"
#include "remote/reference.h"
#include "remote/registry_client.h"

namespace slipstream::plugin {

// The name of the JSON manifest PullImage writes last into its destination.
inline constexpr char kPullManifestName[] = "pull.json";

struct ImagePullOptions {
  std::string dest;             // created if missing; must not hold an earlier pull
  PullOptions pull;             // tuning, temp dir, callbacks (temp_dir default: dest)
  remote::ChunkCache* cache = nullptr;  // null = straight to the registry
  bool rootfs = false;          // also merge the layers into <dest>/rootfs
  // Look for the image's SOCI index and inflate the spans of indexed gzip layers on
  // `span_inflate_threads` threads (0 = one per core) instead of one stream per layer.
  // Ignored when pull.span_inflater is already set.
  bool use_soci_index = false;
  int span_inflate_threads = 0;
  // Called on the calling thread once the job runs (e.g. to start a progress display that
  // reads job.progress()); the job lives until PullImage returns.
  std::function<void(PullJob& job)> on_started;
  // Called on the calling thread once the job settled, just before it is destroyed (e.g.
  // to stop that display).
  std::function<void(PullJob& job)> on_finished;
};

struct ImagePullResult {
  remote::Reference ref;      // pinned to the manifest's digest
  Digest manifest_digest;
  std::vector<std::string> layer_dirs;  // absolute or as given: <dest>/<index>-<diffid hex12>
  std::vector<LayerResult> layers;
  int64_t compressed_bytes = 0;
  int64_t uncompressed_bytes = 0;
  absl::Duration elapsed;
};

// `slipstream pull` as a library call: resolves `ref` for `platform`, pulls every layer in
// parallel into <dest>/<index>-<first 12 hex of its diff_id> (index from 0 = base layer,
// so names stay unique even when two layers share a diff_id), optionally merges them into
// <dest>/rootfs, and finally writes <dest>/pull.json (image, manifest digest, and per layer
// digest, diff_id, media type, sizes, entries and dir). pull.json is the completion marker:
// it exists only when everything succeeded. On failure the layer directories this call
// created are removed again, and the rootfs too, so a failed pull leaves no partial results.
//
// Errors: the registry's (NotFound, Unauthenticated, ...), DataLoss for corrupt blobs or
// digest mismatches, InvalidArgument for a config whose diff_ids do not match the layers,
// AlreadyExists when `dest` already holds pull.json or a layer directory.
// Thread-safe as far as `client` and `cache` are (they are).
absl::StatusOr<ImagePullResult> PullImage(remote::RegistryClient& client,
                                          const remote::Reference& ref,
                                          const remote::Platform& platform,
                                          const ImagePullOptions& options);

// The per-layer directory name PullImage uses: "<index>-<diff_id hex, 12 chars>".
std::string LayerDirName(size_t index, const Digest& diff_id);

}  // namespace slipstream::plugin
