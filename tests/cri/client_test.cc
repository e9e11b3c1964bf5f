// SPDX-License-Identifier: Apache-2.0
// CriClient against an in-process fake runtime: endpoint parsing, typed RPCs, separate image
// endpoint, and the gRPC → absl error mapping (table and end to end).
#include "cri/client.h"

#include <memory>

#include "common/temp_dir.h"
#include "cri/grpc_status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cri/fake_cri_server.h"

namespace slipstream::cri {
namespace {

using ::testing::ElementsAre;
using testing::FakeCriServer;
using ::testing::HasSubstr;

TEST(GrpcTargetTest, AcceptsUnixSocketsOnly) {
  EXPECT_EQ(*GrpcTarget("/run/containerd/containerd.sock"),
            "unix:///run/containerd/containerd.sock");
  EXPECT_EQ(*GrpcTarget("unix:///run/x.sock"), "unix:///run/x.sock");
  EXPECT_EQ(*GrpcTarget("unix:/run/x.sock"), "unix:///run/x.sock");
  for (const char* bad :
       {"", "run/x.sock", "unix://", "unix://run/x.sock", "tcp://1.2.3.4:5", "127.0.0.1:10010"}) {
    auto t = GrpcTarget(bad);
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(FromGrpcStatusTest, KeepsTheCodeAndNamesTheContext) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK, "x").ok());
  const std::pair<grpc::StatusCode, absl::StatusCode> table[] = {
      {grpc::StatusCode::CANCELLED, absl::StatusCode::kCancelled},
      {grpc::StatusCode::UNKNOWN, absl::StatusCode::kUnknown},
      {grpc::StatusCode::INVALID_ARGUMENT, absl::StatusCode::kInvalidArgument},
      {grpc::StatusCode::DEADLINE_EXCEEDED, absl::StatusCode::kDeadlineExceeded},
      {grpc::StatusCode::NOT_FOUND, absl::StatusCode::kNotFound},
      {grpc::StatusCode::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
      {grpc::StatusCode::PERMISSION_DENIED, absl::StatusCode::kPermissionDenied},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, absl::StatusCode::kResourceExhausted},
      {grpc::StatusCode::FAILED_PRECONDITION, absl::StatusCode::kFailedPrecondition},
      {grpc::StatusCode::ABORTED, absl::StatusCode::kAborted},
      {grpc::StatusCode::OUT_OF_RANGE, absl::StatusCode::kOutOfRange},
      {grpc::StatusCode::UNIMPLEMENTED, absl::StatusCode::kUnimplemented},
      {grpc::StatusCode::INTERNAL, absl::StatusCode::kInternal},
      {grpc::StatusCode::UNAVAILABLE, absl::StatusCode::kUnavailable},
      {grpc::StatusCode::DATA_LOSS, absl::StatusCode::kDataLoss},
      {grpc::StatusCode::UNAUTHENTICATED, absl::StatusCode::kUnauthenticated},
      {grpc::StatusCode::DO_NOT_USE, absl::StatusCode::kUnknown},  // outside the canonical codes
  };
  for (const auto& [in, want] : table) {
    absl::Status st = FromGrpcStatus(grpc::Status(in, "boom"), "/svc/Rpc on unix:///s");
    EXPECT_EQ(st.code(), want) << static_cast<int>(in);
    EXPECT_EQ(st.message(), "/svc/Rpc on unix:///s: boom");
  }
}

class CriClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("cri-client-");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    auto fake = FakeCriServer::Start(tmp_->Join("cri.sock"));
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    auto client = CriClient::Connect({.runtime_endpoint = tmp_->Join("cri.sock")});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<FakeCriServer> fake_;
  std::unique_ptr<CriClient> client_;
};

TEST_F(CriClientTest, VersionAndImageRpcs) {
  auto version = client_->Version();
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(version->runtime_name(), "fake");
  EXPECT_EQ(version->runtime_api_version(), "v1");

  v1::ImageStatusRequest status;
  status.mutable_image()->set_image("reg/a:1");
  auto absent = client_->ImageStatus(status);
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->has_image());

  v1::PullImageRequest pull;
  pull.mutable_image()->set_image("reg/a:1");
  pull.mutable_auth()->set_username("u");
  (*pull.mutable_sandbox_config()->mutable_annotations())["slipstream.io/pull-mode"] = "lazy";
  auto pulled = client_->PullImage(pull);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(pulled->image_ref(), "sha256:" + std::string(64, 'a'));
  EXPECT_EQ(fake_->last_pull().auth().username(), "u");
  EXPECT_EQ(fake_->last_pull().sandbox_config().annotations().at("slipstream.io/pull-mode"),
            "lazy");

  auto present = client_->ImageStatus(status);
  ASSERT_TRUE(present.ok());
  EXPECT_TRUE(present->has_image());
  auto list = client_->ListImages();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->images_size(), 1);
  EXPECT_THAT(list->images(0).repo_tags(), ElementsAre("reg/a:1"));
  auto fs = client_->ImageFsInfo();
  ASSERT_TRUE(fs.ok());
  ASSERT_EQ(fs->image_filesystems_size(), 1);
  EXPECT_EQ(fs->image_filesystems(0).fs_id().mountpoint(), "/var/lib/fake");

  v1::RemoveImageRequest remove;
  remove.mutable_image()->set_image("reg/a:1");
  ASSERT_TRUE(client_->RemoveImage(remove).ok());
  EXPECT_FALSE(fake_->HasImage("reg/a:1"));
}

TEST_F(CriClientTest, ServerErrorsKeepTheirCodeAndNameTheRpc) {
  fake_->FailRpc("PullImage", grpc::Status(grpc::StatusCode::NOT_FOUND, "manifest unknown"));
  v1::PullImageRequest pull;
  pull.mutable_image()->set_image("reg/missing:1");
  auto pulled = client_->PullImage(pull);
  EXPECT_EQ(pulled.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(pulled.status().message(), HasSubstr("/runtime.v1.ImageService/PullImage"));
  EXPECT_THAT(pulled.status().message(), HasSubstr(tmp_->Join("cri.sock")));
  EXPECT_THAT(pulled.status().message(), HasSubstr("manifest unknown"));

  fake_->FailRpc("StartContainer",
                 grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not created"));
  v1::StartContainerRequest start;
  start.set_container_id("c");
  auto started = client_->StartContainer(start);
  EXPECT_EQ(started.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(started.status().message(), HasSubstr("/runtime.v1.RuntimeService/StartContainer"));
}

TEST_F(CriClientTest, DeadlineExceeded) {
  auto client = CriClient::Connect(
      {.runtime_endpoint = tmp_->Join("cri.sock"), .timeout = -absl::Seconds(1)});
  ASSERT_TRUE(client.ok());
  auto version = (*client)->Version();
  EXPECT_EQ(version.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(version.status().message(), HasSubstr("/runtime.v1.RuntimeService/Version"));
}

TEST_F(CriClientTest, NothingListeningIsUnavailable) {
  auto client = CriClient::Connect({.runtime_endpoint = tmp_->Join("absent.sock")});
  ASSERT_TRUE(client.ok());
  auto version = (*client)->Version();
  EXPECT_EQ(version.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(version.status().message(), HasSubstr("absent.sock"));
}

TEST_F(CriClientTest, ImageCallsGoToTheImageEndpoint) {
  auto image_fake = FakeCriServer::Start(tmp_->Join("image.sock"));
  ASSERT_TRUE(image_fake.ok());
  auto client = CriClient::Connect({.runtime_endpoint = tmp_->Join("cri.sock"),
                                    .image_endpoint = "unix://" + tmp_->Join("image.sock")});
  ASSERT_TRUE(client.ok());
  v1::PullImageRequest pull;
  pull.mutable_image()->set_image("reg/a:1");
  ASSERT_TRUE((*client)->PullImage(pull).ok());
  ASSERT_TRUE((*client)->Version().ok());
  EXPECT_THAT((*image_fake)->calls(), ElementsAre("PullImage reg/a:1"));
  EXPECT_THAT(fake_->calls(), ElementsAre("Version"));
}

TEST(CriClientConnectTest, RejectsBadEndpoints) {
  EXPECT_EQ(CriClient::Connect({.runtime_endpoint = "tcp://x"}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      CriClient::Connect({.runtime_endpoint = "/ok.sock", .image_endpoint = "x"}).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slipstream::cri
