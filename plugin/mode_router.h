// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>

#include "plugin/mode_selector.h"
#include "plugin/snapshot_remote.h"

namespace slipstream::plugin {

// The RemoteLayerProvider the snapshots service talks to: asks the ModeSelector for the mode
// of the Prepare's image (its `containerd.io/snapshot/cri.image-ref` label) and hands the
// Prepare to that mode's provider. A Prepare sent to the parallel provider gets the label
// `slipstream.io/mode=parallel`, which the committed snapshot keeps (lazy layers are labelled
// `lazy` by their provider). A mode without a provider answers kNotHandled, so containerd
// pulls the layer itself.
// Borrows the providers (and the selector), which must outlive it. Thread-safe.
class ModeRouter final : public RemoteLayerProvider {
 public:
  struct Providers {
    RemoteLayerProvider* parallel = nullptr;
    RemoteLayerProvider* lazy = nullptr;
  };
  // Every Prepare gets `selector`'s choice.
  ModeRouter(const ModeSelector* selector, Providers providers)
      : selector_(selector), providers_(providers) {}
  // Every Prepare gets `default_mode` (a selector without rules of its own).
  ModeRouter(PullMode default_mode, Providers providers)
      : owned_selector_(std::make_unique<ModeSelector>(default_mode, std::vector<ModeRule>{})),
        selector_(owned_selector_.get()),
        providers_(providers) {}

  // Forwards to the chosen provider, which calls `done` exactly once.
  void Prepare(const RemotePrepareRequest& request, Done done) override;

  // The mode a Prepare gets.
  PullMode ModeFor(const RemotePrepareRequest& request) const;

 private:
  // The selector's choice for the request's cri.image-ref label (the default without one).
  ModeSelector::Choice Choose(const RemotePrepareRequest& request) const;

  const std::unique_ptr<ModeSelector> owned_selector_;
  const ModeSelector* const selector_;
  const Providers providers_;
};

}  // namespace slipstream::plugin
