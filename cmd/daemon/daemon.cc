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
#include "plugin/runtime_credentials.h"
#include "plugin/service_server.h"
#include "remote/credentials.h"
#include "remote/registry_client.h"

namespace slipstream::daemon {
namespace {

// Credentials kubelet gave in CRI pulls come first, then the docker config on disk.
absl::StatusOr<std::unique_ptr<remote::RegistryClient>> MakeClient(
    const DaemonConfig& config, std::shared_ptr<plugin::RuntimeCredentials> runtime_credentials) {
  remote::RegistryClientOptions client_opts;
  client_opts.hosts_dir = config.hosts_dir;
  client_opts.retry.max_attempts = config.registry_max_attempts;
  client_opts.retry.max_total = config.registry_retry_max_total;
  client_opts.stall_timeout = config.registry_stall_timeout;
  std::vector<std::unique_ptr<remote::CredentialStore>> chain;
  chain.push_back(std::make_unique<plugin::SharedCredentials>(std::move(runtime_credentials)));
  chain.push_back(std::make_unique<remote::DockerConfigCredentials>(
      config.docker_config.empty() ? remote::DockerConfigCredentials::DefaultPath()
                                   : config.docker_config));
  client_opts.credentials = std::make_shared<remote::ChainedCredentials>(std::move(chain));
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

// The mode selector of the config: default_mode and [[mode_rules]] (already validated).
absl::StatusOr<std::unique_ptr<plugin::ModeSelector>> MakeModeSelector(const DaemonConfig& config) {
  SS_ASSIGN_OR_RETURN(plugin::PullMode mode, plugin::ParsePullMode(config.default_mode));
  std::vector<plugin::ModeRule> rules;
  for (const ModeRuleConfig& r : config.mode_rules) {
    SS_ASSIGN_OR_RETURN(plugin::PullMode rule_mode, plugin::ParsePullMode(r.mode));
    rules.push_back({.registry = r.registry, .repository = r.repository, .mode = rule_mode});
  }
  return std::make_unique<plugin::ModeSelector>(mode, std::move(rules));
}

// Whether some image may get `mode`: the default, a rule, or (with the image service) a pod.
bool ModeReachable(const DaemonConfig& config, const std::string& mode) {
  if (config.default_mode == mode || config.cri.enable_image_service) return true;
  for (const ModeRuleConfig& r : config.mode_rules) {
    if (r.mode == mode) return true;
  }
  return false;
}

}  // namespace

absl::Status Daemon::StartLazy() {
  const std::string mount_dir =
      config_.lazy_mount_dir.empty() ? absl::StrCat(config_.root, "/fuse") : config_.lazy_mount_dir;
  // Layer bytes read lazily stay on disk, so a restart (or another image sharing the layer)
  // does not fetch them again.
  auto cache = remote::ChunkCache::Open(
      {.dir = absl::StrCat(config_.root, "/cache"), .max_bytes = config_.cache_size});
  if (!cache.ok()) return Annotate(cache.status(), "open chunk cache");
  chunk_cache_ = *std::move(cache);
  fuse::LayerFsOptions fs_options;
  fs_options.readahead_spans = config_.lazy_read_ahead_spans;
  fs_options.readahead_threads = config_.lazy_read_ahead_threads;
  // One kernel read-ahead window arrives as several reads at once (1 MiB each at most).
  fs_options.sequential_window =
      std::max(fs_options.sequential_window, 2 * config_.lazy_kernel_read_ahead);
  layer_fs_ = std::make_unique<fuse::LayerFs>(fs_options);
  plugin::LazyPullOptions opts;
  opts.mount_dir = mount_dir;
  opts.chunk_cache = chunk_cache_.get();
  opts.background_threads = config_.lazy_background_threads;
  lazy_ = std::make_unique<plugin::LazyPullProvider>(snapshotter_.get(), client_.get(),
                                                     layer_fs_.get(), parallel_.get(), opts);
  absl::StatusOr<int> restored = lazy_->Restore();
  if (!restored.ok()) {
    // Those snapshots read as empty until removed; the daemon still serves new pulls.
    log::Warn("lazy layers not restored", {{"error", restored.status().ToString()}});
  }
  // After Restore: a connection kept across a restart is served at once, and its requests
  // name the restored layers' inodes. The fd holder keeps it alive while no daemon runs.
  fuse::DurableMountOptions mount;
  mount.mountpoint = mount_dir;
  mount.holder = {.socket_path = config_.lazy_holder_socket.empty()
                                     ? absl::StrCat(config_.root, "/fuse-holder.sock")
                                     : config_.lazy_holder_socket,
                  .log_path = absl::StrCat(config_.root, "/fuse-holder.log")};
  mount.keep_mount_on_exit = config_.lazy_keep_mounts_on_exit;
  mount.kernel_read_ahead = config_.lazy_kernel_read_ahead;
  SS_ASSIGN_OR_RETURN(fuse_mount_, fuse::DurableMount::Open(layer_fs_.get(), std::move(mount)));
  // Restored layers' FUSE copies may go only when no mount from before the restart remains.
  lazy_->OnMounted(fuse_mount_->resumed());
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonConfig& config) {
  auto d = std::unique_ptr<Daemon>(new Daemon(config));
  auto sn = plugin::OverlaySnapshotter::Open(config.root);
  if (!sn.ok()) return Annotate(sn.status(), absl::StrCat("open snapshotter root ", config.root));
  d->snapshotter_ = std::move(*sn);
  SS_ASSIGN_OR_RETURN(d->modes_, MakeModeSelector(config));
  d->runtime_credentials_ = std::make_shared<plugin::RuntimeCredentials>(config.cri.credential_ttl);
  // CRI pulls go through the parallel engine (directly or behind lazy mode) unless every
  // image is left to containerd.
  const bool lazy = ModeReachable(config, "lazy");
  if (lazy || ModeReachable(config, "parallel")) {
    SS_ASSIGN_OR_RETURN(d->client_, MakeClient(config, d->runtime_credentials_));
    d->parallel_ = std::make_unique<plugin::RemotePullProvider>(
        d->snapshotter_.get(), d->client_.get(), ParallelOptions(config));
  }
  if (lazy) SS_RETURN_IF_ERROR(d->StartLazy());
  d->remote_ = std::make_unique<plugin::ModeRouter>(
      d->modes_.get(),
      plugin::ModeRouter::Providers{.parallel = d->parallel_.get(), .lazy = d->lazy_.get()});
  d->service_ = std::make_unique<plugin::SnapshotsService>(d->snapshotter_.get(), d->remote_.get());
  std::vector<grpc::Service*> services = {d->service_.get()};
  if (config.cri.enable_image_service) {
    auto upstream = plugin::CriImageProxy::Dial(config.cri.containerd_address);
    if (!upstream.ok()) return Annotate(upstream.status(), "cri.containerd_address");
    d->cri_proxy_ = std::make_unique<plugin::CriImageProxy>(
        *std::move(upstream), config.cri.containerd_address, d->modes_.get(),
        d->runtime_credentials_.get());
    services.push_back(d->cri_proxy_.get());
  }
  if (!config.metrics_address.empty()) {
    SS_ASSIGN_OR_RETURN(d->metrics_,
                        MetricsEndpoint::Start(config.metrics_address, d->layer_fs_.get(),
                                               d->lazy_.get()));
  }
  Daemon* raw = d.get();
  d->status_ = std::make_unique<StatusService>([raw] {
    slipstream::v1::GetStatusResponse r =
        BuildStatus(raw->config_.default_mode, raw->parallel_.get(), raw->layer_fs_.get(),
                    raw->lazy_.get(),
                    raw->fuse_mount_ != nullptr ? raw->fuse_mount_->mountpoint() : "");
    if (raw->metrics_ != nullptr) r.set_metrics_address(raw->metrics_->address());
    return r;
  });
  services.push_back(d->status_.get());
  auto server = plugin::StartUnixServer(config.address, services);
  if (!server.ok()) return Annotate(server.status(), "start grpc server");
  d->server_ = std::move(*server);
  log::Info("slipstreamd serving", {{"address", config.address},
                                    {"root", config.root},
                                    {"default_mode", config.default_mode},
                                    {"metrics", d->metrics_ != nullptr ? d->metrics_->address()
                                                                       : "off"},
                                    {"mode_rules", config.mode_rules.size()},
                                    {"cri_image_service", config.cri.enable_image_service
                                                              ? config.cri.containerd_address
                                                              : "off"}});
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
  metrics_.reset();  // its gauges read the LayerFs
  // After the gRPC server: no Prepare can add a layer any more.
  // Unmounts, or (lazy.keep_mounts_on_exit) leaves the mount to the fd holder.
  if (fuse_mount_ != nullptr) fuse_mount_->Close();
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
