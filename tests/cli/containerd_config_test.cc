// SPDX-License-Identifier: Apache-2.0
// `slipstream containerd-config enable`: a node's own containerd config, changed only where
// slipstream needs it, passes doctor's config checks, and a second run changes nothing.
#include "cmd/cli/containerd_config.h"

#include <sstream>

#include "cmd/cli/doctor.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream::cli {
namespace {

using ::testing::HasSubstr;

// Doctor's config checks that fail for `text` on containerd `version` (empty: none fail).
std::vector<std::string> Failures(const std::string& text, ContainerdVersion version) {
  std::vector<std::string> out;
  for (const CheckResult& r : CheckContainerdConfig(text, DoctorOptions{}, version)) {
    if (r.level == CheckLevel::kFail) out.push_back(r.name + ": " + r.detail);
  }
  return out;
}

// A containerd 1.6 node config as operators have them: CRI set up, but not for slipstream
// (annotations at their default, which is off), plus keys slipstream must not touch.
constexpr char kNode16[] = R"(version = 2
root = "/var/lib/containerd"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.9"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "/etc/containerd/certs.d"
)";

// containerd 2.x, with an unpack_config entry for another platform that must stay.
constexpr char kNode21[] = R"(version = 3
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "registry.k8s.io/pause:3.10"
[[plugins."io.containerd.transfer.v1.local".unpack_config]]
  platform = "linux/arm64"
  snapshotter = "overlayfs"
)";

TEST(ContainerdConfigTest, Version2ConfigGetsProxySnapshotterAndAnnotations) {
  ASSERT_FALSE(Failures(kNode16, {1, 6}).empty());  // doctor rejects the node's own config
  auto enabled = EnableSlipstream(kNode16, {});
  ASSERT_TRUE(enabled.ok()) << enabled.status();
  EXPECT_THAT(Failures(*enabled, {1, 6}), ::testing::IsEmpty()) << *enabled;
  EXPECT_THAT(Failures(*enabled, {1, 7}), ::testing::IsEmpty()) << *enabled;
  // The operator's other keys are still there.
  EXPECT_THAT(*enabled, HasSubstr("sandbox_image = 'registry.k8s.io/pause:3.9'"));
  EXPECT_THAT(*enabled, HasSubstr("default_runtime_name = 'runc'"));
  EXPECT_THAT(*enabled, HasSubstr("config_path = '/etc/containerd/certs.d'"));
  auto again = EnableSlipstream(*enabled, {});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *enabled);
}

TEST(ContainerdConfigTest, Version3ConfigGetsTheTransferServiceAndExports) {
  ASSERT_FALSE(Failures(kNode21, {2, 1}).empty());
  auto enabled = EnableSlipstream(kNode21, {.address = "/run/s.sock", .platform = "linux/amd64"});
  ASSERT_TRUE(enabled.ok()) << enabled.status();
  DoctorOptions o;
  o.address = "/run/s.sock";
  std::vector<std::string> failures;
  for (const CheckResult& r : CheckContainerdConfig(*enabled, o, {2, 1})) {
    if (r.level == CheckLevel::kFail) failures.push_back(r.name + ": " + r.detail);
  }
  EXPECT_THAT(failures, ::testing::IsEmpty()) << *enabled;
  EXPECT_THAT(*enabled, HasSubstr("platform = 'linux/arm64'"));  // the other entry stays
  EXPECT_THAT(*enabled, HasSubstr("sandbox = 'registry.k8s.io/pause:3.10'"));
  auto again = EnableSlipstream(*enabled, {.address = "/run/s.sock", .platform = "linux/amd64"});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *enabled);
}

TEST(ContainerdConfigTest, BadConfigsAreClearErrors) {
  auto syntax = EnableSlipstream("version = 2\n[plugins\n", {});
  EXPECT_TRUE(absl::IsInvalidArgument(syntax.status()));
  EXPECT_THAT(syntax.status().message(), HasSubstr("line 2"));
  EXPECT_THAT(EnableSlipstream("version = 7\n", {}).status().message(),
              HasSubstr("version 7 is not 1, 2 or 3"));
  EXPECT_THAT(EnableSlipstream("version = 2\nproxy_plugins = 3\n", {}).status().message(),
              HasSubstr("proxy_plugins is not a table"));
}

TEST(ContainerdConfigTest, FileIsBackedUpOnceAndASecondRunChangesNothing) {
  auto tmp = TempDir::Create("ctd-config-");
  ASSERT_TRUE(tmp.ok());
  const std::string path = tmp->Join("config.toml");
  ASSERT_TRUE(WriteFileAtomic(path, kNode16).ok());
  std::ostringstream report;
  ASSERT_TRUE(EnableSlipstreamInFile(path, "", {}, report).ok()) << report.str();
  EXPECT_THAT(report.str(), HasSubstr("set up for slipstream"));
  EXPECT_EQ(*ReadFileToString(path + ".before-slipstream"), kNode16);
  const std::string first = *ReadFileToString(path);
  std::ostringstream second;
  ASSERT_TRUE(EnableSlipstreamInFile(path, "", {}, second).ok());
  EXPECT_THAT(second.str(), HasSubstr("unchanged"));
  EXPECT_EQ(*ReadFileToString(path), first);
  EXPECT_EQ(*ReadFileToString(path + ".before-slipstream"), kNode16);
  EXPECT_FALSE(EnableSlipstreamInFile(tmp->Join("missing.toml"), "", {}, second).ok());
}

}  // namespace
}  // namespace slipstream::cli
