// SPDX-License-Identifier: Apache-2.0
// The daemon config's [cri] table and [[mode_rules]] array.
#include <string>

#include "cmd/daemon/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream::daemon {
namespace {

using ::testing::HasSubstr;

TEST(CriProxyConfigTest, Defaults) {
  auto c = ParseConfig("", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->cri.enable_image_service);
  EXPECT_EQ(c->cri.containerd_address, "/run/containerd/containerd.sock");
  EXPECT_EQ(c->cri.credential_ttl, absl::Hours(12));
  EXPECT_TRUE(c->mode_rules.empty());
}

TEST(CriProxyConfigTest, CriTableAndModeRulesParse) {
  auto c = ParseConfig(R"(default_mode = "containerd"
[cri]
enable_image_service = true
containerd_address = "/tmp/c.sock"
credential_ttl = "90m"

[[mode_rules]]
registry = "*.dkr.ecr.*.amazonaws.com"
repository = "ml/*"
mode = "lazy"

[[mode_rules]]
registry = "ghcr.io"
mode = "parallel"
)",
                       "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->cri.enable_image_service);
  EXPECT_EQ(c->cri.containerd_address, "/tmp/c.sock");
  EXPECT_EQ(c->cri.credential_ttl, absl::Minutes(90));
  ASSERT_EQ(c->mode_rules.size(), 2u);
  EXPECT_EQ(c->mode_rules[0].registry, "*.dkr.ecr.*.amazonaws.com");
  EXPECT_EQ(c->mode_rules[0].repository, "ml/*");
  EXPECT_EQ(c->mode_rules[0].mode, "lazy");
  EXPECT_EQ(c->mode_rules[1].registry, "ghcr.io");
  EXPECT_EQ(c->mode_rules[1].repository, "");
  EXPECT_EQ(c->mode_rules[1].mode, "parallel");
}

TEST(CriProxyConfigTest, ErrorsNameTheKey) {
  for (const auto& [text, want] : std::vector<std::pair<std::string, std::string>>{
           {"[cri]\nenable_image_service = \"yes\"\n", "cri.enable_image_service"},
           {"[cri]\ncredential_ttl = \"soon\"\n", "cri.credential_ttl"},
           {"[cri]\ncredential_ttl = \"-1h\"\n", "cri.credential_ttl"},
           {"[cri]\ncontainerd_address = \"\"\n", "cri.containerd_address"},
           {"[cri]\nbogus = 1\n", "unknown key cri.bogus"},
           {"[[mode_rules]]\nregistry = \"x\"\nmode = \"eager\"\n", "mode_rules[0].mode"},
           {"[[mode_rules]]\nregistry = \"x\"\n", "mode_rules[0]: no mode"},
           {"[[mode_rules]]\nmode = \"lazy\"\nimage = \"x\"\n", "unknown key mode_rules[0].image"},
           {"[[mode_rules]]\nmode = \"lazy\"\n[[mode_rules]]\nmode = 3\n", "mode_rules[1].mode"},
           {"mode_rules = 3\n", "mode_rules"},
       }) {
    auto c = ParseConfig(text, "t.toml");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_TRUE(absl::IsInvalidArgument(c.status())) << c.status();
    EXPECT_THAT(std::string(c.status().message()), HasSubstr(want)) << text;
  }
}

}  // namespace
}  // namespace slipstream::daemon
