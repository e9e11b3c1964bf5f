// SPDX-License-Identifier: Apache-2.0
#include "tests/plugin/snapshot_suite_client.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "containerd/services/snapshots/v1/snapshots.grpc.pb.h"
#include "plugin/service_convert.h"
#include "plugin/service_server.h"
#include "plugin/service_snapshots.h"
#include "plugin/snapshot_filter.h"
#include "plugin/snapshot_overlay.h"

namespace slipstream::plugin::testing {
namespace {

namespace v1 = containerd::services::snapshots::v1;

class DirectSnapshotter final : public SuiteSnapshotter {
 public:
  explicit DirectSnapshotter(std::unique_ptr<OverlaySnapshotter> s) : s_(std::move(s)) {}
  absl::StatusOr<std::vector<MountSpec>> Prepare(const std::string& key, const std::string& parent,
                                                 const Labels& labels) override {
    return s_->Prepare(key, parent, labels);
  }
  absl::StatusOr<std::vector<MountSpec>> View(const std::string& key, const std::string& parent,
                                              const Labels& labels) override {
    return s_->View(key, parent, labels);
  }
  absl::StatusOr<std::vector<MountSpec>> Mounts(const std::string& key) override {
    return s_->Mounts(key);
  }
  absl::Status Commit(const std::string& name, const std::string& key,
                      const Labels& labels) override {
    return s_->Commit(name, key, labels);
  }
  absl::Status Remove(const std::string& key) override { return s_->Remove(key); }
  absl::StatusOr<SnapshotInfo> Stat(const std::string& key) override { return s_->Stat(key); }
  absl::StatusOr<SnapshotInfo> Update(const SnapshotInfo& info,
                                      const std::vector<std::string>& paths) override {
    return s_->Update(info, paths);
  }
  absl::StatusOr<std::vector<SnapshotInfo>> Walk(const std::vector<std::string>& filters) override {
    SS_ASSIGN_OR_RETURN(auto filter, SnapshotFilter::Parse(filters));
    return s_->List(filter);
  }
  absl::StatusOr<SnapshotUsage> Usage(const std::string& key) override { return s_->Usage(key); }
  absl::Status Cleanup() override { return s_->Cleanup().status(); }

 private:
  std::unique_ptr<OverlaySnapshotter> s_;
};

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

// A real server on a unix socket in the root's parent directory, and a stub talking to it.
class GrpcSnapshotter final : public SuiteSnapshotter {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcSnapshotter>> Start(const std::string& root) {
    auto out = std::unique_ptr<GrpcSnapshotter>(new GrpcSnapshotter());
    SS_ASSIGN_OR_RETURN(out->snapshotter_, OverlaySnapshotter::Open(root));
    out->service_ = std::make_unique<SnapshotsService>(out->snapshotter_.get(), &out->remote_);
    std::string socket = root + ".sock";
    SS_ASSIGN_OR_RETURN(out->server_, StartUnixServer(socket, {out->service_.get()}));
    out->stub_ = v1::Snapshots::NewStub(
        grpc::CreateChannel(absl::StrCat("unix:", socket), grpc::InsecureChannelCredentials()));
    return out;
  }
  ~GrpcSnapshotter() override {
    if (server_) server_->Shutdown();
  }

  absl::StatusOr<std::vector<MountSpec>> Prepare(const std::string& key, const std::string& parent,
                                                 const Labels& labels) override {
    v1::PrepareSnapshotRequest req;
    req.set_snapshotter("slipstream");
    req.set_key(key);
    req.set_parent(parent);
    LabelsToProto(labels, req.mutable_labels());
    v1::PrepareSnapshotResponse resp;
    grpc::ClientContext ctx;
    SS_RETURN_IF_ERROR(FromGrpc(stub_->Prepare(&ctx, req, &resp)));
    return MountsFromProto(resp.mounts());
  }
  absl::StatusOr<std::vector<MountSpec>> View(const std::string& key, const std::string& parent,
                                              const Labels& labels) override {
    v1::ViewSnapshotRequest req;
    req.set_key(key);
    req.set_parent(parent);
    LabelsToProto(labels, req.mutable_labels());
    v1::ViewSnapshotResponse resp;
    grpc::ClientContext ctx;
    SS_RETURN_IF_ERROR(FromGrpc(stub_->View(&ctx, req, &resp)));
    return MountsFromProto(resp.mounts());
  }
  absl::StatusOr<std::vector<MountSpec>> Mounts(const std::string& key) override {
    v1::MountsRequest req;
    req.set_key(key);
    v1::MountsResponse resp;
    grpc::ClientContext ctx;
    SS_RETURN_IF_ERROR(FromGrpc(stub_->Mounts(&ctx, req, &resp)));
    return MountsFromProto(resp.mounts());
  }
  absl::Status Commit(const std::string& name, const std::string& key,
                      const Labels& labels) override {
    v1::CommitSnapshotRequest req;
    req.set_name(name);
    req.set_key(key);
    LabelsToProto(labels, req.mutable_labels());
    google::protobuf::Empty resp;
    grpc::ClientContext ctx;
    return FromGrpc(stub_->Commit(&ctx, req, &resp));
  }
  absl::Status Remove(const std::string& key) override {
    v1::RemoveSnapshotRequest req;
    req.set_key(key);
    google::protobuf::Empty resp;
    grpc::ClientContext ctx;
    return FromGrpc(stub_->Remove(&ctx, req, &resp));
  }
  absl::StatusOr<SnapshotInfo> Stat(const std::string& key) override {
    v1::StatSnapshotRequest req;
    req.set_key(key);
    v1::StatSnapshotResponse resp;
    grpc::ClientContext ctx;
    SS_RETURN_IF_ERROR(FromGrpc(stub_->Stat(&ctx, req, &resp)));
    return InfoFromProto(resp.info());
  }
  absl::StatusOr<SnapshotInfo> Update(const SnapshotInfo& info,
                                      const std::vector<std::string>& paths) override {
    v1::UpdateSnapshotRequest req;
    InfoToProto(info, req.mutable_info());
    for (const auto& p : paths) req.mutable_update_mask()->add_paths(p);
    v1::UpdateSnapshotResponse resp;
    grpc::ClientContext ctx;
    SS_RETURN_IF_ERROR(FromGrpc(stub_->Update(&ctx, req, &resp)));
    return InfoFromProto(resp.info());
  }
  absl::StatusOr<std::vector<SnapshotInfo>> Walk(const std::vector<std::string>& filters) override {
    v1::ListSnapshotsRequest req;
    for (const auto& f : filters) req.add_filters(f);
    grpc::ClientContext ctx;
    auto reader = stub_->List(&ctx, req);
    std::vector<SnapshotInfo> out;
    v1::ListSnapshotsResponse resp;
    while (reader->Read(&resp)) {
      for (const auto& info : resp.info()) out.push_back(InfoFromProto(info));
    }
    SS_RETURN_IF_ERROR(FromGrpc(reader->Finish()));
    return out;
  }
  absl::StatusOr<SnapshotUsage> Usage(const std::string& key) override {
    v1::UsageRequest req;
    req.set_key(key);
    v1::UsageResponse resp;
    grpc::ClientContext ctx;
    SS_RETURN_IF_ERROR(FromGrpc(stub_->Usage(&ctx, req, &resp)));
    return SnapshotUsage{resp.size(), resp.inodes()};
  }
  absl::Status Cleanup() override {
    v1::CleanupRequest req;
    google::protobuf::Empty resp;
    grpc::ClientContext ctx;
    return FromGrpc(stub_->Cleanup(&ctx, req, &resp));
  }

 private:
  GrpcSnapshotter() = default;
  NoRemoteLayers remote_;
  std::unique_ptr<OverlaySnapshotter> snapshotter_;
  std::unique_ptr<SnapshotsService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Snapshots::Stub> stub_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SuiteSnapshotter>> MakeSuiteSnapshotter(const std::string& mode,
                                                                       const std::string& root) {
  if (mode == "direct") {
    SS_ASSIGN_OR_RETURN(auto s, OverlaySnapshotter::Open(root));
    return std::make_unique<DirectSnapshotter>(std::move(s));
  }
  if (mode == "grpc") {
    SS_ASSIGN_OR_RETURN(auto s, GrpcSnapshotter::Start(root));
    return std::unique_ptr<SuiteSnapshotter>(std::move(s));
  }
  return absl::InvalidArgumentError(absl::StrCat("suite mode ", mode));
}

}  // namespace slipstream::plugin::testing
