// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cmd/daemon/config.h"
#include "cmd/daemon/metrics_endpoint.h"
#include "cmd/daemon/status_service.h"
#include "fuse/durable_mount.h"
#include "fuse/layer_fs.h"
#include "plugin/cri_image_proxy.h"
#include "plugin/lazy_pull_provider.h"
#include "plugin/mode_router.h"
#include "plugin/mode_selector.h"
#include "plugin/remote_pull_provider.h"
#include "plugin/runtime_credentials.h"
#include "plugin/service_snapshots.h"
#include "plugin/snapshot_overlay.h"
#include "plugin/snapshot_remote.h"
#include "remote/chunk_cache.h"

namespace slipstream::daemon {

// A running slipstreamd: the snapshotter on `config.root` served over gRPC on the unix socket
// `config.address`. Owns the snapshotter, the remote-layer providers behind CRI-labelled
// Prepares (the parallel pull engine; with default_mode = "lazy" also the lazy provider, its
// LayerFs and the FUSE server mounted at <root>/fuse or lazy.mount_dir (its
// connection kept by slipstream-fuse-holder across restarts, see fuse/durable_mount.h); none with
// default_mode = "containerd"), lazy mode's chunk cache of layer bytes (<root>/cache, bounded by
// cache.size), the mode router choosing between them, the service and the
// gRPC server; with cri.enable_image_service also the CRI ImageService proxy on the same
// socket, which records pods' pull modes and kubelet's registry credentials (first in the
// registry client's credential chain); with metrics.address the Prometheus endpoint.
// Destroying it shuts everything down.
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
  // socket, then unmounts the lazy FUSE filesystem (or, with lazy.keep_mounts_on_exit and the fd
  // holder, leaves it mounted for the next slipstreamd). Idempotent.
  void Shutdown();

  plugin::OverlaySnapshotter& snapshotter() { return *snapshotter_; }
  const DaemonConfig& config() const { return config_; }
  // Lazy mode's filesystem; null in other modes.
  fuse::LayerFs* layer_fs() { return layer_fs_.get(); }

 private:
  explicit Daemon(DaemonConfig config) : config_(std::move(config)) {}

  DaemonConfig config_;
  // Lazy mode: mounts the LayerFs (detaching a stale mount first), creates the lazy provider
  // and restores the layers of existing lazy snapshots.
  absl::Status StartLazy();

  // Destroyed in reverse order: the server before the providers, they before the FUSE server
  // and the LayerFs, all of them before the client and the snapshotter.
  std::unique_ptr<plugin::OverlaySnapshotter> snapshotter_;
  std::unique_ptr<plugin::ModeSelector> modes_;  // default_mode, [[mode_rules]], pod choices
  // Credentials from CRI pulls; shared with client_'s credential chain.
  std::shared_ptr<plugin::RuntimeCredentials> runtime_credentials_;
  std::unique_ptr<remote::RegistryClient> client_;
  std::unique_ptr<remote::ChunkCache> chunk_cache_;  // lazy mode: <root>/cache, cache.size
  std::unique_ptr<fuse::LayerFs> layer_fs_;
  // Lazy mode's FUSE mount, kept across restarts by the fd holder (lazy.keep_mounts_on_exit).
  std::unique_ptr<fuse::DurableMount> fuse_mount_;
  std::unique_ptr<plugin::RemotePullProvider> parallel_;
  std::unique_ptr<plugin::LazyPullProvider> lazy_;
  std::unique_ptr<plugin::ModeRouter> remote_;
  std::unique_ptr<plugin::SnapshotsService> service_;
  std::unique_ptr<plugin::CriImageProxy> cri_proxy_;  // cri.enable_image_service
  std::unique_ptr<StatusService> status_;  // slipstream.v1.Status (`slipstream status`)
  std::unique_ptr<MetricsEndpoint> metrics_;  // GET /metrics, with metrics.address
  std::unique_ptr<grpc::Server> server_;
};

// slipstreamd's main loop: blocks SIGTERM and SIGINT (before any thread starts, so only this
// thread receives them), starts the daemon, waits for one of them and shuts down cleanly.
// Returns the error that prevented startup; OK after a clean shutdown.
absl::Status RunUntilSignal(const DaemonConfig& config);

}  // namespace slipstream::daemon
