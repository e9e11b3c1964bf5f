// SPDX-License-Identifier: Apache-2.0
// RuntimeCredentials: per-registry credentials from CRI pulls with an expiry (a fake clock),
// first in a ChainedCredentials ahead of other stores.
#include "plugin/runtime_credentials.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"

namespace slipstream::plugin {
namespace {

TEST(RuntimeCredentialsTest, ExpireAfterTheTtlAndRefreshWhenGivenAgain) {
  absl::Time now = absl::FromUnixSeconds(1'000'000);
  RuntimeCredentials store(absl::Hours(12), [&] { return now; });
  const remote::Credentials alice{.username = "alice", .password = "pw"};
  store.Record("registry.example", alice);
  EXPECT_EQ(*store.Lookup("registry.example"), alice);
  EXPECT_EQ(*store.Lookup("REGISTRY.example"), alice);  // hosts are case-insensitive
  EXPECT_TRUE(store.Lookup("other.example")->empty());

  now += absl::Hours(11);
  EXPECT_EQ(*store.Lookup("registry.example"), alice);
  store.Record("registry.example", alice);  // kubelet pulls again: another 12 h
  now += absl::Hours(11);
  EXPECT_EQ(*store.Lookup("registry.example"), alice);
  EXPECT_EQ(store.size(), 1);
  now += absl::Hours(1);
  EXPECT_TRUE(store.Lookup("registry.example")->empty());
  EXPECT_EQ(store.size(), 0);
}

TEST(RuntimeCredentialsTest, EmptyCredentialsAreIgnoredAndNewOnesReplace) {
  RuntimeCredentials store(absl::Hours(1));
  store.Record("r.example", {});
  EXPECT_EQ(store.size(), 0);
  store.Record("r.example", {.username = "a", .password = "1"});
  store.Record("r.example", {.registry_token = "tok"});
  EXPECT_EQ(*store.Lookup("r.example"), remote::Credentials{.registry_token = "tok"});
}

TEST(RuntimeCredentialsTest, ComeFirstInTheChain) {
  auto runtime = std::make_shared<RuntimeCredentials>(absl::Hours(1));
  auto on_disk = std::make_unique<remote::StaticCredentials>();
  on_disk->Set("r.example", {.username = "disk", .password = "d"});
  on_disk->Set("only-disk.example", {.username = "disk", .password = "d"});
  std::vector<std::unique_ptr<remote::CredentialStore>> chain;
  chain.push_back(std::make_unique<SharedCredentials>(runtime));
  chain.push_back(std::move(on_disk));
  remote::ChainedCredentials chained(std::move(chain));

  EXPECT_EQ(chained.Lookup("r.example")->username, "disk");
  runtime->Record("r.example", {.username = "kubelet", .password = "k"});
  EXPECT_EQ(chained.Lookup("r.example")->username, "kubelet");
  EXPECT_EQ(chained.Lookup("only-disk.example")->username, "disk");
}

TEST(CredentialKindTest, NamesTheKindNeverTheSecret) {
  EXPECT_STREQ(CredentialKind({}), "none");
  EXPECT_STREQ(CredentialKind({.username = "u", .password = "p"}), "username/password");
  EXPECT_STREQ(CredentialKind({.identity_token = "t"}), "identity token");
  EXPECT_STREQ(CredentialKind({.registry_token = "t"}), "registry token");
}

}  // namespace
}  // namespace slipstream::plugin
