// SPDX-License-Identifier: Apache-2.0
// RunOnce against the fake runtime: the pod and container it asks for, the output it reads
// back from the CRI log, and cleanup on every path.
#include "cri/run_once.h"

#include <sys/stat.h>

#include <memory>

#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cri/fake_cri_server.h"

namespace slipstream::cri {
namespace {

using ::testing::ElementsAre;
using testing::FakeCriServer;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kImage[] = "reg/busybox:1";

std::string Record(const std::string& stream, const std::string& tag, const std::string& text) {
  return "2024-05-01T10:11:12.1Z " + stream + " " + tag + " " + text + "\n";
}

class RunOnceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("cri-run-");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    auto fake = FakeCriServer::Start(tmp_->Join("cri.sock"));
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    auto client = CriClient::Connect({.runtime_endpoint = tmp_->Join("cri.sock")});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    options_.poll_interval = absl::ZeroDuration();
    options_.log_parent = tmp_->path();
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<FakeCriServer> fake_;
  std::unique_ptr<CriClient> client_;
  RunOptions options_;
};

TEST_F(RunOnceTest, PullsRunsReadsTheLogAndCleansUp) {
  fake_->SetContainerScript(Record("stdout", "P", "hello ") + Record("stderr", "F", "warn") +
                                Record("stdout", "F", "world"),
                            /*polls_before_exit=*/2, /*exit_code=*/3);
  options_.annotations = {{"slipstream.io/pull-mode", "parallel"}};
  options_.env = {{"A", "1"}};
  auto result = RunOnce(*client_, kImage, {"/bin/cat", "/etc/hello.txt"}, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 3);
  EXPECT_EQ(result->reason, "Error");
  EXPECT_EQ(result->stdout_data, "hello world\n");
  EXPECT_EQ(result->stderr_data, "warn\n");
  EXPECT_EQ(result->sandbox_id, "pod-1");
  EXPECT_EQ(result->container_id, "ctr-2");
  EXPECT_THAT(
      fake_->calls(),
      ElementsAre("ImageStatus reg/busybox:1", "PullImage reg/busybox:1", "RunPodSandbox",
                  "CreateContainer pod-1", "StartContainer ctr-2", "ContainerStatus ctr-2",
                  "ContainerStatus ctr-2", "ContainerStatus ctr-2", "StopContainer ctr-2",
                  "RemoveContainer ctr-2", "StopPodSandbox pod-1", "RemovePodSandbox pod-1"));

  // The pod lives in the node's network namespace, without a hostname, logging into a
  // temporary directory that is gone afterwards.
  v1::PodSandboxConfig pod = fake_->last_run_pod().config();
  EXPECT_EQ(pod.linux().security_context().namespace_options().network(), v1::NODE);
  EXPECT_EQ(pod.hostname(), "");
  EXPECT_EQ(pod.annotations().at("slipstream.io/pull-mode"), "parallel");
  EXPECT_FALSE(pod.metadata().uid().empty());
  EXPECT_THAT(pod.log_directory(), HasSubstr(tmp_->path()));
  struct stat st;
  EXPECT_NE(::stat(pod.log_directory().c_str(), &st), 0) << "log directory left behind";
  // The pull carried the pod's annotations.
  EXPECT_EQ(fake_->last_pull().sandbox_config().annotations().at("slipstream.io/pull-mode"),
            "parallel");

  v1::CreateContainerRequest create = fake_->last_create();
  EXPECT_EQ(create.config().image().image(), kImage);
  EXPECT_THAT(create.config().command(), ElementsAre("/bin/cat", "/etc/hello.txt"));
  EXPECT_TRUE(create.config().args().empty());
  EXPECT_FALSE(create.config().log_path().empty());
  ASSERT_EQ(create.config().envs_size(), 1);
  EXPECT_EQ(create.config().envs(0).key(), "A");
  EXPECT_EQ(create.sandbox_config().log_directory(), pod.log_directory());
  EXPECT_EQ(fake_->last_stop_container().timeout(), 0);
}

TEST_F(RunOnceTest, PresentImageIsNotPulled) {
  fake_->AddImage(kImage, "sha256:1", 1);
  fake_->SetContainerScript(Record("stdout", "F", "x"), 0, 0);
  auto result = RunOnce(*client_, kImage, {"/bin/true"}, options_);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(result->stdout_data, "x\n");
  for (const std::string& call : fake_->calls()) EXPECT_THAT(call, Not(HasSubstr("PullImage")));
}

TEST_F(RunOnceTest, FailedStartStillRemovesContainerAndSandbox) {
  fake_->AddImage(kImage, "sha256:1", 1);
  fake_->FailRpc("StartContainer",
                 grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "exec: no such file"));
  auto result = RunOnce(*client_, kImage, {"/nope"}, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("StartContainer"));
  EXPECT_THAT(result.status().message(), HasSubstr("exec: no such file"));
  EXPECT_THAT(fake_->calls(),
              ElementsAre("ImageStatus reg/busybox:1", "RunPodSandbox", "CreateContainer pod-1",
                          "StartContainer ctr-2", "StopContainer ctr-2", "RemoveContainer ctr-2",
                          "StopPodSandbox pod-1", "RemovePodSandbox pod-1"));
}

TEST_F(RunOnceTest, FailedSandboxLeavesNothingToClean) {
  fake_->AddImage(kImage, "sha256:1", 1);
  fake_->FailRpc("RunPodSandbox", grpc::Status(grpc::StatusCode::UNKNOWN, "no pause image"));
  auto result = RunOnce(*client_, kImage, {"/bin/true"}, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnknown);
  EXPECT_THAT(fake_->calls(), ElementsAre("ImageStatus reg/busybox:1", "RunPodSandbox"));
}

TEST_F(RunOnceTest, FailedCreateRemovesTheSandbox) {
  fake_->AddImage(kImage, "sha256:1", 1);
  fake_->FailRpc("CreateContainer", grpc::Status(grpc::StatusCode::NOT_FOUND, "no image"));
  auto result = RunOnce(*client_, kImage, {"/bin/true"}, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(fake_->calls(),
              ElementsAre("ImageStatus reg/busybox:1", "RunPodSandbox", "CreateContainer pod-1",
                          "StopPodSandbox pod-1", "RemovePodSandbox pod-1"));
}

TEST_F(RunOnceTest, ContainerThatNeverExitsTimesOutAndIsCleanedUp) {
  fake_->AddImage(kImage, "sha256:1", 1);
  fake_->SetContainerScript("", /*polls_before_exit=*/1000000, 0);
  options_.exit_timeout = absl::ZeroDuration();
  auto result = RunOnce(*client_, kImage, {"/bin/sleep", "1000"}, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("CONTAINER_RUNNING"));
  std::vector<std::string> calls = fake_->calls();
  ASSERT_GE(calls.size(), 4u);
  EXPECT_THAT(std::vector<std::string>(calls.end() - 4, calls.end()),
              ElementsAre("StopContainer ctr-2", "RemoveContainer ctr-2", "StopPodSandbox pod-1",
                          "RemovePodSandbox pod-1"));
}

TEST_F(RunOnceTest, CleanupFailureAfterASuccessfulRunIsReported) {
  fake_->AddImage(kImage, "sha256:1", 1);
  fake_->SetContainerScript(Record("stdout", "F", "x"), 0, 0);
  fake_->FailRpc("StopPodSandbox", grpc::Status(grpc::StatusCode::INTERNAL, "netns busy"));
  auto result = RunOnce(*client_, kImage, {"/bin/true"}, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(result.status().message(), HasSubstr("cleanup"));
  EXPECT_THAT(result.status().message(), HasSubstr("netns busy"));
  // Removal was still attempted after the failed stop.
  EXPECT_EQ(fake_->calls().back(), "RemovePodSandbox pod-1");
}

TEST_F(RunOnceTest, MalformedLogIsAnError) {
  fake_->AddImage(kImage, "sha256:1", 1);
  fake_->SetContainerScript("not a cri log line\n", 0, 0);
  auto result = RunOnce(*client_, kImage, {"/bin/true"}, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fake_->calls().back(), "RemovePodSandbox pod-1");
}

TEST_F(RunOnceTest, EmptyCommandIsRejectedBeforeAnyRpc) {
  auto result = RunOnce(*client_, kImage, {}, options_);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fake_->calls().empty());
}

TEST(HostNetworkPodConfigTest, FieldsAndFreshUids) {
  v1::PodSandboxConfig a = HostNetworkPodConfig("p", "ns", {{"k", "v"}}, "/logs");
  v1::PodSandboxConfig b = HostNetworkPodConfig("p", "ns", {}, "");
  EXPECT_EQ(a.metadata().name(), "p");
  EXPECT_EQ(a.metadata().namespace_(), "ns");
  EXPECT_EQ(a.log_directory(), "/logs");
  EXPECT_EQ(a.annotations().at("k"), "v");
  EXPECT_EQ(a.linux().security_context().namespace_options().network(), v1::NODE);
  EXPECT_TRUE(a.hostname().empty());
  EXPECT_NE(a.metadata().uid(), b.metadata().uid());
  EXPECT_EQ(a.metadata().uid().size(), 32u);
}

}  // namespace
}  // namespace slipstream::cri
