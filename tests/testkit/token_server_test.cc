// SPDX-License-Identifier: Apache-2.0
// Integration tests: the TokenServer over real HTTP (GET and OAuth2 POST flows, grants, JWT
// contents). That the registry accepts its tokens is tested in registry_fixture_test.cc.
#include "testkit/token_server.h"

#include <optional>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "testkit/net_fetch.h"
#include "testkit/token_signer.h"

namespace slipstream::testkit {
namespace {

FetchResult FetchOrDie(const std::string& url, const FetchOptions& options = {}) {
  absl::StatusOr<FetchResult> r = Fetch(url, options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : FetchResult{};
}

nlohmann::json ParseJson(const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << text;
  return j;
}

// Decodes the header and claims of a compact JWS.
struct Jwt {
  nlohmann::json header;
  nlohmann::json claims;
  std::string signature;
};

Jwt DecodeJwt(const std::string& token) {
  std::vector<std::string> parts = absl::StrSplit(token, '.');
  Jwt jwt;
  if (parts.size() != 3) {
    ADD_FAILURE() << "not a compact JWS: " << token;
    return jwt;
  }
  std::string header, claims;
  EXPECT_TRUE(absl::WebSafeBase64Unescape(parts[0], &header));
  EXPECT_TRUE(absl::WebSafeBase64Unescape(parts[1], &claims));
  EXPECT_TRUE(absl::WebSafeBase64Unescape(parts[2], &jwt.signature));
  jwt.header = ParseJson(header);
  jwt.claims = ParseJson(claims);
  return jwt;
}

class TokenServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Restart({}); }

  void Restart(TokenServerOptions options) {
    server_.reset();
    if (!dir_.has_value()) {
      absl::StatusOr<TempDir> dir = TempDir::Create("slipstream-token-");
      ASSERT_TRUE(dir.ok()) << dir.status();
      dir_.emplace(std::move(dir).value());
    }
    options.users["alice"] = "wonderland";
    absl::StatusOr<std::unique_ptr<TokenServer>> s = TokenServer::Start(dir_->path(), options);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(s).value();
  }

  // GET /token with `query`; Basic creds when `user_password` is set.
  FetchResult Get(const std::string& query, const std::string& user_password = "") {
    FetchOptions o;
    o.user_password = user_password;
    return FetchOrDie(absl::StrCat(server_->realm(), "?", query), o);
  }

  FetchResult Post(const std::string& form) {
    FetchOptions o;
    o.method = "POST";
    o.body = form;
    o.headers.push_back("Content-Type: application/x-www-form-urlencoded");
    return FetchOrDie(server_->realm(), o);
  }

  // The access entries of the token in a successful answer.
  nlohmann::json AccessOf(const FetchResult& r) {
    EXPECT_EQ(r.status, 200) << r.body;
    nlohmann::json body = ParseJson(r.body);
    if (!body.contains("token")) return nlohmann::json();
    return DecodeJwt(body["token"].get<std::string>()).claims["access"];
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<TokenServer> server_;
};

TEST_F(TokenServerTest, TokenCarriesDistributionClaimsAndLibtrustKid) {
  absl::Time before = absl::Now();
  FetchResult r = Get("service=slipstream-test-registry&scope=repository:a/b:pull,push",
                      "alice:wonderland");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Header("content-type"), "application/json");
  nlohmann::json body = ParseJson(r.body);
  ASSERT_TRUE(body.contains("token"));
  EXPECT_EQ(body["token"], body["access_token"]);
  EXPECT_EQ(body["expires_in"], 300);
  EXPECT_FALSE(body.contains("refresh_token"));
  EXPECT_EQ(body["issued_at"].get<std::string>().size(), 20u);  // 2026-01-02T03:04:05Z

  Jwt jwt = DecodeJwt(body["token"].get<std::string>());
  EXPECT_EQ(jwt.header["alg"], "RS256");
  EXPECT_EQ(jwt.header["typ"], "JWT");
  EXPECT_EQ(jwt.signature.size(), 256u);  // RSA 2048
  EXPECT_EQ(jwt.claims["iss"], server_->issuer());
  EXPECT_EQ(jwt.claims["aud"], server_->service());
  EXPECT_EQ(jwt.claims["sub"], "alice");
  int64_t now = absl::ToUnixSeconds(before);
  EXPECT_GE(jwt.claims["exp"].get<int64_t>(), now + 299);
  EXPECT_LE(jwt.claims["nbf"].get<int64_t>(), now);
  EXPECT_GE(jwt.claims["iat"].get<int64_t>(), now);
  EXPECT_FALSE(jwt.claims["jti"].get<std::string>().empty());
  nlohmann::json expected_access = nlohmann::json::parse(
      R"([{"type":"repository","name":"a/b","actions":["pull","push"]}])");
  EXPECT_EQ(jwt.claims["access"], expected_access);

  // kid: the libtrust fingerprint of the certificate's public key, computed here from the
  // DER that the openssl CLI extracts (independently of TokenSigner's own key loading).
  absl::StatusOr<SubprocessResult> pub = RunSubprocess(
      {"sh", "-c", absl::StrCat("openssl x509 -in '", server_->cert_path(),
                                "' -pubkey -noout | openssl pkey -pubin -outform DER")});
  ASSERT_TRUE(pub.ok()) << pub.status();
  ASSERT_EQ(pub->exit_code, 0) << pub->stderr_data;
  std::string kid = jwt.header["kid"].get<std::string>();
  EXPECT_EQ(kid, LibtrustKeyId(pub->stdout_data));
  EXPECT_EQ(kid.size(), 12u * 4 + 11);
}

TEST_F(TokenServerTest, AnonymousClientsGetPullOnly) {
  nlohmann::json access =
      AccessOf(Get("scope=repository:a/b:pull,push&scope=registry:catalog:*"));
  ASSERT_EQ(access.size(), 2u);
  EXPECT_EQ(access[0]["actions"], nlohmann::json::parse(R"(["pull"])"));
  EXPECT_EQ(access[1]["actions"], nlohmann::json::array());
  EXPECT_EQ(server_->requests().back().subject, "");

  TokenServerOptions closed;
  closed.anonymous_pull = false;
  Restart(closed);
  access = AccessOf(Get("scope=repository:a/b:pull"));
  ASSERT_EQ(access.size(), 1u);
  EXPECT_EQ(access[0]["actions"], nlohmann::json::array());
  // A user still gets everything it asks for.
  access = AccessOf(Get("scope=repository:a/b:pull,push,delete", "alice:wonderland"));
  EXPECT_EQ(access[0]["actions"], nlohmann::json::parse(R"(["pull","push","delete"])"));
}

TEST_F(TokenServerTest, RejectsBadCredentialsServiceAndScope) {
  FetchResult wrong = Get("scope=repository:a:pull", "alice:queen");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_FALSE(wrong.Header("www-authenticate").empty());
  EXPECT_EQ(Get("scope=repository:a:pull", "bob:wonderland").status, 401);
  EXPECT_EQ(Get("service=some-other-registry&scope=repository:a:pull").status, 400);
  EXPECT_EQ(Get("scope=nonsense").status, 400);
  FetchOptions put;
  put.method = "PUT";
  EXPECT_EQ(FetchOrDie(server_->realm(), put).status, 405);
  EXPECT_EQ(server_->tokens_issued(), 0);
  EXPECT_EQ(server_->requests().size(), 5u);
}

TEST_F(TokenServerTest, OAuthPasswordAndRefreshGrants) {
  FetchResult first = Post(
      "grant_type=password&username=alice&password=wonderland&service=slipstream-test-registry"
      "&client_id=slipstream&access_type=offline&scope=repository%3Aa%2Fb%3Apull");
  ASSERT_EQ(first.status, 200) << first.body;
  nlohmann::json body = ParseJson(first.body);
  ASSERT_TRUE(body.contains("refresh_token"));
  std::string refresh = body["refresh_token"].get<std::string>();
  EXPECT_EQ(DecodeJwt(body["access_token"].get<std::string>()).claims["access"][0]["name"], "a/b");

  FetchResult refreshed = Post(absl::StrCat(
      "grant_type=refresh_token&refresh_token=", refresh,
      "&service=slipstream-test-registry&client_id=slipstream&scope=repository%3Ac%3Apull+repository%3Ad%3Apush"));
  ASSERT_EQ(refreshed.status, 200) << refreshed.body;
  Jwt jwt = DecodeJwt(ParseJson(refreshed.body)["access_token"].get<std::string>());
  EXPECT_EQ(jwt.claims["sub"], "alice");
  ASSERT_EQ(jwt.claims["access"].size(), 2u);
  EXPECT_EQ(jwt.claims["access"][1]["name"], "d");

  EXPECT_EQ(Post("grant_type=refresh_token&refresh_token=made-up").status, 401);
  EXPECT_EQ(Post("grant_type=password&username=alice&password=nope").status, 401);
  EXPECT_EQ(Post("grant_type=client_credentials").status, 400);
  // Without access_type=offline there is no refresh token.
  FetchResult online = Post("grant_type=password&username=alice&password=wonderland");
  EXPECT_FALSE(ParseJson(online.body).contains("refresh_token"));
  // GET with offline_token=true also hands one out, to authenticated users only.
  EXPECT_TRUE(ParseJson(Get("offline_token=true&scope=repository:a:pull", "alice:wonderland").body)
                  .contains("refresh_token"));
  EXPECT_FALSE(ParseJson(Get("offline_token=true&scope=repository:a:pull").body)
                   .contains("refresh_token"));

  std::vector<TokenRequestRecord> log = server_->requests();
  ASSERT_EQ(log.size(), 8u);
  EXPECT_EQ(log[1].grant_type, "refresh_token");
  EXPECT_EQ(log[1].scopes.size(), 2u);
  EXPECT_EQ(server_->tokens_issued(), 5);
}

TEST_F(TokenServerTest, ExpiredTokensLieBeyondTheRegistryLeeway) {
  server_->IssueExpiredTokens(1);
  FetchResult r = Get("scope=repository:a:pull");
  nlohmann::json body = ParseJson(r.body);
  // The answer still claims the nominal lifetime: clients learn of expiry from the registry.
  EXPECT_EQ(body["expires_in"], 300);
  Jwt jwt = DecodeJwt(body["token"].get<std::string>());
  EXPECT_LT(jwt.claims["exp"].get<int64_t>(), absl::ToUnixSeconds(absl::Now()) - 60);
  Jwt next = DecodeJwt(ParseJson(Get("scope=repository:a:pull").body)["token"].get<std::string>());
  EXPECT_GT(next.claims["exp"].get<int64_t>(), absl::ToUnixSeconds(absl::Now()));
}

TEST_F(TokenServerTest, MintTokenValidatesScopes) {
  absl::StatusOr<std::string> t =
      server_->MintToken("carol", {"repository:x/y:pull"}, absl::Seconds(30));
  ASSERT_TRUE(t.ok()) << t.status();
  Jwt jwt = DecodeJwt(*t);
  EXPECT_EQ(jwt.claims["sub"], "carol");
  EXPECT_EQ(jwt.claims["access"][0]["name"], "x/y");
  EXPECT_EQ(server_->MintToken("carol", {"x"}, absl::Seconds(30)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace slipstream::testkit
