// SPDX-License-Identifier: Apache-2.0
// The auth flow, driven through RegistryClient over a scripted transport.
#include "remote/authenticator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "remote/credentials.h"
#include "remote/registry_client.h"
#include "tests/remote/fake_transport.h"

namespace slipstream::remote {
namespace {

using ::slipstream::remote::testing::FakeClock;
using ::slipstream::remote::testing::FakeReply;
using ::slipstream::remote::testing::FakeTransport;
using ::slipstream::remote::testing::RequestHeader;
using ::testing::HasSubstr;

constexpr char kChallenge[] =
    "Bearer realm=\"http://auth.test/token\",service=\"reg.test\",scope=\"repository:app:pull\"";

struct Env {
  FakeClock clock;
  FakeTransport* fake = nullptr;
  std::unique_ptr<RegistryClient> client;
  std::shared_ptr<StaticCredentials> creds = std::make_shared<StaticCredentials>();
  Reference ref;

  explicit Env(FakeTransport::Handler handler) {
    auto t = std::make_unique<FakeTransport>(std::move(handler));
    fake = t.get();
    RegistryClientOptions o;
    o.transport = std::move(t);
    o.credentials = creds;
    o.now = [this] { return clock.Now(); };
    o.sleep = [this](absl::Duration d) { clock.Sleep(d); };
    client = *RegistryClient::Create(std::move(o));
    ref = *Reference::Parse("localhost:5000/app:v1");
  }
};

const std::string kManifest = R"({"schemaVersion":2})";

// A registry that wants "Bearer <token>" for one of `valid` tokens.
FakeReply Registry(const HttpRequest& r, const std::vector<std::string>& valid) {
  std::string auth = RequestHeader(r, "authorization");
  for (const std::string& t : valid) {
    if (auth == "Bearer " + t) {
      FakeReply ok;
      ok.body = kManifest;
      ok.headers = {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}};
      return ok;
    }
  }
  FakeReply deny;
  deny.status = 401;
  deny.headers = {{"WWW-Authenticate", kChallenge}};
  return deny;
}

TEST(AuthenticatorTest, BearerTokenFlowWithBasicCredentialsIsCached) {
  std::atomic<int> token_fetches{0};
  std::string seen_token_url, seen_token_auth;
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      ++token_fetches;
      seen_token_url = r.url;
      seen_token_auth = RequestHeader(r, "authorization");
      FakeReply t;
      t.body = R"({"token":"tok1","expires_in":300})";
      return t;
    }
    return Registry(r, {"tok1"});
  });
  env.creds->Set("localhost:5000", Credentials{.username = "alice", .password = "pw"});
  auto m = env.client->GetManifest(env.ref);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->body, kManifest);
  EXPECT_EQ(token_fetches, 1);
  EXPECT_THAT(seen_token_url, HasSubstr("service=reg.test"));
  EXPECT_THAT(seen_token_url, HasSubstr("scope=repository%3Aapp%3Apull"));
  EXPECT_EQ(seen_token_auth, "Basic YWxpY2U6cHc=");  // alice:pw

  // Cached: the second request carries the token straight away.
  ASSERT_TRUE(env.client->GetManifest(env.ref).ok());
  EXPECT_EQ(token_fetches, 1);
  auto reqs = env.fake->requests();
  EXPECT_EQ(RequestHeader(reqs.back(), "authorization"), "Bearer tok1");
}

TEST(AuthenticatorTest, ConcurrentChallengesFetchOneToken) {
  std::atomic<int> token_fetches{0};
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      ++token_fetches;
      FakeReply t;
      t.body = R"({"token":"shared","expires_in":300})";
      return t;
    }
    return Registry(r, {"shared"});
  });
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (!env.client->GetManifest(env.ref).ok()) ++failures;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(token_fetches, 1);
}

TEST(AuthenticatorTest, ExpiredTokenIsFetchedAgain) {
  std::atomic<int> token_fetches{0};
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      int n = ++token_fetches;
      FakeReply t;
      // No expires_in: the default lifetime is 60 s.
      t.body = n == 1 ? R"({"token":"tok1"})" : R"({"access_token":"tok2"})";
      return t;
    }
    return Registry(r, {"tok1", "tok2"});
  });
  ASSERT_TRUE(env.client->GetManifest(env.ref).ok());
  env.clock.Advance(absl::Seconds(30));
  ASSERT_TRUE(env.client->GetManifest(env.ref).ok());
  EXPECT_EQ(token_fetches, 1);
  env.clock.Advance(absl::Seconds(40));  // 70 s after issue: past the 60 s default
  ASSERT_TRUE(env.client->GetManifest(env.ref).ok());
  EXPECT_EQ(token_fetches, 2);
  EXPECT_EQ(RequestHeader(env.fake->requests().back(), "authorization"), "Bearer tok2");
}

TEST(AuthenticatorTest, RejectedCachedTokenRefreshesOnceThenFails) {
  std::atomic<int> token_fetches{0};
  std::atomic<bool> accept{true};
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      ++token_fetches;
      FakeReply t;
      t.body = R"({"token":"tok","expires_in":3600})";
      return t;
    }
    return Registry(r, accept ? std::vector<std::string>{"tok"} : std::vector<std::string>{});
  });
  ASSERT_TRUE(env.client->GetManifest(env.ref).ok());
  ASSERT_EQ(token_fetches, 1);
  accept = false;  // the registry revokes the token
  int before = env.fake->CountUrl("/manifests/");
  auto m = env.client->GetManifest(env.ref);
  EXPECT_TRUE(absl::IsUnauthenticated(m.status())) << m.status();
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("HTTP 401"));
  EXPECT_EQ(token_fetches, 2);                                // refreshed exactly once
  EXPECT_EQ(env.fake->CountUrl("/manifests/") - before, 2);  // and retried exactly once
}

TEST(AuthenticatorTest, IdentityTokenUsesOAuthPost) {
  std::string method, body;
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      method = r.method;
      body = r.body;
      FakeReply t;
      t.body = R"({"access_token":"tokP","expires_in":120})";
      return t;
    }
    return Registry(r, {"tokP"});
  });
  env.creds->Set("localhost:5000", Credentials{.identity_token = "refresh-me"});
  ASSERT_TRUE(env.client->GetManifest(env.ref).ok());
  EXPECT_EQ(method, "POST");
  EXPECT_THAT(body, HasSubstr("grant_type=refresh_token"));
  EXPECT_THAT(body, HasSubstr("refresh_token=refresh-me"));
  EXPECT_THAT(body, HasSubstr("service=reg.test"));
  EXPECT_THAT(body, HasSubstr("scope=repository%3Aapp%3Apull"));
}

TEST(AuthenticatorTest, AnonymousTokenRequestSendsNoCredentials) {
  std::string token_auth = "unset";
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      token_auth = RequestHeader(r, "authorization");
      FakeReply t;
      t.body = R"({"token":"anon"})";
      return t;
    }
    return Registry(r, {"anon"});
  });
  ASSERT_TRUE(env.client->GetManifest(env.ref).ok());
  EXPECT_EQ(token_auth, "");
}

TEST(AuthenticatorTest, BasicChallengeSendsCredentials) {
  Env env([&](const HttpRequest& r) {
    if (RequestHeader(r, "authorization") == "Basic YWxpY2U6cHc=") {
      FakeReply ok;
      ok.body = kManifest;
      return ok;
    }
    FakeReply deny;
    deny.status = 401;
    deny.headers = {{"WWW-Authenticate", "Basic realm=\"registry\""}};
    return deny;
  });
  // Without credentials: Unauthenticated, naming the registry.
  auto anon = env.client->GetManifest(env.ref);
  EXPECT_TRUE(absl::IsUnauthenticated(anon.status())) << anon.status();
  env.creds->Set("localhost:5000", Credentials{.username = "alice", .password = "pw"});
  auto m = env.client->GetManifest(env.ref);
  EXPECT_TRUE(m.ok()) << m.status();
}

TEST(AuthenticatorTest, TokenServerRefusalIsUnauthenticatedOrDenied) {
  std::atomic<int> code{401};
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      FakeReply t;
      t.status = code;
      return t;
    }
    return Registry(r, {"x"});
  });
  EXPECT_TRUE(absl::IsUnauthenticated(env.client->GetManifest(env.ref).status()));
  code = 403;
  EXPECT_TRUE(absl::IsPermissionDenied(env.client->GetManifest(env.ref).status()));
}

TEST(AuthenticatorTest, PushAsksForPullPushScope) {
  std::string scope_url;
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://auth.test/token", 0) == 0) {
      scope_url = r.url;
      FakeReply t;
      t.body = R"({"token":"pp"})";
      return t;
    }
    if (RequestHeader(r, "authorization") != "Bearer pp") {
      FakeReply deny;
      deny.status = 401;
      deny.headers = {{"WWW-Authenticate", kChallenge}};
      return deny;
    }
    FakeReply created;
    created.status = 201;
    return created;
  });
  auto d = env.client->PushManifest(env.ref, "application/vnd.oci.image.manifest.v1+json", kManifest);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_THAT(scope_url, HasSubstr("scope=repository%3Aapp%3Apull%2Cpush"));
}

TEST(AuthenticatorTest, RepositoryScopeAndUrlEncode) {
  EXPECT_EQ(RepositoryScope("org/app", false), "repository:org/app:pull");
  EXPECT_EQ(RepositoryScope("org/app", true), "repository:org/app:pull,push");
  EXPECT_EQ(UrlEncode("a b/c:d~_.-"), "a%20b%2Fc%3Ad~_.-");
}

}  // namespace
}  // namespace slipstream::remote
