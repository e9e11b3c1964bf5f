// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cmd/daemon/config.h"
#include "plugin/service_snapshots.h"
#include "plugin/snapshot_overlay.h"
#include "plugin/snapshot_remote.h"

namespace slipstream::daemon {

// A running slipstreamd: the snapshotter on `config.root` served over gRPC on the unix socket
// `config.address`. Owns the snapshotter, the remote-layer provider (the parallel pull engine
// behind CRI-labelled Prepares, or none with default_mode = "containerd"), the service and
// the gRPC server; destroying it shuts everything down.
// Start/Shutdown from one thread; the served RPCs run on gRPC's threads.
class Daemon {
 public:
  // Opens the store (cleaning leftovers of a crash) and starts serving. Errors name the root or
  // socket that failed.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const DaemonConfig& config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Stops accepting calls, lets in-flight calls finish (bounded by a few seconds), removes the
  // socket. Idempotent.
  void Shutdown();

  plugin::OverlaySnapshotter& snapshotter() { return *snapshotter_; }
  const DaemonConfig& config() const { return config_; }

 private:
  explicit Daemon(DaemonConfig config) : config_(std::move(config)) {}

  DaemonConfig config_;
  std::unique_ptr<plugin::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<plugin::RemoteLayerProvider> remote_;
  std::unique_ptr<plugin::SnapshotsService> service_;
  std::unique_ptr<grpc::Server> server_;
};

// slipstreamd's main loop: blocks SIGTERM and SIGINT (before any thread starts, so only this
// thread receives them), starts the daemon, waits for one of them and shuts down cleanly.
// Returns the error that prevented startup; OK after a clean shutdown.
absl::Status RunUntilSignal(const DaemonConfig& config);

}  // namespace slipstream::daemon
