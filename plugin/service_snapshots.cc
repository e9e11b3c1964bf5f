// SPDX-License-Identifier: Apache-2.0
#include "plugin/service_snapshots.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "plugin/service_convert.h"
#include "plugin/service_status.h"

namespace slipstream::plugin {
namespace {

namespace v1 = containerd::services::snapshots::v1;

// A ListSnapshotsResponse carries many infos; containerd's own service batches ~100 per
// message, which keeps every message far below gRPC's 4 MiB default even with 4 KiB labels.
constexpr size_t kListBatch = 100;

// Translates and logs once, here where the error is answered. NotFound and AlreadyExists are
// containerd's normal control flow (Stat before Prepare, AlreadyExists for remote layers), so
// they are logged at debug level only.
grpc::Status Answer(std::string_view rpc, std::string_view key, const absl::Status& status) {
  if (status.ok()) {
    log::Debug("snapshots rpc", {{"rpc", rpc}, {"key", key}});
  } else {
    bool routine = absl::IsNotFound(status) || absl::IsAlreadyExists(status) ||
                   absl::IsFailedPrecondition(status);
    log::Write(routine ? log::Level::kDebug : log::Level::kWarn, "snapshots rpc failed",
               {{"rpc", rpc}, {"key", key}, {"error", status.ToString()}});
  }
  return ToGrpcStatus(status);
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context, std::string_view rpc,
                                 std::string_view key, const absl::Status& status) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(Answer(rpc, key, status));
  return reactor;
}

// Streams a snapshot listing in batches. Deletes itself when gRPC is done with it (OnDone),
// as the callback API requires.
class ListReactor final : public grpc::ServerWriteReactor<v1::ListSnapshotsResponse> {
 public:
  explicit ListReactor(absl::StatusOr<std::vector<SnapshotInfo>> infos) {
    if (!infos.ok()) {
      Finish(Answer("List", "", infos.status()));
      return;
    }
    infos_ = std::move(*infos);
    WriteNext();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      // The client went away; there is nobody left to tell.
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "list stream broken"));
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    if (next_ >= infos_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    for (size_t n = 0; n < kListBatch && next_ < infos_.size(); ++n, ++next_) {
      InfoToProto(infos_[next_], response_.add_info());
    }
    StartWrite(&response_);
  }

  std::vector<SnapshotInfo> infos_;
  size_t next_ = 0;
  v1::ListSnapshotsResponse response_;
};

}  // namespace

SnapshotsService::SnapshotsService(OverlaySnapshotter* snapshotter, RemoteLayerProvider* remote)
    : snapshotter_(snapshotter), remote_(remote) {}

grpc::ServerUnaryReactor* SnapshotsService::Prepare(grpc::CallbackServerContext* context,
                                                    const v1::PrepareSnapshotRequest* request,
                                                    v1::PrepareSnapshotResponse* response) {
  Labels labels = LabelsFromProto(request->labels());
  auto local = [this, request, response](const Labels& labels) {
    auto mounts = snapshotter_->Prepare(request->key(), request->parent(), labels);
    if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
    return mounts.status();
  };
  if (remote_ == nullptr || !labels.contains(kSnapshotRefLabel)) {
    return Finish(context, "Prepare", request->key(), local(labels));
  }
  if (log::GetLevel() == log::Level::kDebug) {
    // The label keys tell which handshake containerd speaks (CRI's own pull, the 2.1+
    // transfer service); values are cut short, cri.image-layers can hold 4 KiB.
    std::string shown;
    for (const auto& [k, v] : labels) {
      absl::StrAppend(&shown, shown.empty() ? "" : " ", k, "=",
                      v.size() > 80 ? absl::StrCat(v.substr(0, 80), "...") : v);
    }
    log::Debug("prepare labels", {{"key", request->key()}, {"labels", shown}});
  }
  // The remote provider may answer much later (after a download); the reactor stays open
  // and `request`/`response` stay valid until Finish.
  auto* reactor = context->DefaultReactor();
  RemotePrepareRequest remote_request{request->key(), request->parent(), labels};
  remote_->Prepare(remote_request, [reactor, request, local, labels = std::move(labels)](
                                       absl::StatusOr<RemoteOutcome> outcome) mutable {
    absl::Status status;
    if (!outcome.ok()) {
      status = Annotate(outcome.status(), "remote layer");
    } else if (*outcome == RemoteOutcome::kCommitted) {
      // containerd's contract: AlreadyExists means "the layer is there under its chainID".
      status = absl::AlreadyExistsError(
          absl::StrCat("target snapshot ", labels[kSnapshotRefLabel], " already exists"));
    } else {
      status = local(labels);
    }
    reactor->Finish(Answer("Prepare", request->key(), status));
  });
  return reactor;
}

grpc::ServerUnaryReactor* SnapshotsService::View(grpc::CallbackServerContext* context,
                                                 const v1::ViewSnapshotRequest* request,
                                                 v1::ViewSnapshotResponse* response) {
  auto mounts =
      snapshotter_->View(request->key(), request->parent(), LabelsFromProto(request->labels()));
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  return Finish(context, "View", request->key(), mounts.status());
}

grpc::ServerUnaryReactor* SnapshotsService::Mounts(grpc::CallbackServerContext* context,
                                                   const v1::MountsRequest* request,
                                                   v1::MountsResponse* response) {
  auto mounts = snapshotter_->Mounts(request->key());
  if (mounts.ok()) MountsToProto(*mounts, response->mutable_mounts());
  return Finish(context, "Mounts", request->key(), mounts.status());
}

grpc::ServerUnaryReactor* SnapshotsService::Commit(grpc::CallbackServerContext* context,
                                                   const v1::CommitSnapshotRequest* request,
                                                   google::protobuf::Empty*) {
  if (!request->parent().empty()) {
    // Commit-with-parent is the "rebase" capability, which this snapshotter does not
    // advertise; accept it only when it changes nothing.
    auto info = snapshotter_->Stat(request->key());
    if (info.ok() && info->parent != request->parent()) {
      return Finish(context, "Commit", request->key(),
                    absl::UnimplementedError("rebase on commit is not supported"));
    }
  }
  auto status = snapshotter_->Commit(request->name(), request->key(),
                                     LabelsFromProto(request->labels()));
  return Finish(context, "Commit", request->key(), status);
}

grpc::ServerUnaryReactor* SnapshotsService::Remove(grpc::CallbackServerContext* context,
                                                   const v1::RemoveSnapshotRequest* request,
                                                   google::protobuf::Empty*) {
  return Finish(context, "Remove", request->key(), snapshotter_->Remove(request->key()));
}

grpc::ServerUnaryReactor* SnapshotsService::Stat(grpc::CallbackServerContext* context,
                                                 const v1::StatSnapshotRequest* request,
                                                 v1::StatSnapshotResponse* response) {
  auto info = snapshotter_->Stat(request->key());
  if (info.ok()) InfoToProto(*info, response->mutable_info());
  return Finish(context, "Stat", request->key(), info.status());
}

grpc::ServerUnaryReactor* SnapshotsService::Update(grpc::CallbackServerContext* context,
                                                   const v1::UpdateSnapshotRequest* request,
                                                   v1::UpdateSnapshotResponse* response) {
  std::vector<std::string> paths(request->update_mask().paths().begin(),
                                 request->update_mask().paths().end());
  auto info = snapshotter_->Update(InfoFromProto(request->info()), paths);
  if (info.ok()) InfoToProto(*info, response->mutable_info());
  return Finish(context, "Update", request->info().name(), info.status());
}

grpc::ServerWriteReactor<v1::ListSnapshotsResponse>* SnapshotsService::List(
    grpc::CallbackServerContext*, const v1::ListSnapshotsRequest* request) {
  std::vector<std::string> filters(request->filters().begin(), request->filters().end());
  auto filter = SnapshotFilter::Parse(filters);
  if (!filter.ok()) return new ListReactor(filter.status());
  return new ListReactor(snapshotter_->List(*filter));
}

grpc::ServerUnaryReactor* SnapshotsService::Usage(grpc::CallbackServerContext* context,
                                                  const v1::UsageRequest* request,
                                                  v1::UsageResponse* response) {
  auto usage = snapshotter_->Usage(request->key());
  if (usage.ok()) {
    response->set_size(usage->size);
    response->set_inodes(usage->inodes);
  }
  return Finish(context, "Usage", request->key(), usage.status());
}

grpc::ServerUnaryReactor* SnapshotsService::Cleanup(grpc::CallbackServerContext* context,
                                                    const v1::CleanupRequest*,
                                                    google::protobuf::Empty*) {
  auto removed = snapshotter_->Cleanup();
  if (removed.ok() && *removed > 0) log::Info("cleanup removed snapshot dirs", {{"count", *removed}});
  return Finish(context, "Cleanup", "", removed.status());
}

}  // namespace slipstream::plugin
