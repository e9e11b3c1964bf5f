// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/doctor.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"

namespace slipstream::cli {
namespace {

// The level of the finding called `name`, or nullopt when there is none.
std::optional<CheckLevel> LevelOf(const std::vector<CheckResult>& results, std::string_view name) {
  for (const CheckResult& r : results) {
    if (r.name == name) return r.level;
  }
  return std::nullopt;
}

std::string Describe(const std::vector<CheckResult>& results) {
  std::string s;
  for (const CheckResult& r : results) {
    absl::StrAppend(&s, static_cast<int>(r.level), " ", r.name, ": ", r.detail, "\n");
  }
  return s;
}

constexpr char kGoodV2[] = R"(version = 2
[proxy_plugins]
  [proxy_plugins.slipstream]
    type = "snapshot"
    address = "/run/slipstream/slipstream.sock"
[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "slipstream"
    disable_snapshot_annotations = false
)";

constexpr char kGoodV3[] = R"(version = 3
[proxy_plugins.slipstream]
  type = "snapshot"
  address = "/run/slipstream/slipstream.sock"
  exports = { enable_remote_snapshot_annotations = "true" }
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "slipstream"
  disable_snapshot_annotations = false
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/amd64"
  snapshotter = "slipstream"
)";

TEST(DoctorTest, ParsesContainerdVersions) {
  ContainerdVersion v = ParseContainerdVersion(
      "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3\n");
  EXPECT_EQ(v.major, 1);
  EXPECT_EQ(v.minor, 6);
  v = ParseContainerdVersion("containerd github.com/containerd/containerd/v2 v2.1.4 75cb2b7\n");
  EXPECT_EQ(v.major, 2);
  EXPECT_EQ(v.minor, 1);
  EXPECT_EQ(ParseContainerdVersion("nonsense").major, 0);
  EXPECT_EQ(ParseContainerdVersion("containerd x y.z").major, 0);
}

TEST(DoctorTest, GoodConfigsPass) {
  const DoctorOptions o;
  auto v2 = CheckContainerdConfig(kGoodV2, o, {1, 6});
  for (const CheckResult& r : v2) EXPECT_EQ(r.level, CheckLevel::kOk) << Describe(v2);
  EXPECT_EQ(LevelOf(v2, "containerd config: snapshot annotations"), CheckLevel::kOk);
  auto v3 = CheckContainerdConfig(kGoodV3, o, {2, 1});
  for (const CheckResult& r : v3) EXPECT_EQ(r.level, CheckLevel::kOk) << Describe(v3);
  EXPECT_EQ(LevelOf(v3, "containerd config: transfer service"), CheckLevel::kOk);
}

TEST(DoctorTest, CatchesDisabledSnapshotAnnotations) {
  std::string text = kGoodV2;
  text.replace(text.find("disable_snapshot_annotations = false"),
               std::strlen("disable_snapshot_annotations = false"),
               "disable_snapshot_annotations = true");
  auto r = CheckContainerdConfig(text, {}, {1, 6});
  EXPECT_EQ(LevelOf(r, "containerd config: snapshot annotations"), CheckLevel::kFail)
      << Describe(r);
  std::ostringstream out;
  for (const CheckResult& c : r) {
    if (c.level == CheckLevel::kFail) out << c.fix;
  }
  EXPECT_NE(out.str().find("disable_snapshot_annotations = false"), std::string::npos);
}

TEST(DoctorTest, AnnotationsSettingAtTheWrongLevelOrMissingFails) {
  // containerd 1.x reads the key only in the .containerd sub-table and defaults it to true.
  const std::string wrong_level = R"(version = 2
[proxy_plugins.slipstream]
  type = "snapshot"
  address = "/run/slipstream/slipstream.sock"
[plugins."io.containerd.grpc.v1.cri"]
  disable_snapshot_annotations = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "slipstream"
)";
  auto r = CheckContainerdConfig(wrong_level, {}, {1, 6});
  ASSERT_EQ(LevelOf(r, "containerd config: snapshot annotations"), CheckLevel::kFail);
  bool named = false;
  for (const CheckResult& c : r) named |= c.detail.find("ignores it") != std::string::npos;
  EXPECT_TRUE(named) << Describe(r);

  std::string missing = kGoodV2;
  missing.erase(missing.find("    disable_snapshot_annotations = false\n"));
  r = CheckContainerdConfig(missing, {}, {1, 6});
  EXPECT_EQ(LevelOf(r, "containerd config: snapshot annotations"), CheckLevel::kFail);
}

TEST(DoctorTest, Containerd21PullsThroughTheTransferService) {
  // Without disable_snapshot_annotations, 2.1+ CRI pulls through the transfer service: fine
  // with the proxy export and an unpack_config naming slipstream; 2.0 sends no labels then.
  std::string transfer = kGoodV3;
  transfer.erase(transfer.find("  disable_snapshot_annotations = false\n"),
                 std::strlen("  disable_snapshot_annotations = false\n"));
  auto r = CheckContainerdConfig(transfer, {}, {2, 1});
  for (const CheckResult& c : r) EXPECT_EQ(c.level, CheckLevel::kOk) << Describe(r);
  r = CheckContainerdConfig(transfer, {}, {2, 0});
  EXPECT_EQ(LevelOf(r, "containerd config: snapshot annotations"), CheckLevel::kFail)
      << Describe(r);

  // The transfer path without an unpack_config for slipstream unpacks elsewhere: a failure on
  // 2.1, only a warning where CRI pulls on its own path.
  std::string no_unpack = transfer.substr(0, transfer.find("[[plugins"));
  r = CheckContainerdConfig(no_unpack, {}, {2, 1});
  EXPECT_EQ(LevelOf(r, "containerd config: transfer service"), CheckLevel::kFail) << Describe(r);
  std::string local = kGoodV3;
  local = local.substr(0, local.find("[[plugins"));
  r = CheckContainerdConfig(local, {}, {2, 1});
  EXPECT_EQ(LevelOf(r, "containerd config: transfer service"), CheckLevel::kWarn) << Describe(r);
  EXPECT_EQ(LevelOf(r, "containerd config: snapshot annotations"), CheckLevel::kOk);
}

TEST(DoctorTest, CatchesProxyAndSnapshotterMistakes) {
  DoctorOptions o;
  o.address = "/elsewhere.sock";
  auto r = CheckContainerdConfig(kGoodV2, o, {1, 6});
  EXPECT_EQ(LevelOf(r, "containerd config: proxy plugin"), CheckLevel::kFail);

  auto no_proxy = CheckContainerdConfig("version = 2\n", {}, {1, 6});
  EXPECT_EQ(LevelOf(no_proxy, "containerd config: proxy plugin"), CheckLevel::kFail);
  EXPECT_EQ(LevelOf(no_proxy, "containerd config: CRI snapshotter"), CheckLevel::kFail);

  std::string v3 = kGoodV3;
  v3.erase(v3.find("  exports"), v3.find('\n', v3.find("  exports")) - v3.find("  exports") + 1);
  r = CheckContainerdConfig(v3, {}, {2, 1});
  EXPECT_EQ(LevelOf(r, "containerd config: remote snapshot annotations"), CheckLevel::kFail)
      << Describe(r);

  r = CheckContainerdConfig("version = 2\n[plugins\n", {}, {1, 6});
  EXPECT_EQ(LevelOf(r, "containerd config: syntax"), CheckLevel::kFail);
  r = CheckContainerdConfig("[plugins.cri]\n", {}, {1, 6});
  EXPECT_EQ(LevelOf(r, "containerd config: version"), CheckLevel::kFail);
}

class DoctorNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::Create("doctor-test-");
    ASSERT_TRUE(t.ok());
    tmp_.emplace(*std::move(t));
    o_.proc_filesystems = tmp_->Join("filesystems");
    o_.dev_fuse = "/dev/null";  // a character device, like /dev/fuse
    o_.containerd_config = tmp_->Join("config.toml");
    o_.containerd_bin = "/bin/false";
    o_.address = tmp_->Join("s.sock");
    o_.root = tmp_->path();
    ASSERT_TRUE(WriteFileAtomic(o_.proc_filesystems,
                                "nodev\tsysfs\nnodev\toverlay\nnodev\tfuse\n\text4\n")
                    .ok());
    std::string config = kGoodV2;
    const std::string default_address = "/run/slipstream/slipstream.sock";
    config.replace(config.find(default_address), default_address.size(), o_.address);
    ASSERT_TRUE(WriteFileAtomic(o_.containerd_config, config).ok());
  }

  // A listening unix socket at o_.address (closed with the fd).
  UniqueFd Listen() {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, o_.address.c_str(), o_.address.size() + 1);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd.get(), 4), 0);
    EXPECT_EQ(::chmod(o_.address.c_str(), 0660), 0);
    return fd;
  }

  std::optional<TempDir> tmp_;
  DoctorOptions o_;
};

TEST_F(DoctorNodeTest, HealthyNodePassesExceptTheMissingContainerdBinary) {
  UniqueFd listener = Listen();
  auto r = RunDoctorChecks(o_);
  EXPECT_EQ(LevelOf(r, "kernel: overlayfs"), CheckLevel::kOk) << Describe(r);
  EXPECT_EQ(LevelOf(r, "kernel: FUSE"), CheckLevel::kOk);
  EXPECT_EQ(LevelOf(r, "containerd: version"), CheckLevel::kWarn);  // /bin/false
  EXPECT_EQ(LevelOf(r, "slipstreamd: socket"), CheckLevel::kOk);
  EXPECT_EQ(LevelOf(r, "slipstreamd: root"), CheckLevel::kOk);
  std::ostringstream out;
  EXPECT_TRUE(Doctor(o_, /*json=*/false, out).ok()) << out.str();
  EXPECT_NE(out.str().find("[ok  ] kernel: overlayfs"), std::string::npos) << out.str();
}

TEST_F(DoctorNodeTest, MissingKernelFeaturesStaleSocketAndBadConfigFail) {
  ASSERT_TRUE(WriteFileAtomic(o_.proc_filesystems, "nodev\tsysfs\n\text4\n").ok());
  ASSERT_TRUE(WriteFileAtomic(o_.containerd_config,
                              "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".containerd]\n"
                              "disable_snapshot_annotations = true\n")
                  .ok());
  { UniqueFd gone = Listen(); }  // the socket file stays, nobody listens
  auto r = RunDoctorChecks(o_);
  EXPECT_EQ(LevelOf(r, "kernel: overlayfs"), CheckLevel::kFail) << Describe(r);
  EXPECT_EQ(LevelOf(r, "kernel: FUSE"), CheckLevel::kFail);
  EXPECT_EQ(LevelOf(r, "slipstreamd: socket"), CheckLevel::kFail);
  EXPECT_EQ(LevelOf(r, "containerd config: snapshot annotations"), CheckLevel::kFail);
  std::ostringstream out;
  absl::Status s = Doctor(o_, /*json=*/true, out);
  EXPECT_TRUE(absl::IsFailedPrecondition(s)) << s;
  EXPECT_NE(std::string(s.message()).find("snapshot annotations"), std::string::npos) << s;
  EXPECT_NE(out.str().find("\"level\": \"FAIL\""), std::string::npos) << out.str();
}

}  // namespace
}  // namespace slipstream::cli
