// SPDX-License-Identifier: Apache-2.0
// The gRPC service beyond the suite: the remote-layer hook, List streaming in batches, the
// socket itself.
#include "plugin/service_snapshots.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "plugin/service_convert.h"
#include "plugin/service_server.h"

namespace slipstream::plugin {
namespace {

namespace v1 = containerd::services::snapshots::v1;

// Serves Prepare calls from another thread, later, the way the pull engine will: builds the
// layer in a staging dir and commits it under the chainID from the label.
class FakeRemote final : public RemoteLayerProvider {
 public:
  enum class Mode { kCommit, kDecline, kFail };
  FakeRemote(OverlaySnapshotter* sn, Mode mode) : sn_(sn), mode_(mode) {}
  ~FakeRemote() override {
    for (auto& t : threads_) t.join();
  }
  void Prepare(const RemotePrepareRequest& request, Done done) override {
    calls_++;
    absl::MutexLock lock(&mu_);
    threads_.emplace_back([this, request, done = std::move(done)]() mutable {
      if (mode_ == Mode::kDecline) return std::move(done)(RemoteOutcome::kNotHandled);
      if (mode_ == Mode::kFail) return std::move(done)(absl::UnavailableError("registry down"));
      auto staging = sn_->CreateStaging();
      if (!staging.ok()) return std::move(done)(staging.status());
      auto fd = OpenFile(staging->fs + "/from-remote", O_WRONLY | O_CREAT, 0644);
      std::string ref = request.labels.at(kSnapshotRefLabel);
      auto status = sn_->CommitStaged(*staging, ref, request.parent,
                                      {{kSnapshotRefLabel, ref}});
      if (!status.ok()) return std::move(done)(status);
      std::move(done)(RemoteOutcome::kCommitted);
    });
  }
  std::atomic<int> calls_{0};

 private:
  OverlaySnapshotter* sn_;
  Mode mode_;
  absl::Mutex mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

class ServiceTest : public ::testing::Test {
 protected:
  void Start(FakeRemote::Mode mode) {
    auto tmp = TempDir::Create("snapshot-service-");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    auto sn = OverlaySnapshotter::Open(tmp_->Join("root"));
    ASSERT_TRUE(sn.ok());
    sn_ = std::move(*sn);
    remote_ = std::make_unique<FakeRemote>(sn_.get(), mode);
    service_ = std::make_unique<SnapshotsService>(sn_.get(), remote_.get());
    socket_ = tmp_->Join("run/s.sock");
    auto server = StartUnixServer(socket_, {service_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = v1::Snapshots::NewStub(
        grpc::CreateChannel("unix:" + socket_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    remote_.reset();
  }

  grpc::Status Prepare(const std::string& key, const std::string& parent, const Labels& labels,
                       v1::PrepareSnapshotResponse* resp) {
    v1::PrepareSnapshotRequest req;
    req.set_snapshotter("slipstream");
    req.set_key(key);
    req.set_parent(parent);
    LabelsToProto(labels, req.mutable_labels());
    grpc::ClientContext ctx;
    return stub_->Prepare(&ctx, req, resp);
  }

  std::vector<v1::Info> List(const std::vector<std::string>& filters, int* messages = nullptr) {
    v1::ListSnapshotsRequest req;
    for (const auto& f : filters) req.add_filters(f);
    grpc::ClientContext ctx;
    auto reader = stub_->List(&ctx, req);
    std::vector<v1::Info> out;
    v1::ListSnapshotsResponse resp;
    int n = 0;
    while (reader->Read(&resp)) {
      ++n;
      for (const auto& i : resp.info()) out.push_back(i);
    }
    EXPECT_TRUE(reader->Finish().ok());
    if (messages) *messages = n;
    return out;
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<OverlaySnapshotter> sn_;
  std::unique_ptr<FakeRemote> remote_;
  std::unique_ptr<SnapshotsService> service_;
  std::string socket_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Snapshots::Stub> stub_;
};

const Labels kCriLabels(const std::string& chain) {
  return {{kSnapshotRefLabel, chain},
          {"containerd.io/snapshot/cri.layer-digest", "sha256:layer"},
          {"containerd.io/snapshot/cri.image-ref", "registry/x:1"}};
}

TEST_F(ServiceTest, RemoteProviderCommitsLayerAndPrepareAnswersAlreadyExists) {
  Start(FakeRemote::Mode::kCommit);
  v1::PrepareSnapshotResponse resp;
  grpc::Status st = Prepare("k8s.io/5/extract-1 sha256:c1", "", kCriLabels("sha256:c1"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  st = Prepare("k8s.io/6/extract-2 sha256:c2", "sha256:c1", kCriLabels("sha256:c2"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS) << st.error_message();
  EXPECT_EQ(remote_->calls_.load(), 2);
  // containerd's re-check after AlreadyExists.
  auto found = List({"labels.\"containerd.io/snapshot.ref\"==sha256:c2,parent==sha256:c1"});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].name(), "sha256:c2");
  EXPECT_EQ(found[0].kind(), v1::COMMITTED);
  EXPECT_TRUE(sn_->Stat("k8s.io/5/extract-1 sha256:c1").status().code() ==
              absl::StatusCode::kNotFound);
  // The committed content is usable as a parent.
  auto mounts = sn_->Prepare("container", "sha256:c2", {});
  ASSERT_TRUE(mounts.ok());
  EXPECT_EQ((*mounts)[0].type, "overlay");
}

TEST_F(ServiceTest, PrepareWithoutRefLabelSkipsProvider) {
  Start(FakeRemote::Mode::kCommit);
  v1::PrepareSnapshotResponse resp;
  grpc::Status st = Prepare("plain", "", {{"other", "x"}}, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(remote_->calls_.load(), 0);
  ASSERT_EQ(resp.mounts_size(), 1);
  EXPECT_EQ(resp.mounts(0).type(), "bind");
}

TEST_F(ServiceTest, DeclinedLayerBecomesNormalActiveSnapshot) {
  Start(FakeRemote::Mode::kDecline);
  v1::PrepareSnapshotResponse resp;
  grpc::Status st = Prepare("extract", "", kCriLabels("sha256:c1"), &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(remote_->calls_.load(), 1);
  EXPECT_EQ(sn_->Stat("extract")->kind, SnapshotKind::kActive);
}

TEST_F(ServiceTest, ProviderErrorFailsPrepareWithItsCode) {
  Start(FakeRemote::Mode::kFail);
  v1::PrepareSnapshotResponse resp;
  grpc::Status st = Prepare("extract", "", kCriLabels("sha256:c1"), &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_NE(st.error_message().find("registry down"), std::string::npos);
  EXPECT_TRUE(absl::IsNotFound(sn_->Stat("extract").status()));
}

TEST_F(ServiceTest, ListStreamsInBatches) {
  Start(FakeRemote::Mode::kDecline);
  for (int i = 0; i < 250; ++i) ASSERT_TRUE(sn_->View(absl::StrCat("v", i), "", {}).ok());
  int messages = 0;
  auto all = List({}, &messages);
  EXPECT_EQ(all.size(), 250u);
  EXPECT_EQ(messages, 3);
  EXPECT_EQ(List({"name==v7", "name==v200"}).size(), 2u);

  v1::ListSnapshotsRequest req;
  req.add_filters("name==");
  grpc::ClientContext ctx;
  auto reader = stub_->List(&ctx, req);
  v1::ListSnapshotsResponse resp;
  while (reader->Read(&resp)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, SocketIsGroupOnly) {
  Start(FakeRemote::Mode::kDecline);
  struct stat st;
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
}

// The daemon's umask comes from whatever started it; with none at all the socket must still
// never be reachable by others, and the private bind directory must not be left behind.
TEST_F(ServiceTest, SocketIsGroupOnlyWhateverTheUmask) {
  const mode_t old_mask = ::umask(0);
  Start(FakeRemote::Mode::kDecline);
  ::umask(old_mask);
  struct stat st;
  ASSERT_EQ(::stat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  std::vector<std::string> names;
  DIR* dir = ::opendir(tmp_->Join("run").c_str());
  ASSERT_NE(dir, nullptr);
  while (const dirent* e = ::readdir(dir)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") names.push_back(e->d_name);
  }
  ::closedir(dir);
  EXPECT_EQ(names, std::vector<std::string>{"s.sock"});
  // The snapshot root holds every image's files: root only, as containerd's own.
  for (const char* dir : {"root", "root/snapshots"}) {
    ASSERT_EQ(::stat(tmp_->Join(dir).c_str(), &st), 0) << dir;
    EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
  }
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  v1::StatSnapshotRequest req;
  req.set_snapshotter("slipstream");
  req.set_key("a");
  v1::StatSnapshotResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub_->Stat(&ctx, req, &resp).ok());
}

TEST_F(ServiceTest, UsageAndCleanupOverGrpc) {
  Start(FakeRemote::Mode::kDecline);
  ASSERT_TRUE(sn_->Prepare("a", "", {}).ok());
  v1::UsageRequest ureq;
  ureq.set_key("a");
  v1::UsageResponse uresp;
  grpc::ClientContext c1;
  ASSERT_TRUE(stub_->Usage(&c1, ureq, &uresp).ok());
  EXPECT_GE(uresp.inodes(), 1);
  ureq.set_key("missing");
  grpc::ClientContext c2;
  EXPECT_EQ(stub_->Usage(&c2, ureq, &uresp).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace slipstream::plugin
