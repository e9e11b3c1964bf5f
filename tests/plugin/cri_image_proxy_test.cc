// SPDX-License-Identifier: Apache-2.0
// CriImageProxy between a CRI client and a fake containerd ImageService, each on a unix
// socket in a temp dir: every RPC passes through unchanged (requests, responses, error codes
// and messages, the deadline), PullImage records the pod's pull mode and its credentials
// (never logging a secret), a bad annotation is refused without forwarding, and the proxy
// reaches a restarted upstream again.
#include "plugin/cri_image_proxy.h"

#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "common/temp_dir.h"
#include "cri/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/service_server.h"

namespace slipstream::plugin {
namespace {

namespace v1 = ::runtime::v1;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::Not;

// containerd's CRI ImageService as a scriptable fake: answers with the responses set below
// (or `error` when set) and keeps the last request of each RPC and how far away its deadline
// was. Thread-safe.
class FakeImageService final : public v1::ImageService::Service {
 public:
  grpc::Status ListImages(grpc::ServerContext* ctx, const v1::ListImagesRequest* request,
                          v1::ListImagesResponse* response) override {
    return Answer(ctx, *request, &list_request, list_response, response);
  }
  grpc::Status ImageStatus(grpc::ServerContext* ctx, const v1::ImageStatusRequest* request,
                           v1::ImageStatusResponse* response) override {
    return Answer(ctx, *request, &status_request, status_response, response);
  }
  grpc::Status PullImage(grpc::ServerContext* ctx, const v1::PullImageRequest* request,
                         v1::PullImageResponse* response) override {
    return Answer(ctx, *request, &pull_request, pull_response, response);
  }
  grpc::Status RemoveImage(grpc::ServerContext* ctx, const v1::RemoveImageRequest* request,
                           v1::RemoveImageResponse* response) override {
    return Answer(ctx, *request, &remove_request, v1::RemoveImageResponse(), response);
  }
  grpc::Status ImageFsInfo(grpc::ServerContext* ctx, const v1::ImageFsInfoRequest* request,
                           v1::ImageFsInfoResponse* response) override {
    return Answer(ctx, *request, &fs_request, fs_response, response);
  }

  int calls() {
    absl::MutexLock lock(&mu);
    return calls_;
  }

  // Set before the calls; read under mu by the handlers.
  absl::Mutex mu;
  grpc::Status error = grpc::Status::OK;
  v1::ListImagesResponse list_response;
  v1::ImageStatusResponse status_response;
  v1::PullImageResponse pull_response;
  v1::ImageFsInfoResponse fs_response;
  // What arrived.
  v1::ListImagesRequest list_request;
  v1::ImageStatusRequest status_request;
  v1::PullImageRequest pull_request;
  v1::RemoveImageRequest remove_request;
  v1::ImageFsInfoRequest fs_request;
  absl::Duration deadline_left = absl::InfiniteDuration();

 private:
  template <typename Request, typename Response>
  grpc::Status Answer(grpc::ServerContext* ctx, const Request& request, Request* seen,
                      const Response& scripted, Response* response) {
    absl::MutexLock lock(&mu);
    ++calls_;
    *seen = request;
    deadline_left = absl::FromChrono(ctx->deadline()) - absl::Now();
    if (!error.ok()) return error;
    *response = scripted;
    return grpc::Status::OK;
  }
  int calls_ = 0;
};

class CriImageProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("cri-proxy-");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    upstream_socket_ = tmp_->Join("containerd.sock");
    proxy_socket_ = tmp_->Join("slipstreamd.sock");
    ASSERT_NO_FATAL_FAILURE(StartUpstream());
    auto channel = CriImageProxy::Dial(upstream_socket_);
    ASSERT_TRUE(channel.ok()) << channel.status();
    proxy_ = std::make_unique<CriImageProxy>(*channel, upstream_socket_, &modes_, &credentials_);
    auto server = StartUnixServer(proxy_socket_, {proxy_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    proxy_server_ = std::move(*server);
    cri::CriClientOptions options;
    options.runtime_endpoint = proxy_socket_;
    options.timeout = absl::Seconds(30);
    auto client = cri::CriClient::Connect(options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  void TearDown() override {
    if (proxy_server_) proxy_server_->Shutdown();
    if (upstream_server_) upstream_server_->Shutdown();
  }

  void StartUpstream() {
    fake_ = std::make_unique<FakeImageService>();
    auto server = StartUnixServer(upstream_socket_, {fake_.get()});
    ASSERT_TRUE(server.ok()) << server.status();
    upstream_server_ = std::move(*server);
  }

  v1::PullImageRequest Pull(const std::string& image, const std::string& mode) {
    v1::PullImageRequest request;
    request.mutable_image()->set_image(image);
    request.mutable_sandbox_config()->mutable_metadata()->set_name("pod");
    if (!mode.empty()) (*request.mutable_sandbox_config()->mutable_annotations())[kPullModeAnnotation] = mode;
    return request;
  }

  std::unique_ptr<TempDir> tmp_;
  std::string upstream_socket_, proxy_socket_;
  ModeSelector modes_{PullMode::kParallel, {}};
  RuntimeCredentials credentials_{absl::Hours(12)};
  std::unique_ptr<FakeImageService> fake_;
  std::unique_ptr<grpc::Server> upstream_server_;
  std::unique_ptr<CriImageProxy> proxy_;
  std::unique_ptr<grpc::Server> proxy_server_;
  std::unique_ptr<cri::CriClient> client_;
};

TEST_F(CriImageProxyTest, ListImagesPassesThroughUnchanged) {
  v1::Image* a = fake_->list_response.add_images();
  a->set_id("sha256:aaaa");
  a->add_repo_tags("docker.io/library/busybox:1");
  a->add_repo_digests("docker.io/library/busybox@sha256:bbbb");
  a->set_size(1234);
  a->set_pinned(true);
  fake_->list_response.add_images()->set_id("sha256:cccc");
  v1::ListImagesRequest request;
  request.mutable_filter()->mutable_image()->set_image("busybox");
  auto got = client_->ListImages(request);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*got, fake_->list_response)) << got->DebugString();
  EXPECT_TRUE(MessageDifferencer::Equals(fake_->list_request, request))
      << fake_->list_request.DebugString();
}

TEST_F(CriImageProxyTest, ImageStatusPassesThroughPresentAndAbsent) {
  auto absent = client_->ImageStatus([] {
    v1::ImageStatusRequest r;
    r.mutable_image()->set_image("nothere:1");
    return r;
  }());
  ASSERT_TRUE(absent.ok()) << absent.status();
  EXPECT_FALSE(absent->has_image());
  EXPECT_EQ(fake_->status_request.image().image(), "nothere:1");

  fake_->status_response.mutable_image()->set_id("sha256:dddd");
  fake_->status_response.mutable_image()->mutable_uid()->set_value(0);
  (*fake_->status_response.mutable_info())["info"] = "{\"verbose\":true}";
  v1::ImageStatusRequest request;
  request.mutable_image()->set_image("busybox:1");
  request.set_verbose(true);
  auto present = client_->ImageStatus(request);
  ASSERT_TRUE(present.ok()) << present.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*present, fake_->status_response));
  EXPECT_TRUE(MessageDifferencer::Equals(fake_->status_request, request));
}

TEST_F(CriImageProxyTest, RemoveImageAndImageFsInfoPassThrough) {
  v1::RemoveImageRequest remove;
  remove.mutable_image()->set_image("sha256:eeee");
  ASSERT_TRUE(client_->RemoveImage(remove).ok());
  EXPECT_EQ(fake_->remove_request.image().image(), "sha256:eeee");

  v1::FilesystemUsage* fs = fake_->fs_response.add_image_filesystems();
  fs->set_timestamp(42);
  fs->mutable_fs_id()->set_mountpoint("/var/lib/containerd/io.containerd.snapshotter.v1.slipstream");
  fs->mutable_used_bytes()->set_value(1 << 20);
  fs->mutable_inodes_used()->set_value(7);
  fake_->fs_response.add_container_filesystems()->set_timestamp(43);
  auto info = client_->ImageFsInfo();
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_TRUE(MessageDifferencer::Equals(*info, fake_->fs_response)) << info->DebugString();
  EXPECT_EQ(fake_->calls(), 2);
}

TEST_F(CriImageProxyTest, ErrorCodesAndMessagesPassThrough) {
  for (grpc::StatusCode code : {grpc::StatusCode::NOT_FOUND, grpc::StatusCode::UNAUTHENTICATED,
                                grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::INTERNAL,
                                grpc::StatusCode::FAILED_PRECONDITION}) {
    {
      absl::MutexLock lock(&fake_->mu);
      fake_->error = grpc::Status(code, "upstream says no " + std::to_string(code));
    }
    auto list = client_->ListImages();
    ASSERT_FALSE(list.ok());
    EXPECT_EQ(static_cast<int>(list.status().code()), static_cast<int>(code));
    EXPECT_THAT(std::string(list.status().message()),
                HasSubstr("upstream says no " + std::to_string(code)));
    auto pull = client_->PullImage(Pull("busybox:1", "lazy"));
    ASSERT_FALSE(pull.ok());
    EXPECT_EQ(static_cast<int>(pull.status().code()), static_cast<int>(code));
  }
}

TEST_F(CriImageProxyTest, DeadlineIsPropagated) {
  ASSERT_TRUE(client_->ListImages().ok());
  // The client's deadline is 30 s: the upstream sees that deadline (gRPC's timeout header
  // rounds up by up to 100 ms); without propagation it would see none (infinite).
  EXPECT_LE(fake_->deadline_left, absl::Seconds(31));
  EXPECT_GT(fake_->deadline_left, absl::Seconds(20));
}

TEST_F(CriImageProxyTest, UpstreamDownIsUnavailableAndARestartedUpstreamIsReachedAgain) {
  upstream_server_->Shutdown();
  upstream_server_.reset();
  auto down = client_->ListImages();
  ASSERT_FALSE(down.ok());
  EXPECT_TRUE(absl::IsUnavailable(down.status())) << down.status();

  ASSERT_NO_FATAL_FAILURE(StartUpstream());
  fake_->list_response.add_images()->set_id("sha256:back");
  // The channel redials with a backoff of at most a second.
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  absl::StatusOr<v1::ListImagesResponse> up = absl::UnavailableError("not tried");
  while (!(up = client_->ListImages()).ok()) {
    ASSERT_TRUE(absl::IsUnavailable(up.status())) << up.status();
    ASSERT_LT(absl::Now(), deadline) << "never reconnected: " << up.status();
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_EQ(up->images_size(), 1);
  EXPECT_EQ(up->images(0).id(), "sha256:back");
}

TEST_F(CriImageProxyTest, PullRecordsThePodsModeAndForwardsUnchanged) {
  fake_->pull_response.set_image_ref("sha256:ffff");
  v1::PullImageRequest request = Pull("registry.example:5000/ml/train:3", "lazy");
  auto pulled = client_->PullImage(request);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_EQ(pulled->image_ref(), "sha256:ffff");
  EXPECT_TRUE(MessageDifferencer::Equals(fake_->pull_request, request))
      << fake_->pull_request.DebugString();
  ModeSelector::Choice choice = modes_.ModeFor("registry.example:5000/ml/train:3");
  EXPECT_EQ(choice.mode, PullMode::kLazy);
  EXPECT_EQ(choice.source, ModeSource::kPodAnnotation);

  // A normalized spelling (as containerd's cri.image-ref label has it) finds the same choice.
  ASSERT_TRUE(client_->PullImage(Pull("busybox", "containerd")).ok());
  EXPECT_EQ(modes_.ModeFor("docker.io/library/busybox:latest").mode, PullMode::kContainerd);

  // A later pull without the annotation forgets the choice.
  ASSERT_TRUE(client_->PullImage(Pull("registry.example:5000/ml/train:3", "")).ok());
  EXPECT_EQ(modes_.ModeFor("registry.example:5000/ml/train:3").source, ModeSource::kDefault);
}

TEST_F(CriImageProxyTest, BadAnnotationIsInvalidArgumentAndNotForwarded) {
  auto pulled = client_->PullImage(Pull("busybox:1", "eager"));
  ASSERT_FALSE(pulled.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(pulled.status())) << pulled.status();
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("slipstream.io/pull-mode"));
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("\"eager\""));
  EXPECT_THAT(std::string(pulled.status().message()), HasSubstr("lazy, parallel, containerd"));
  EXPECT_EQ(fake_->calls(), 0);
  EXPECT_EQ(modes_.ModeFor("busybox:1").source, ModeSource::kDefault);
}

TEST_F(CriImageProxyTest, PullRecordsCredentialsWithoutLoggingThem) {
  const log::Level level = log::GetLevel();
  log::SetLevel(log::Level::kDebug);
  struct Case {
    std::string image, registry;
    v1::AuthConfig auth;
    remote::Credentials want;
    std::string kind;
  };
  std::vector<Case> cases(4);
  cases[0].image = "r1.example/app:1";
  cases[0].registry = "r1.example";
  cases[0].auth.set_username("alice");
  cases[0].auth.set_password("s3cret-pw-1");
  cases[0].want = {.username = "alice", .password = "s3cret-pw-1"};
  cases[0].kind = "username/password";
  cases[1].image = "R2.example:5000/app:1";
  cases[1].registry = "r2.example:5000";
  cases[1].auth.set_auth(absl::Base64Escape("bob:s3cret-pw-2"));
  cases[1].auth.set_server_address("r2.example:5000");
  cases[1].want = {.username = "bob", .password = "s3cret-pw-2"};
  cases[1].kind = "username/password";
  cases[2].image = "r3.example/app:1";
  cases[2].registry = "r3.example";
  cases[2].auth.set_identity_token("s3cret-identity");
  cases[2].want = {.identity_token = "s3cret-identity"};
  cases[2].kind = "identity token";
  cases[3].image = "app:1";
  cases[3].registry = "docker.io";
  cases[3].auth.set_registry_token("s3cret-registry-token");
  cases[3].want = {.registry_token = "s3cret-registry-token"};
  cases[3].kind = "registry token";
  for (const Case& c : cases) {
    v1::PullImageRequest request = Pull(c.image, "");
    *request.mutable_auth() = c.auth;
    ::testing::internal::CaptureStderr();
    auto pulled = client_->PullImage(request);
    std::string logged = ::testing::internal::GetCapturedStderr();
    ASSERT_TRUE(pulled.ok()) << pulled.status();
    auto got = credentials_.Lookup(c.registry);
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(*got, c.want) << c.image;
    EXPECT_TRUE(MessageDifferencer::Equals(fake_->pull_request, request)) << c.image;
    EXPECT_THAT(logged, HasSubstr(c.kind)) << logged;
    EXPECT_THAT(absl::AsciiStrToLower(logged), HasSubstr(c.registry)) << logged;
    EXPECT_THAT(logged, Not(HasSubstr("s3cret"))) << logged;
    EXPECT_THAT(logged, Not(HasSubstr(c.auth.auth().empty() ? "s3cret" : c.auth.auth())));
  }
  EXPECT_EQ(credentials_.size(), 4);

  // An `auth` that is not base64 "user:password" is not recorded; the pull still goes to
  // containerd, which answers it.
  v1::PullImageRequest bad = Pull("r4.example/app:1", "");
  bad.mutable_auth()->set_auth("%%%s3cret");
  ::testing::internal::CaptureStderr();
  EXPECT_TRUE(client_->PullImage(bad).ok());
  std::string logged = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(logged, HasSubstr("credentials not recorded"));
  EXPECT_THAT(logged, Not(HasSubstr("s3cret")));
  EXPECT_TRUE(credentials_.Lookup("r4.example")->empty());
  log::SetLevel(level);
}

TEST(CredentialsFromAuthConfigTest, Kinds) {
  v1::AuthConfig empty;
  auto none = CredentialsFromAuthConfig(empty);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  v1::AuthConfig colon;
  colon.set_auth(absl::Base64Escape("user:pa:ss"));
  auto c = CredentialsFromAuthConfig(colon);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->username, "user");
  EXPECT_EQ(c->password, "pa:ss");

  v1::AuthConfig no_colon;
  no_colon.set_auth(absl::Base64Escape("userpass"));
  auto bad = CredentialsFromAuthConfig(no_colon);
  EXPECT_TRUE(absl::IsInvalidArgument(bad.status()));
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr("userpass")));

  // Explicit username/password win over `auth`.
  v1::AuthConfig both;
  both.set_username("u");
  both.set_password("p");
  both.set_auth(absl::Base64Escape("other:x"));
  auto explicit_wins = CredentialsFromAuthConfig(both);
  ASSERT_TRUE(explicit_wins.ok());
  EXPECT_EQ(explicit_wins->username, "u");
}

}  // namespace
}  // namespace slipstream::plugin
