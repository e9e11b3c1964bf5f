// SPDX-License-Identifier: Apache-2.0
// The `slipstream cri` subcommands against the fake runtime: what they send and print.
#include "cmd/cli/cri_cmd.h"

#include <memory>
#include <sstream>

#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cri/fake_cri_server.h"

namespace slipstream::cli {
namespace {

using cri::testing::FakeCriServer;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class CriCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto tmp = TempDir::Create("cri-cmd-");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    auto fake = FakeCriServer::Start(tmp_->Join("cri.sock"));
    ASSERT_TRUE(fake.ok()) << fake.status();
    fake_ = std::move(*fake);
    auto client = cri::CriClient::Connect({.runtime_endpoint = tmp_->Join("cri.sock")});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  // Parses `args` as the CLI would and runs the command; returns its exit status.
  absl::StatusOr<int> RunCli(std::vector<std::string> args) {
    CLI::App app;
    CriCommand cmd;
    cmd.Register(&app);
    args.insert(args.begin(), "slipstream");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return absl::InvalidArgumentError(e.what());
    }
    return cmd.Run(out_, err_);
  }

  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<FakeCriServer> fake_;
  std::unique_ptr<cri::CriClient> client_;
  std::ostringstream out_, err_;
};

TEST_F(CriCmdTest, PullSendsAnnotationsAndAuthAndPrintsRefAndTime) {
  auto code =
      RunCli({"cri", "pull", "reg/a:1", "--endpoint", tmp_->Join("cri.sock"), "--annotation",
              "slipstream.io/pull-mode=lazy", "--annotation", "x=a=b", "--auth", "user:pa:ss"});
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 0);
  cri::v1::PullImageRequest pull = fake_->last_pull();
  EXPECT_EQ(pull.image().image(), "reg/a:1");
  EXPECT_EQ(pull.auth().username(), "user");
  EXPECT_EQ(pull.auth().password(), "pa:ss");
  EXPECT_EQ(pull.sandbox_config().annotations().at("slipstream.io/pull-mode"), "lazy");
  EXPECT_EQ(pull.sandbox_config().annotations().at("x"), "a=b");
  EXPECT_THAT(out_.str(), MatchesRegex("Pulled reg/a:1 as sha256:a+ in [0-9]+\\.[0-9][0-9] s\n"));
}

TEST_F(CriCmdTest, BadFlagValuesAreInvalidArgument) {
  EXPECT_EQ(CriPull(*client_, "reg/a:1", {}, "no-colon", out_).code(),
            absl::StatusCode::kInvalidArgument);
  auto code = RunCli(
      {"cri", "pull", "reg/a:1", "--endpoint", tmp_->Join("cri.sock"), "--annotation", "novalue"});
  EXPECT_EQ(code.status().code(), absl::StatusCode::kInvalidArgument);
  code = RunCli({"cri", "images", "--endpoint", "relative.sock"});
  EXPECT_EQ(code.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fake_->calls().empty());
}

TEST_F(CriCmdTest, ImagesListsEveryTag) {
  fake_->AddImage("reg/b:2", "sha256:0123456789abcdef", 3 << 20);
  fake_->AddImage("reg/a:1", "sha256:fedcba9876543210", 512);
  ASSERT_TRUE(CriImages(*client_, out_).ok());
  std::string text = out_.str();
  EXPECT_THAT(text, HasSubstr("IMAGE"));
  EXPECT_THAT(text, HasSubstr("reg/a:1  fedcba987654"));
  EXPECT_THAT(text, HasSubstr("reg/b:2  0123456789ab"));
  EXPECT_LT(text.find("reg/a:1"), text.find("reg/b:2"));
}

TEST_F(CriCmdTest, RmiRemovesOrSaysNotFound) {
  fake_->AddImage("reg/a:1", "sha256:1", 1);
  auto code = RunCli({"cri", "rmi", "reg/a:1", "--endpoint", tmp_->Join("cri.sock")});
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(out_.str(), "Deleted: reg/a:1\n");
  EXPECT_FALSE(fake_->HasImage("reg/a:1"));
  EXPECT_EQ(CriRemoveImage(*client_, "reg/a:1", out_).code(), absl::StatusCode::kNotFound);
}

TEST_F(CriCmdTest, RunPrintsOutputAndReturnsTheExitCode) {
  fake_->AddImage("reg/a:1", "sha256:1", 1);
  fake_->SetContainerScript(
      "2024-05-01T10:11:12Z stdout F out\n"
      "2024-05-01T10:11:12Z stderr F err\n",
      0, 42);
  auto code = RunCli({"cri", "run", "reg/a:1", "--endpoint", tmp_->Join("cri.sock"), "--env", "K=V",
                      "--", "/bin/sh", "-c", "exit 42"});
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(*code, 42);
  EXPECT_EQ(out_.str(), "out\n");
  EXPECT_EQ(err_.str(), "err\n");
  cri::v1::CreateContainerRequest create = fake_->last_create();
  EXPECT_THAT(create.config().command(), ::testing::ElementsAre("/bin/sh", "-c", "exit 42"));
  EXPECT_EQ(create.config().envs(0).value(), "V");
}

TEST_F(CriCmdTest, RunPrintsWhenTheFirstOutputWasLogged) {
  fake_->AddImage("reg/a:1", "sha256:1", 1);
  fake_->SetContainerScript("2024-05-01T10:11:12.25Z stdout F out\n", 0, 0);
  auto code = RunCli({"cri", "run", "reg/a:1", "--endpoint", tmp_->Join("cri.sock"),
                      "--output-time", "--", "/bin/true"});
  ASSERT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(out_.str(), "out\n");
  EXPECT_EQ(err_.str(), "first output: 1714558272250000000\n");
}

}  // namespace
}  // namespace slipstream::cli
