// SPDX-License-Identifier: Apache-2.0
// Integration tests: a real docker-registry in each variant (anonymous, Basic, TLS, token).
#include "testkit/registry_fixture.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/digest.h"
#include "gtest/gtest.h"
#include "testkit/net_fetch.h"
#include "testkit/token_server.h"

namespace slipstream::testkit {
namespace {

std::unique_ptr<RegistryFixture> StartOrDie(RegistryFixtureOptions options = {}) {
  absl::StatusOr<std::unique_ptr<RegistryFixture>> r = RegistryFixture::Start(std::move(options));
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(r).value() : nullptr;
}

FetchResult FetchOrDie(const std::string& url, const FetchOptions& options = {}) {
  absl::StatusOr<FetchResult> r = Fetch(url, options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : FetchResult{};
}

FetchOptions WithCa(const RegistryFixture& reg) {
  FetchOptions o;
  o.ca_file = reg.ca_cert_path();
  return o;
}

// Blob upload as distribution 2.8 supports it: POST opens an upload session (202 with a
// Location), one PUT with ?digest= sends the whole body. Returns the last response.
FetchResult PushBlob(const RegistryFixture& reg, const std::string& repo, const std::string& data,
                     FetchOptions options) {
  FetchOptions post = options;
  post.method = "POST";
  FetchResult opened = FetchOrDie(absl::StrCat(reg.url(), "/v2/", repo, "/blobs/uploads/"), post);
  if (opened.status != 202) return opened;
  std::string location = opened.Header("location");
  if (absl::StartsWith(location, "/")) location = reg.url() + location;
  FetchOptions put = options;
  put.method = "PUT";
  put.body = data;
  put.headers.push_back("Content-Type: application/octet-stream");
  return FetchOrDie(absl::StrCat(location, absl::StrContains(location, "?") ? "&" : "?",
                                 "digest=", Sha256Of(data).str()),
                    put);
}

std::string BlobUrl(const RegistryFixture& reg, const std::string& repo, const std::string& data) {
  return absl::StrCat(reg.url(), "/v2/", repo, "/blobs/", Sha256Of(data).str());
}

TEST(RegistryFixtureTest, AnonymousServesV2AndStoresBlobs) {
  auto reg = StartOrDie();
  ASSERT_NE(reg, nullptr);
  EXPECT_EQ(reg->host(), absl::StrCat("127.0.0.1:", reg->port()));
  EXPECT_EQ(reg->url(), absl::StrCat("http://", reg->host()));
  EXPECT_TRUE(reg->ca_cert_path().empty());
  EXPECT_TRUE(reg->running());

  FetchResult v2 = FetchOrDie(reg->url() + "/v2/");
  ASSERT_TRUE(v2.ok()) << v2.error;
  EXPECT_EQ(v2.status, 200);
  EXPECT_EQ(v2.Header("docker-distribution-api-version"), "registry/2.0");

  const std::string data = "hello from the registry fixture";
  FetchResult push = PushBlob(*reg, "testkit/blob", data, {});
  ASSERT_EQ(push.status, 201) << push.body;
  FetchResult get = FetchOrDie(BlobUrl(*reg, "testkit/blob", data));
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, data);

  struct stat st;
  EXPECT_EQ(::stat((reg->storage_dir() + "/docker/registry/v2/blobs").c_str(), &st), 0)
      << "blobs are not in storage_dir()";
}

TEST(RegistryFixtureTest, RestartKeepsPortAndStorageAndStopRefuses) {
  auto reg = StartOrDie();
  ASSERT_NE(reg, nullptr);
  const std::string data = "survives a restart";
  ASSERT_EQ(PushBlob(*reg, "testkit/restart", data, {}).status, 201);
  const int port = reg->port();

  ASSERT_TRUE(reg->Restart().ok());
  EXPECT_EQ(reg->port(), port);
  FetchResult get = FetchOrDie(BlobUrl(*reg, "testkit/restart", data));
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.body, data);

  reg->Stop();
  EXPECT_FALSE(reg->running());
  FetchResult refused = FetchOrDie(reg->url() + "/v2/");
  EXPECT_EQ(refused.curl_code, CURLE_COULDNT_CONNECT) << refused.error;
}

TEST(RegistryFixtureTest, RegistryDiesWithAKilledTestProcess) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The "test process" that gets killed: start a registry, report it, wait to die.
    ::close(fds[0]);
    auto reg = RegistryFixture::Start();
    std::string msg = reg.ok() ? absl::StrCat((*reg)->pid(), " ", (*reg)->dir(), "\n") : "0\n";
    (void)!::write(fds[1], msg.data(), msg.size());
    for (;;) ::pause();
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) {
    msg.append(buf, static_cast<size_t>(n));
    if (absl::StrContains(msg, "\n")) break;
  }
  ::close(fds[0]);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  std::vector<std::string> parts = absl::StrSplit(absl::StripAsciiWhitespace(msg), ' ');
  pid_t registry_pid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(parts[0], &registry_pid) && registry_pid > 0) << msg;
  // The registry was a grandchild: once dead it is a zombie until init reaps it, or gone.
  auto dead = [registry_pid] {
    absl::StatusOr<std::string> stat =
        ReadFileToString(absl::StrCat("/proc/", registry_pid, "/stat"));
    if (!stat.ok()) return true;
    size_t paren = stat->rfind(')');
    return paren != std::string::npos && paren + 2 < stat->size() && (*stat)[paren + 2] == 'Z';
  };
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!dead() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(dead()) << "registry " << registry_pid << " outlived its test process";
  if (parts.size() > 1) {
    EXPECT_TRUE(RemoveAll(parts[1]).ok());
  }
}

TEST(RegistryFixtureTest, TwoRegistriesRunSideBySide) {
  auto a = StartOrDie();
  auto b = StartOrDie();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a->port(), b->port());
  EXPECT_NE(a->storage_dir(), b->storage_dir());
  const std::string data = "only in a";
  ASSERT_EQ(PushBlob(*a, "testkit/mirror", data, {}).status, 201);
  EXPECT_EQ(FetchOrDie(BlobUrl(*a, "testkit/mirror", data)).status, 200);
  EXPECT_EQ(FetchOrDie(BlobUrl(*b, "testkit/mirror", data)).status, 404);
}

TEST(RegistryFixtureTest, ExtraConfigMakesAPullThroughMirror) {
  auto upstream = StartOrDie();
  ASSERT_NE(upstream, nullptr);
  const std::string data = "served by the upstream, fetched by the mirror";
  ASSERT_EQ(PushBlob(*upstream, "library/cached", data, {}).status, 201);

  RegistryFixtureOptions options;
  options.extra_config = absl::StrCat("proxy:\n  remoteurl: ", upstream->url(), "\n");
  auto mirror = StartOrDie(options);
  ASSERT_NE(mirror, nullptr);
  FetchResult via_mirror = FetchOrDie(BlobUrl(*mirror, "library/cached", data));
  EXPECT_EQ(via_mirror.status, 200);
  EXPECT_EQ(via_mirror.body, data);
}

TEST(RegistryFixtureTest, BasicAuthRejectsMissingAndWrongCredentials) {
  RegistryFixtureOptions options;
  options.auth = RegistryAuth::kBasic;
  auto reg = StartOrDie(options);
  ASSERT_NE(reg, nullptr);

  FetchResult anonymous = FetchOrDie(reg->url() + "/v2/");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_TRUE(absl::StartsWith(anonymous.Header("www-authenticate"), "Basic "))
      << anonymous.Header("www-authenticate");

  FetchOptions wrong;
  wrong.user_password = reg->username() + ":not-the-password";
  EXPECT_EQ(FetchOrDie(reg->url() + "/v2/", wrong).status, 401);

  FetchOptions right;
  right.user_password = reg->username() + ":" + reg->password();
  EXPECT_EQ(FetchOrDie(reg->url() + "/v2/", right).status, 200);
  EXPECT_EQ(PushBlob(*reg, "testkit/basic", "basic blob", right).status, 201);
}

TEST(RegistryFixtureTest, TlsVerifiesWithFixtureCaOnlyAndSpeaksHttp2) {
  RegistryFixtureOptions options;
  options.tls = true;
  auto reg = StartOrDie(options);
  ASSERT_NE(reg, nullptr);
  EXPECT_TRUE(absl::StartsWith(reg->url(), "https://127.0.0.1:"));
  ASSERT_FALSE(reg->ca_cert_path().empty());

  FetchResult trusted = FetchOrDie(reg->url() + "/v2/", WithCa(*reg));
  ASSERT_TRUE(trusted.ok()) << trusted.error;
  EXPECT_EQ(trusted.status, 200);
  EXPECT_EQ(trusted.http_version, CURL_HTTP_VERSION_2_0);

  FetchResult untrusted = FetchOrDie(reg->url() + "/v2/");
  EXPECT_EQ(untrusted.curl_code, CURLE_PEER_FAILED_VERIFICATION) << untrusted.error;
  EXPECT_EQ(untrusted.status, 0);

  // The certificate also names localhost.
  FetchResult by_name =
      FetchOrDie(absl::StrCat("https://localhost:", reg->port(), "/v2/"), WithCa(*reg));
  EXPECT_TRUE(by_name.ok()) << by_name.error;
}

// Fetches a token for `scope` from the fixture's token server (Basic creds when given).
std::string GetToken(const RegistryFixture& reg, const std::string& scope,
                     const std::string& user_password) {
  FetchOptions o;
  o.user_password = user_password;
  FetchResult r = FetchOrDie(absl::StrCat(reg.token_server()->realm(), "?service=",
                                          reg.token_server()->service(), "&scope=", scope),
                             o);
  EXPECT_EQ(r.status, 200) << r.body;
  nlohmann::json body = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object() || !body.contains("token")) {
    ADD_FAILURE() << "no token in " << r.body;
    return "";
  }
  EXPECT_EQ(body["token"], body["access_token"]);
  EXPECT_GT(body["expires_in"].get<int64_t>(), 0);
  return body["token"].get<std::string>();
}

FetchOptions Bearer(const std::string& token) {
  FetchOptions o;
  o.headers.push_back("Authorization: Bearer " + token);
  return o;
}

TEST(RegistryFixtureTest, TokenAuthAcceptsTokensFromTokenServer) {
  RegistryFixtureOptions options;
  options.auth = RegistryAuth::kToken;
  auto reg = StartOrDie(options);
  ASSERT_NE(reg, nullptr);
  ASSERT_NE(reg->token_server(), nullptr);

  FetchResult challenge = FetchOrDie(reg->url() + "/v2/");
  EXPECT_EQ(challenge.status, 401);
  std::string www = challenge.Header("www-authenticate");
  EXPECT_TRUE(absl::StrContains(www, absl::StrCat("realm=\"", reg->token_server()->realm(), "\"")))
      << www;
  EXPECT_TRUE(absl::StrContains(www, absl::StrCat("service=\"", reg->token_server()->service(),
                                                  "\"")))
      << www;

  const std::string repo = "testkit/token";
  const std::string data = "pushed with a bearer token";
  const std::string creds = reg->username() + ":" + reg->password();
  std::string push_token = GetToken(*reg, absl::StrCat("repository:", repo, ":pull,push"), creds);
  ASSERT_EQ(PushBlob(*reg, repo, data, Bearer(push_token)).status, 201);

  // Anonymous clients get pull only: reading works, pushing does not.
  std::string anon_token = GetToken(*reg, absl::StrCat("repository:", repo, ":pull,push"), "");
  FetchResult pulled = FetchOrDie(BlobUrl(*reg, repo, data), Bearer(anon_token));
  EXPECT_EQ(pulled.status, 200);
  EXPECT_EQ(pulled.body, data);
  EXPECT_EQ(PushBlob(*reg, repo, "anonymous push", Bearer(anon_token)).status, 401);
  FetchResult tags = FetchOrDie(absl::StrCat(reg->url(), "/v2/", repo, "/tags/list"),
                                Bearer(anon_token));
  EXPECT_NE(tags.status, 401) << "an anonymous pull token must authorize tags/list";

  // No token at all, and a token for another repository, are refused.
  EXPECT_EQ(FetchOrDie(BlobUrl(*reg, repo, data)).status, 401);
  std::string other = GetToken(*reg, "repository:testkit/other:pull", creds);
  EXPECT_EQ(FetchOrDie(BlobUrl(*reg, repo, data), Bearer(other)).status, 401);

  // Wrong credentials never get a token.
  FetchOptions wrong;
  wrong.user_password = reg->username() + ":wrong";
  EXPECT_EQ(FetchOrDie(reg->token_server()->realm() + "?scope=repository:x:pull", wrong).status,
            401);

  // A deliberately expired token is rejected by the registry.
  reg->token_server()->IssueExpiredTokens(1);
  std::string expired = GetToken(*reg, absl::StrCat("repository:", repo, ":pull"), creds);
  EXPECT_EQ(FetchOrDie(BlobUrl(*reg, repo, data), Bearer(expired)).status, 401);
  std::string fresh = GetToken(*reg, absl::StrCat("repository:", repo, ":pull"), creds);
  EXPECT_EQ(FetchOrDie(BlobUrl(*reg, repo, data), Bearer(fresh)).status, 200);
  EXPECT_EQ(reg->token_server()->tokens_issued(), 5);
}

TEST(RegistryFixtureTest, TokenAuthOverTls) {
  RegistryFixtureOptions options;
  options.auth = RegistryAuth::kToken;
  options.tls = true;
  auto reg = StartOrDie(options);
  ASSERT_NE(reg, nullptr);
  std::string token = GetToken(*reg, "repository:testkit/tls:pull,push",
                               reg->username() + ":" + reg->password());
  FetchOptions o = Bearer(token);
  o.ca_file = reg->ca_cert_path();
  EXPECT_EQ(PushBlob(*reg, "testkit/tls", "tls + token", o).status, 201);
}

}  // namespace
}  // namespace slipstream::testkit
