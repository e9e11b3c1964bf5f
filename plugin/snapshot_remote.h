// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// The arguments of a Prepare that may be served by a remote pull (parallel or lazy mode).
struct RemotePrepareRequest {
  std::string key;     // the active key containerd asked for ("k8s.io/6/extract-... sha256:...")
  std::string parent;  // committed parent key, "" for the bottom layer
  Labels labels;       // containerd.io/snapshot.ref, containerd.io/snapshot/cri.* ...
};

// What the remote provider did with a Prepare.
enum class RemoteOutcome {
  // Not for us (or the engine failed and fallback is configured): create a normal active
  // snapshot so containerd fetches and applies the layer itself.
  kNotHandled,
  // The layer is in place as a committed snapshot named by the `containerd.io/snapshot.ref`
  // label, with `parent` as parent and that label set: the service answers AlreadyExists.
  kCommitted,
};

// The hook through which the remote pull engine takes over Prepare calls carrying the CRI
// labels. SnapshotsService consults it for every Prepare whose labels contain
// `containerd.io/snapshot.ref`; the provider calls `done` exactly once, from any thread,
// possibly much later (after a download) — the gRPC handler does not block meanwhile. An error
// fails the Prepare with that status (mapped to a gRPC code).
//
// Implementations are owned by the daemon, outlive the service, and must be thread-safe.
class RemoteLayerProvider {
 public:
  using Done = absl::AnyInvocable<void(absl::StatusOr<RemoteOutcome>) &&>;
  virtual ~RemoteLayerProvider() = default;
  virtual void Prepare(const RemotePrepareRequest& request, Done done) = 0;
};

// The default: handles nothing, answers at once. Stateless and thread-safe.
class NoRemoteLayers final : public RemoteLayerProvider {
 public:
  void Prepare(const RemotePrepareRequest&, Done done) override {
    std::move(done)(RemoteOutcome::kNotHandled);
  }
};

// The label containerd puts on a Prepare naming the chainID the layer should be committed as.
inline constexpr char kSnapshotRefLabel[] = "containerd.io/snapshot.ref";

}  // namespace slipstream::plugin
