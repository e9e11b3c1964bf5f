// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <string>

#include "fuse/layer_fs.h"
#include "plugin/lazy_pull_provider.h"
#include "plugin/remote_pull_provider.h"
#include "slipstream/v1/status.grpc.pb.h"

namespace slipstream::daemon {

// What slipstreamd reports about itself: the mode, the parallel pulls started, and every lazy
// layer with its fetch progress, read counters and local-disk state. `parallel`, `layer_fs`
// and `lazy` may be null (the modes without them). Reads atomics and takes the LayerFs and
// provider locks briefly; no I/O.
slipstream::v1::GetStatusResponse BuildStatus(const std::string& default_mode,
                                              const plugin::RemotePullProvider* parallel,
                                              const fuse::LayerFs* layer_fs,
                                              const plugin::LazyPullProvider* lazy,
                                              const std::string& fuse_mount);

// slipstream.v1.Status on slipstreamd's socket (what `slipstream status` calls). Answers from
// `snapshot`, a function the daemon provides, on gRPC's callback thread (it must not block).
// Owned by the daemon; outlives the gRPC server.
class StatusService final : public slipstream::v1::Status::CallbackService {
 public:
  using Snapshot = std::function<slipstream::v1::GetStatusResponse()>;
  explicit StatusService(Snapshot snapshot) : snapshot_(std::move(snapshot)) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* context,
                                const slipstream::v1::GetStatusRequest* request,
                                slipstream::v1::GetStatusResponse* response) override;

 private:
  Snapshot snapshot_;
};

}  // namespace slipstream::daemon
