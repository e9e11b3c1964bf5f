// SPDX-License-Identifier: Apache-2.0
// `slipstream status` against a real slipstreamd (the Daemon class) in parallel and lazy mode.
#include "cmd/cli/status.h"

#include <sstream>

#include "cmd/daemon/daemon.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace slipstream {
namespace {

class StatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::Create("status-test-");
    ASSERT_TRUE(t.ok());
    tmp_.emplace(*std::move(t));
  }
  std::unique_ptr<daemon::Daemon> Start(const std::string& mode) {
    daemon::DaemonConfig c;
    c.root = tmp_->Join("root-" + mode);
    c.address = tmp_->Join("s-" + mode + ".sock");
    c.default_mode = mode;
    auto d = daemon::Daemon::Start(c);
    EXPECT_TRUE(d.ok()) << d.status();
    return d.ok() ? *std::move(d) : nullptr;
  }
  std::optional<TempDir> tmp_;
};

TEST_F(StatusTest, ParallelModeReportsModeAndPulls) {
  auto d = Start("parallel");
  ASSERT_NE(d, nullptr);
  std::ostringstream out;
  ASSERT_TRUE(cli::Status(d->config().address, /*json=*/false, out).ok()) << out.str();
  EXPECT_NE(out.str().find("mode parallel, 0 parallel pulls started"), std::string::npos)
      << out.str();
  EXPECT_EQ(out.str().find("FUSE"), std::string::npos);
}

TEST_F(StatusTest, LazyModeReportsTheFuseMountAsJson) {
  auto d = Start("lazy");
  ASSERT_NE(d, nullptr);
  std::ostringstream out;
  ASSERT_TRUE(cli::Status(d->config().address, /*json=*/true, out).ok()) << out.str();
  auto doc = nlohmann::json::parse(out.str(), nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << out.str();
  EXPECT_EQ(doc["defaultMode"], "lazy");
  EXPECT_EQ(doc["fuseMount"], d->config().root + "/fuse");
  EXPECT_TRUE(doc["lazyLayers"].is_array());
  d->Shutdown();
}

TEST_F(StatusTest, NoDaemonIsUnavailableNamingTheSocket) {
  std::ostringstream out;
  absl::Status s = cli::Status(tmp_->Join("nobody.sock"), false, out);
  EXPECT_TRUE(absl::IsUnavailable(s)) << s;
  EXPECT_NE(std::string(s.message()).find("nobody.sock"), std::string::npos);
}

}  // namespace
}  // namespace slipstream
