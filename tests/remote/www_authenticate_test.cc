// SPDX-License-Identifier: Apache-2.0
#include "remote/www_authenticate.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace slipstream::remote {
namespace {

using Params = std::map<std::string, std::string>;

TEST(WwwAuthenticateTest, DockerHub) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull")");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].scheme, "bearer");
  EXPECT_EQ((*c)[0].params, (Params{{"realm", "https://auth.docker.io/token"},
                                    {"service", "registry.docker.io"},
                                    {"scope", "repository:library/ubuntu:pull"}}));
  EXPECT_EQ((*c)[0].Param("service"), "registry.docker.io");
  EXPECT_EQ((*c)[0].Param("error"), "");
}

TEST(WwwAuthenticateTest, Ghcr) {
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull")");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0].Param("realm"), "https://ghcr.io/token");
  EXPECT_EQ((*c)[0].Param("scope"), "repository:user/image:pull");
}

TEST(WwwAuthenticateTest, InsufficientScopeWithMultipleScopes) {
  // Scopes are space-separated inside one quoted string; an action list has commas.
  auto c = ParseWwwAuthenticate(
      R"(Bearer realm="https://auth.example.com/token", service="registry.example.com", )"
      R"(scope="repository:a/b:pull,push repository:c/d:pull", error="insufficient_scope")");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].Param("scope"), "repository:a/b:pull,push repository:c/d:pull");
  EXPECT_EQ((*c)[0].Param("error"), "insufficient_scope");
}

TEST(WwwAuthenticateTest, BasicEcrAndLowercaseTokens) {
  auto c = ParseWwwAuthenticate(
      R"(Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",service="ecr.amazonaws.com")");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0].scheme, "basic");
  auto unquoted = ParseWwwAuthenticate("bearer REALM=Registry , Service = reg.example");
  ASSERT_TRUE(unquoted.ok()) << unquoted.status();
  EXPECT_EQ((*unquoted)[0].params, (Params{{"realm", "Registry"}, {"service", "reg.example"}}));
  // A URL is not a token: unquoted, it is malformed (RFC 7235 requires quoting it).
  EXPECT_FALSE(ParseWwwAuthenticate("Bearer realm=https://x/token").ok());
}

TEST(WwwAuthenticateTest, SeveralChallenges) {
  auto c = ParseWwwAuthenticate(
      R"(Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple")");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 2u);
  EXPECT_EQ((*c)[0].scheme, "newauth");
  EXPECT_EQ((*c)[0].params,
            (Params{{"realm", "apps"}, {"type", "1"}, {"title", "Login to \"apps\""}}));
  EXPECT_EQ((*c)[1].scheme, "basic");
  EXPECT_EQ((*c)[1].Param("realm"), "simple");
}

TEST(WwwAuthenticateTest, Token68AndBareSchemes) {
  auto c = ParseWwwAuthenticate("Negotiate, NTLM abc+/def==, Bearer realm=\"r\", Foo");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 4u);
  EXPECT_EQ((*c)[0].scheme, "negotiate");
  EXPECT_TRUE((*c)[0].params.empty());
  EXPECT_EQ((*c)[1].scheme, "ntlm");
  EXPECT_EQ((*c)[1].token68, "abc+/def==");
  EXPECT_EQ((*c)[2].Param("realm"), "r");
  EXPECT_EQ((*c)[3].scheme, "foo");
}

TEST(WwwAuthenticateTest, EscapesCommasAndEmptyElements) {
  auto c = ParseWwwAuthenticate(R"(, ,Bearer realm="a,b\\c\"d",,  scope="x" ,)");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->size(), 1u);
  EXPECT_EQ((*c)[0].Param("realm"), R"(a,b\c"d)");
  EXPECT_EQ((*c)[0].Param("scope"), "x");
}

TEST(WwwAuthenticateTest, FirstRepeatedParamWins) {
  auto c = ParseWwwAuthenticate(R"(Bearer realm="https://good/token",realm="https://evil/")");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*c)[0].Param("realm"), "https://good/token");
}

TEST(WwwAuthenticateTest, NameEqualsAloneIsToken68) {
  // RFC 7235: "realm=" has no value, so it can only be a token68.
  auto c = ParseWwwAuthenticate("Bearer realm=");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0].token68, "realm=");
  EXPECT_TRUE((*c)[0].params.empty());
}

TEST(WwwAuthenticateTest, EmptyQuotedValue) {
  auto c = ParseWwwAuthenticate(R"(Bearer realm="",service="")");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ((*c)[0].params.size(), 2u);
  EXPECT_EQ((*c)[0].Param("realm"), "");
}

class WwwAuthenticateRejectTest : public testing::TestWithParam<std::string> {};

TEST_P(WwwAuthenticateRejectTest, InvalidArgument) {
  auto c = ParseWwwAuthenticate(GetParam());
  ASSERT_FALSE(c.ok()) << GetParam();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(c.status().message().size(), 400u);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, WwwAuthenticateRejectTest,
    testing::Values("", "   ", ",,", "=", "\"Bearer\"", "Bearer realm=\"unterminated",
                    "Bearer realm=\"x\\", "Bearer realm=\"a\x01b\"", "Bearer realm=\"x\" junk",
                    "Bearer realm=\"x\",\"y\"", "Bearer realm=x=", "Bearer =x", "Bearer realm=\"x\"\"y\"",
                    "Bearer, realm=x", "Bearer a=b, c=", "Bearer a=b c=d",
                    "Bearer\x01", "Bé realm=x", "Bearer ab==cd",
                    std::string(70000, 'A'), "Bearer realm=\"" + std::string(1000, 'x')));

TEST(WwwAuthenticateTest, TooManyChallengesOrParams) {
  std::string many;
  for (int i = 0; i < 100; ++i) many += "Basic, ";
  EXPECT_EQ(ParseWwwAuthenticate(many).status().code(), absl::StatusCode::kInvalidArgument);
  std::string params = "Bearer ";
  for (int i = 0; i < 100; ++i) params += "p" + std::to_string(i) + "=v, ";
  EXPECT_EQ(ParseWwwAuthenticate(params).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slipstream::remote
