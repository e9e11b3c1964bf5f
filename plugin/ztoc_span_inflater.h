// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "index/ztoc.h"
#include "plugin/pull_engine.h"
#include "remote/reference.h"
#include "remote/platform.h"
#include "remote/registry_client.h"

namespace slipstream::plugin {

struct ZtocSpanInflaterOptions {
  int threads = 0;          // inflate threads per layer; 0 = one per core
  int max_spans_ahead = 0;  // decoded spans waiting for the untar at most; 0 = 2 * threads + 2
  unpack::LayerUnpackOptions unpack;  // for the tar side (untar thread, live counters unset)
};

// The parallel pull engine's SpanInflater for gzip layers that have a zTOC (SOCI index):
// `threads` workers claim spans in order, wait for each span's compressed bytes to arrive,
// verify its digest and inflate it from its checkpoint (index::DecodeSpan); the calling
// thread puts the decoded spans back in order and feeds the tar stream to a LayerUnpacker
// (which untars on a thread of its own). It also hashes the compressed blob in order and
// checks it against the layer digest before anything is moved into place, and the
// LayerUnpacker checks the diff_id. Memory: at most `max_spans_ahead` decoded spans.
//
// Owned by whoever starts the pull (PullOptions::span_inflater borrows it). Add() before the
// pull starts; CanInflate/Unpack are thread-safe.
class ZtocSpanInflater : public SpanInflater {
 public:
  explicit ZtocSpanInflater(ZtocSpanInflaterOptions options = {});

  // Registers the zTOC of the layer blob `blob`.
  void Add(const Digest& blob, std::shared_ptr<const index::Ztoc> ztoc);
  size_t size() const;

  // True for a gzip layer with a registered zTOC whose compressed size matches the blob and
  // which has spans with checkpoints.
  bool CanInflate(const LayerRequest& layer) override;
  // See SpanInflater. DataLoss when a span or the whole blob does not match its digest, or
  // the spans do not inflate to the zTOC's sizes; the tar errors of LayerUnpacker.
  absl::StatusOr<unpack::LayerUnpackResult> Unpack(const LayerRequest& layer,
                                                   LayerBlobView& blob, LayerProgress& progress,
                                                   const std::atomic<bool>& cancelled) override;

 private:
  std::shared_ptr<const index::Ztoc> Find(const Digest& blob) const;

  const ZtocSpanInflaterOptions options_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const index::Ztoc>> ztocs_
      ABSL_GUARDED_BY(mu_);
};

// Looks for the SOCI index of `image` (explicit → v2 annotation → v1 referrers) and loads
// the zTOCs of its layers into a ZtocSpanInflater. Null when the image has no index (or it
// cannot be read: the pull then inflates sequentially, so problems are logged, not returned).
std::unique_ptr<ZtocSpanInflater> LoadSpanInflater(remote::RegistryClient& client,
                                                   const remote::Reference& image,
                                                   const remote::Platform& platform,
                                                   ZtocSpanInflaterOptions options = {});

}  // namespace slipstream::plugin
