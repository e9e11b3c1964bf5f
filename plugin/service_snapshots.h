// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/grpcpp.h>

#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "plugin/snapshot_overlay.h"
#include "plugin/snapshot_remote.h"

namespace slipstream::plugin {

// containerd.services.snapshots.v1.Snapshots over gRPC's callback API, backed by an
// OverlaySnapshotter. containerd reaches it as a `[proxy_plugins.<name>] type = "snapshot"`.
//
// Handlers run on gRPC's callback threads. Everything they do is local (SQLite and directory
// operations on the snapshotter's disk); the one thing that may wait long — a Prepare served by
// a remote pull — goes through RemoteLayerProvider, which completes the call later from its own
// thread, so no handler blocks on network I/O. The `snapshotter` request field is ignored
// (one snapshotter per socket).
//
// Does not own the snapshotter or the provider; both must outlive the grpc::Server the service
// is registered with, and the provider must have answered every Prepare before the server is
// shut down. Thread-safe.
class SnapshotsService final : public containerd::services::snapshots::v1::Snapshots::CallbackService {
 public:
  SnapshotsService(OverlaySnapshotter* snapshotter, RemoteLayerProvider* remote);

  grpc::ServerUnaryReactor* Prepare(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::PrepareSnapshotRequest* request,
      containerd::services::snapshots::v1::PrepareSnapshotResponse* response) override;
  grpc::ServerUnaryReactor* View(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::ViewSnapshotRequest* request,
      containerd::services::snapshots::v1::ViewSnapshotResponse* response) override;
  grpc::ServerUnaryReactor* Mounts(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::MountsRequest* request,
      containerd::services::snapshots::v1::MountsResponse* response) override;
  grpc::ServerUnaryReactor* Commit(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::CommitSnapshotRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* Remove(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::RemoveSnapshotRequest* request,
      google::protobuf::Empty* response) override;
  grpc::ServerUnaryReactor* Stat(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::StatSnapshotRequest* request,
      containerd::services::snapshots::v1::StatSnapshotResponse* response) override;
  grpc::ServerUnaryReactor* Update(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::UpdateSnapshotRequest* request,
      containerd::services::snapshots::v1::UpdateSnapshotResponse* response) override;
  grpc::ServerWriteReactor<containerd::services::snapshots::v1::ListSnapshotsResponse>* List(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::ListSnapshotsRequest* request) override;
  grpc::ServerUnaryReactor* Usage(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::UsageRequest* request,
      containerd::services::snapshots::v1::UsageResponse* response) override;
  grpc::ServerUnaryReactor* Cleanup(
      grpc::CallbackServerContext* context,
      const containerd::services::snapshots::v1::CleanupRequest* request,
      google::protobuf::Empty* response) override;

 private:
  OverlaySnapshotter* const snapshotter_;
  RemoteLayerProvider* const remote_;
};

}  // namespace slipstream::plugin
