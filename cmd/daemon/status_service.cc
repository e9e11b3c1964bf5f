// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon/status_service.h"

#include <map>

namespace slipstream::daemon {

slipstream::v1::GetStatusResponse BuildStatus(const std::string& default_mode,
                                              const plugin::RemotePullProvider* parallel,
                                              const fuse::LayerFs* layer_fs,
                                              const plugin::LazyPullProvider* lazy,
                                              const std::string& fuse_mount) {
  slipstream::v1::GetStatusResponse r;
  r.set_default_mode(default_mode);
  if (parallel != nullptr) {
    r.set_parallel_pulls_started(parallel->jobs_started());
    for (const plugin::RemotePullProvider::ImageState& s : parallel->Images()) {
      slipstream::v1::ParallelImage* i = r.add_parallel_images();
      i->set_image_ref(s.image_ref);
      i->set_manifest(s.manifest);
      i->set_resolved(s.resolved);
      i->set_layers(s.layers);
      i->set_pulled(s.pulled);
      i->set_done(s.done);
      i->set_failed(s.failed);
    }
  }
  if (layer_fs != nullptr) {
    r.set_fuse_mount(fuse_mount);
    for (const fuse::LayerStatus& s : layer_fs->AllStatus()) {
      slipstream::v1::LazyLayer* l = r.add_lazy_layers();
      l->set_name(s.name);
      l->set_layer_id(s.layer_id);
      l->set_blob(s.blob.str());
      l->set_spans_total(s.progress.spans_total);
      l->set_spans_fetched(s.progress.spans_fetched);
      l->set_compressed_bytes_total(s.progress.compressed_bytes_total);
      l->set_compressed_bytes_fetched(s.progress.compressed_bytes_fetched);
      l->set_cache_hits(s.counters.cache_hits);
      l->set_read_errors(s.counters.read_errors);
      l->set_open_files(s.open_files);
    }
    if (lazy != nullptr) {
      // Every layer the provider tracks: its state, and the local ones the LayerFs no longer
      // serves.
      std::map<std::string, slipstream::v1::LazyLayer*> by_name;
      for (slipstream::v1::LazyLayer& l : *r.mutable_lazy_layers()) by_name[l.name()] = &l;
      for (const plugin::LazyLayerInfo& info : lazy->Layers()) {
        slipstream::v1::LazyLayer* l = by_name[info.name];
        if (l == nullptr) {
          l = r.add_lazy_layers();
          l->set_name(info.name);
          l->set_layer_id(info.layer_id);
          l->set_blob(info.blob);
        }
        l->set_state(info.state);
        l->set_local_dir(info.local_dir);
        l->set_error(info.error);
      }
    }
  }
  return r;
}

grpc::ServerUnaryReactor* StatusService::Get(grpc::CallbackServerContext* context,
                                             const slipstream::v1::GetStatusRequest*,
                                             slipstream::v1::GetStatusResponse* response) {
  *response = snapshot_();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace slipstream::daemon
