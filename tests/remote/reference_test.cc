// SPDX-License-Identifier: Apache-2.0
#include "remote/reference.h"

#include <string>

#include <gtest/gtest.h>

namespace slipstream::remote {
namespace {

constexpr char kDigest[] =
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct ParseCase {
  std::string input;
  std::string registry, repository, tag, digest;
  std::string canonical;
};

class ReferenceParseTest : public testing::TestWithParam<ParseCase> {};

TEST_P(ReferenceParseTest, Normalizes) {
  const ParseCase& c = GetParam();
  auto ref = Reference::Parse(c.input);
  ASSERT_TRUE(ref.ok()) << c.input << ": " << ref.status();
  EXPECT_EQ(ref->registry, c.registry);
  EXPECT_EQ(ref->repository, c.repository);
  EXPECT_EQ(ref->tag, c.tag);
  EXPECT_EQ(ref->digest, c.digest);
  EXPECT_EQ(ref->String(), c.canonical);
  // The canonical form parses back to the same reference.
  auto again = Reference::Parse(ref->String());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *ref);
}

const std::string D = kDigest;

INSTANTIATE_TEST_SUITE_P(
    Docker, ReferenceParseTest,
    testing::Values(
        ParseCase{"ubuntu", "docker.io", "library/ubuntu", "latest", "",
                  "docker.io/library/ubuntu:latest"},
        ParseCase{"ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", "",
                  "docker.io/library/ubuntu:22.04"},
        ParseCase{"library/ubuntu", "docker.io", "library/ubuntu", "latest", "",
                  "docker.io/library/ubuntu:latest"},
        ParseCase{"docker.io/ubuntu", "docker.io", "library/ubuntu", "latest", "",
                  "docker.io/library/ubuntu:latest"},
        ParseCase{"index.docker.io/library/ubuntu:20.04", "docker.io", "library/ubuntu",
                  "20.04", "", "docker.io/library/ubuntu:20.04"},
        ParseCase{"bitnami/redis:7.2", "docker.io", "bitnami/redis", "7.2", "",
                  "docker.io/bitnami/redis:7.2"},
        ParseCase{"ghcr.io/org/team/app:v1.2.3", "ghcr.io", "org/team/app", "v1.2.3", "",
                  "ghcr.io/org/team/app:v1.2.3"},
        ParseCase{"ghcr.io/app", "ghcr.io", "app", "latest", "", "ghcr.io/app:latest"},
        ParseCase{"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest"},
        ParseCase{"localhost:5000/app:dev", "localhost:5000", "app", "dev", "",
                  "localhost:5000/app:dev"},
        ParseCase{"127.0.0.1:5000/a/b", "127.0.0.1:5000", "a/b", "latest", "",
                  "127.0.0.1:5000/a/b:latest"},
        ParseCase{"[::1]:5000/app:x", "[::1]:5000", "app", "x", "", "[::1]:5000/app:x"},
        ParseCase{"registry:5000/app", "registry:5000", "app", "latest", "",
                  "registry:5000/app:latest"},
        ParseCase{"ubuntu@" + D, "docker.io", "library/ubuntu", "", D,
                  "docker.io/library/ubuntu@" + D},
        ParseCase{"ubuntu:22.04@" + D, "docker.io", "library/ubuntu", "22.04", D,
                  "docker.io/library/ubuntu:22.04@" + D},
        ParseCase{"123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:2024-01-01_abc",
                  "123456789012.dkr.ecr.us-east-1.amazonaws.com", "team/app",
                  "2024-01-01_abc",
                  "", "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:2024-01-01_abc"},
        ParseCase{"a/b__c.d-e---f", "docker.io", "a/b__c.d-e---f", "latest", "",
                  "docker.io/a/b__c.d-e---f:latest"},
        ParseCase{"app:_TAG.x-1", "docker.io", "library/app", "_TAG.x-1", "",
                  "docker.io/library/app:_TAG.x-1"}));

class ReferenceRejectTest : public testing::TestWithParam<std::string> {};

TEST_P(ReferenceRejectTest, InvalidArgument) {
  auto ref = Reference::Parse(GetParam());
  ASSERT_FALSE(ref.ok()) << GetParam() << " parsed as " << ref->String();
  EXPECT_EQ(ref.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ref.status().message().find("invalid image reference"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, ReferenceRejectTest,
    testing::Values("", ":", "@", "ubuntu:", "ubuntu@", "ubuntu@sha256:abc",
                    "ubuntu@md5:0123456789abcdef0123456789abcdef", "Ubuntu", "docker.io/Ubuntu",
                    "ubuntu:-bad", "ubuntu:.bad", "ubuntu:a/b", "/ubuntu", "ubuntu/",
                    "a//b", "-a", "a-", "a..b", "a___b", "a._b", "ghcr.io/", "ghcr.io:/x",
                    "ghcr.io:abc/x", "-ghcr.io/x", "ghcr.io-/x", "gh_cr.io/x", "[::1/x",
                    "[zz]:5000/x", "localhost:123456/x", "ubuntu latest", "ubuntu\n",
                    std::string("ubu\0ntu", 7), "ubuntu:" + std::string(129, 'a'),
                    "docker.io/" + std::string(250, 'a'),
                    std::string(64, 'a'),  // looks like an image ID
                    "\xff\xfe", "a/b:c:d"));

TEST(ReferenceTest, LongTagAndNameLimits) {
  EXPECT_TRUE(Reference::Parse("ubuntu:" + std::string(128, 'a')).ok());
  // registry/repository together may be 255 characters.
  std::string repo(255 - std::string("ghcr.io/").size(), 'b');
  EXPECT_TRUE(Reference::Parse("ghcr.io/" + repo).ok());
  EXPECT_FALSE(Reference::Parse("ghcr.io/" + repo + "b").ok());
}

TEST(ReferenceTest, ErrorQuotesInputSafely) {
  std::string hostile = "bad\x01" + std::string(5000, 'X');
  auto ref = Reference::Parse(hostile);
  ASSERT_FALSE(ref.ok());
  EXPECT_LT(ref.status().message().size(), 500u);
  EXPECT_NE(ref.status().message().find("\\x01"), std::string::npos);
}

TEST(ReferenceTest, Accessors) {
  auto ref = Reference::Parse("ghcr.io/org/app:v1");
  ASSERT_TRUE(ref.ok());
  EXPECT_EQ(ref->Locator(), "ghcr.io/org/app");
  EXPECT_EQ(ref->TagOrDigest(), "v1");
  Reference pinned = ref->WithDigest(kDigest);
  EXPECT_EQ(pinned.tag, "v1");
  EXPECT_EQ(pinned.TagOrDigest(), kDigest);
  EXPECT_EQ(pinned.String(), std::string("ghcr.io/org/app:v1@") + kDigest);
  EXPECT_EQ(ref->digest, "");  // the original is unchanged
}

TEST(ReferenceTest, DefaultServer) {
  EXPECT_EQ(DefaultServer("docker.io"), "registry-1.docker.io");
  EXPECT_EQ(DefaultServer("ghcr.io"), "ghcr.io");
  EXPECT_EQ(DefaultServer("localhost:5000"), "localhost:5000");
}

}  // namespace
}  // namespace slipstream::remote
