// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon/daemon.h"

#include "cmd/daemon/status_service.h"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "plugin/remote_pull_provider.h"
#include "plugin/service_server.h"
#include "remote/credentials.h"
#include "remote/registry_client.h"

namespace slipstream::daemon {
namespace {

absl::StatusOr<std::unique_ptr<remote::RegistryClient>> MakeClient(const DaemonConfig& config) {
  remote::RegistryClientOptions client_opts;
  client_opts.hosts_dir = config.hosts_dir;
  client_opts.credentials = std::make_shared<remote::DockerConfigCredentials>(
      config.docker_config.empty() ? remote::DockerConfigCredentials::DefaultPath()
                                   : config.docker_config);
  auto client = remote::RegistryClient::Create(std::move(client_opts));
  if (!client.ok()) return Annotate(client.status(), "create registry client");
  return client;
}

plugin::RemotePullOptions ParallelOptions(const DaemonConfig& config) {
  plugin::RemotePullOptions opts;
  opts.on_failure = config.engine.on_failure == "fallback" ? plugin::RemoteFailurePolicy::kFallback
                                                           : plugin::RemoteFailurePolicy::kFail;
  opts.tuning.chunk_size = config.engine.chunk_size;
  opts.tuning.requests = config.engine.max_connections;
  opts.tuning.unpackers = config.engine.unpack_workers;
  opts.use_soci_index = config.engine.use_soci_index;
  return opts;
}

}  // namespace

absl::Status Daemon::StartLazy() {
  const std::string mount_dir =
      config_.lazy_mount_dir.empty() ? absl::StrCat(config_.root, "/fuse") : config_.lazy_mount_dir;
  // A crashed run leaves its FUSE mount behind (ENOTCONN on every access): detach it first.
  if (::umount2(mount_dir.c_str(), MNT_DETACH) == 0) {
    log::Warn("stale FUSE mount detached", {{"mountpoint", mount_dir}});
  }
  SS_RETURN_IF_ERROR(MakeDirs(mount_dir));
  // Layer bytes read lazily stay on disk, so a restart (or another image sharing the layer)
  // does not fetch them again.
  auto cache = remote::ChunkCache::Open(
      {.dir = absl::StrCat(config_.root, "/cache"), .max_bytes = config_.cache_size});
  if (!cache.ok()) return Annotate(cache.status(), "open chunk cache");
  chunk_cache_ = *std::move(cache);
  layer_fs_ = std::make_unique<fuse::LayerFs>();
  auto server = fuse::FuseServer::Mount(layer_fs_.get(), mount_dir);
  if (!server.ok()) return Annotate(server.status(), absl::StrCat("mount FUSE at ", mount_dir));
  fuse_server_ = *std::move(server);
  plugin::LazyPullOptions opts;
  opts.mount_dir = mount_dir;
  opts.chunk_cache = chunk_cache_.get();
  lazy_ = std::make_unique<plugin::LazyPullProvider>(snapshotter_.get(), client_.get(),
                                                     layer_fs_.get(), parallel_.get(), opts);
  absl::StatusOr<int> restored = lazy_->Restore();
  if (!restored.ok()) {
    // Those snapshots read as empty until removed; the daemon still serves new pulls.
    log::Warn("lazy layers not restored", {{"error", restored.status().ToString()}});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonConfig& config) {
  auto d = std::unique_ptr<Daemon>(new Daemon(config));
  auto sn = plugin::OverlaySnapshotter::Open(config.root);
  if (!sn.ok()) return Annotate(sn.status(), absl::StrCat("open snapshotter root ", config.root));
  d->snapshotter_ = std::move(*sn);
  SS_ASSIGN_OR_RETURN(plugin::PullMode mode, plugin::ParsePullMode(config.default_mode));
  // CRI pulls go through the parallel engine (directly or behind lazy mode) unless the config
  // leaves them to containerd.
  if (mode != plugin::PullMode::kContainerd) {
    SS_ASSIGN_OR_RETURN(d->client_, MakeClient(config));
    d->parallel_ = std::make_unique<plugin::RemotePullProvider>(
        d->snapshotter_.get(), d->client_.get(), ParallelOptions(config));
  }
  if (mode == plugin::PullMode::kLazy) SS_RETURN_IF_ERROR(d->StartLazy());
  d->remote_ = std::make_unique<plugin::ModeRouter>(
      mode, plugin::ModeRouter::Providers{.parallel = d->parallel_.get(), .lazy = d->lazy_.get()});
  d->service_ = std::make_unique<plugin::SnapshotsService>(d->snapshotter_.get(), d->remote_.get());
  Daemon* raw = d.get();
  d->status_ = std::make_unique<StatusService>([raw] {
    return BuildStatus(raw->config_.default_mode, raw->parallel_.get(), raw->layer_fs_.get(),
                       raw->fuse_server_ != nullptr ? raw->fuse_server_->mountpoint() : "");
  });
  auto server = plugin::StartUnixServer(config.address, {d->service_.get(), d->status_.get()});
  if (!server.ok()) return Annotate(server.status(), "start grpc server");
  d->server_ = std::move(*server);
  log::Info("slipstreamd serving", {{"address", config.address},
                                    {"root", config.root},
                                    {"default_mode", config.default_mode}});
  return d;
}

Daemon::~Daemon() { Shutdown(); }

void Daemon::Shutdown() {
  if (server_ == nullptr) return;
  // Prepares waiting for a download are answered first, so the server's drain does not wait.
  if (lazy_ != nullptr) lazy_->Shutdown();
  if (parallel_ != nullptr) parallel_->Shutdown();
  // In-flight local operations take milliseconds; the deadline only bounds a stuck client.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_.reset();
  ::unlink(config_.address.c_str());
  // After the gRPC server: no Prepare can add a layer any more.
  if (fuse_server_ != nullptr) fuse_server_->Stop();
  log::Info("slipstreamd stopped", {{"address", config_.address}});
}

absl::Status RunUntilSignal(const DaemonConfig& config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // Blocked here, inherited by every gRPC thread, so sigwait below is the only receiver.
  if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
    return absl::InternalError("pthread_sigmask failed");
  }
  SS_ASSIGN_OR_RETURN(auto daemon, Daemon::Start(config));
  int sig = 0;
  sigwait(&signals, &sig);
  log::Info("shutting down", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
  daemon->Shutdown();
  return absl::OkStatus();
}

}  // namespace slipstream::daemon
