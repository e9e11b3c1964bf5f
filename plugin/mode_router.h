// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "plugin/snapshot_remote.h"

namespace slipstream::plugin {

// How a remote Prepare is served.
enum class PullMode {
  kParallel,    // the parallel pull engine (RemotePullProvider)
  kLazy,        // lazy FUSE layers (LazyPullProvider, which falls back to parallel)
  kContainerd,  // containerd fetches and applies the layer itself
};

// Parses "parallel", "lazy" or "containerd". InvalidArgument otherwise.
absl::StatusOr<PullMode> ParsePullMode(const std::string& text);

// The RemoteLayerProvider the snapshots service talks to: picks the provider of a Prepare's
// mode and hands the Prepare over unchanged. For now every Prepare gets the default mode
// (per-image choice comes later). A mode without a provider answers kNotHandled.
// Borrows the providers, which must outlive it. Immutable after construction: thread-safe.
class ModeRouter final : public RemoteLayerProvider {
 public:
  struct Providers {
    RemoteLayerProvider* parallel = nullptr;
    RemoteLayerProvider* lazy = nullptr;
  };
  ModeRouter(PullMode default_mode, Providers providers)
      : default_mode_(default_mode), providers_(providers) {}

  // Forwards to the chosen provider, which calls `done` exactly once.
  void Prepare(const RemotePrepareRequest& request, Done done) override;

  // The mode a Prepare gets.
  PullMode ModeFor(const RemotePrepareRequest& request) const;

 private:
  const PullMode default_mode_;
  const Providers providers_;
};

}  // namespace slipstream::plugin
