// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon/daemon.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "plugin/remote_pull_provider.h"
#include "plugin/service_server.h"
#include "remote/credentials.h"
#include "remote/registry_client.h"

namespace slipstream::daemon {
namespace {

// CRI pulls go through the parallel engine unless the config leaves them to containerd.
absl::StatusOr<std::unique_ptr<plugin::RemoteLayerProvider>> MakeRemoteProvider(
    const DaemonConfig& config, plugin::OverlaySnapshotter* snapshotter) {
  if (config.default_mode == "containerd") return std::make_unique<plugin::NoRemoteLayers>();
  remote::RegistryClientOptions client_opts;
  client_opts.hosts_dir = config.hosts_dir;
  client_opts.credentials = std::make_shared<remote::DockerConfigCredentials>(
      config.docker_config.empty() ? remote::DockerConfigCredentials::DefaultPath()
                                   : config.docker_config);
  auto client = remote::RegistryClient::Create(std::move(client_opts));
  if (!client.ok()) return Annotate(client.status(), "create registry client");
  plugin::RemotePullOptions opts;
  opts.on_failure = config.engine.on_failure == "fallback" ? plugin::RemoteFailurePolicy::kFallback
                                                           : plugin::RemoteFailurePolicy::kFail;
  opts.tuning.chunk_size = config.engine.chunk_size;
  opts.tuning.requests = config.engine.max_connections;
  opts.tuning.unpackers = config.engine.unpack_workers;
  opts.use_soci_index = config.engine.use_soci_index;
  return std::make_unique<plugin::RemotePullProvider>(snapshotter, *std::move(client), opts);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const DaemonConfig& config) {
  auto d = std::unique_ptr<Daemon>(new Daemon(config));
  auto sn = plugin::OverlaySnapshotter::Open(config.root);
  if (!sn.ok()) return Annotate(sn.status(), absl::StrCat("open snapshotter root ", config.root));
  d->snapshotter_ = std::move(*sn);
  SS_ASSIGN_OR_RETURN(d->remote_, MakeRemoteProvider(config, d->snapshotter_.get()));
  d->service_ = std::make_unique<plugin::SnapshotsService>(d->snapshotter_.get(), d->remote_.get());
  auto server = plugin::StartUnixServer(config.address, {d->service_.get()});
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
  if (auto* pull = dynamic_cast<plugin::RemotePullProvider*>(remote_.get())) pull->Shutdown();
  // In-flight local operations take milliseconds; the deadline only bounds a stuck client.
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server_.reset();
  ::unlink(config_.address.c_str());
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
