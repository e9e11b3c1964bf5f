// SPDX-License-Identifier: Apache-2.0
#include "remote/credentials.h"

#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/temp_dir.h"

namespace slipstream::remote {
namespace {

Credentials UserPass(std::string u, std::string p) {
  Credentials c;
  c.username = std::move(u);
  c.password = std::move(p);
  return c;
}

// Each test gets a temp dir holding config.json and fake docker-credential-* helpers, with
// the directory put first on PATH for the duration of the test.
class DockerConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("creds-test-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<TempDir>(*std::move(dir));
    const char* path = std::getenv("PATH");
    old_path_ = path != nullptr ? path : "";
    ASSERT_EQ(setenv("PATH", (dir_->path() + ":" + old_path_).c_str(), 1), 0);
  }
  void TearDown() override { setenv("PATH", old_path_.c_str(), 1); }

  std::string ConfigPath() const { return dir_->Join("config.json"); }
  void WriteConfig(const std::string& json) {
    ASSERT_TRUE(WriteFileAtomic(ConfigPath(), json).ok());
  }
  void WriteHelper(const std::string& name, const std::string& script) {
    std::string path = dir_->Join("docker-credential-" + name);
    ASSERT_TRUE(WriteFileAtomic(path, "#!/bin/sh\n" + script, 0755).ok());
    ASSERT_EQ(chmod(path.c_str(), 0755), 0);
  }
  // A helper that records what it was asked and answers per server.
  void WriteTestHelper() {
    WriteHelper("test", "read server\n"
                        "printf '%s' \"$server\" > \"" + dir_->Join("asked") + "\"\n"
                        "case \"$server\" in\n"
                        "  ghcr.io) echo '{\"ServerURL\":\"ghcr.io\",\"Username\":\"gh-user\","
                        "\"Secret\":\"gh-secret\"}' ;;\n"
                        "  https://index.docker.io/v1/) echo '{\"ServerURL\":\"x\","
                        "\"Username\":\"<token>\",\"Secret\":\"refresh-token\"}' ;;\n"
                        "  *) echo 'credentials not found in native keychain'; exit 1 ;;\n"
                        "esac\n");
  }
  std::string Asked() const { return ReadFileToString(dir_->Join("asked")).value_or(""); }

  std::unique_ptr<TempDir> dir_;
  std::string old_path_;
};

std::string B64(const std::string& s) { return absl::Base64Escape(s); }

TEST_F(DockerConfigTest, MissingFileIsAnonymous) {
  DockerConfigCredentials store(ConfigPath());
  auto c = store.Lookup("docker.io");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->empty());
}

TEST_F(DockerConfigTest, AuthsInAllSpellings) {
  WriteConfig(R"({"auths": {
    "https://index.docker.io/v1/": {"auth": ")" + B64("hubuser:hub:pass") + R"("},
    "http://localhost:5000": {"username": "local", "password": "lpw"},
    "quay.io": {"auth": "", "identitytoken": "quay-refresh"},
    "https://gcr.io/v2/project": {"registrytoken": "bearer-xyz"},
    "Example.COM": {"auth": ")" + B64("u:p") + R"("}
  }, "HttpHeaders": {"User-Agent": "x"}})");
  DockerConfigCredentials store(ConfigPath());
  EXPECT_EQ(*store.Lookup("docker.io"), UserPass("hubuser", "hub:pass"));
  EXPECT_EQ(*store.Lookup("localhost:5000"), UserPass("local", "lpw"));
  EXPECT_EQ(store.Lookup("quay.io")->identity_token, "quay-refresh");
  EXPECT_EQ(store.Lookup("gcr.io")->registry_token, "bearer-xyz");
  EXPECT_EQ(*store.Lookup("example.com"), UserPass("u", "p"));
  EXPECT_TRUE(store.Lookup("ghcr.io")->empty());
  EXPECT_TRUE(store.Lookup("localhost:5001")->empty());
}

TEST_F(DockerConfigTest, MalformedFileNamesPathButNoSecret) {
  WriteConfig(R"({"auths": {"ghcr.io": {"auth": "c2VjcmV0LXVzZXI6aHVudGVyMg=="})");
  DockerConfigCredentials store(ConfigPath());
  auto c = store.Lookup("ghcr.io");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(ConfigPath()), std::string::npos);
  EXPECT_EQ(c.status().message().find("c2VjcmV0"), std::string::npos) << c.status();
}

TEST_F(DockerConfigTest, BadEntriesAreInvalidArgumentWithoutSecrets) {
  for (const std::string& json : {
           std::string(R"({"auths": {"ghcr.io": {"auth": "!!not-base64-secret!!"}}})"),
           R"({"auths": {"ghcr.io": {"auth": ")" + B64("no-colon-secret") + R"("}}})",
           std::string(R"({"auths": {"ghcr.io": {"password": 12345}}})"),
           std::string(R"({"auths": {"ghcr.io": "secret-string"}})"),
           std::string(R"({"auths": ["secret"]})"),
           std::string(R"({"credHelpers": {"ghcr.io": 1}})"),
           std::string(R"({"credsStore": ["x"]})"), std::string("[]"), std::string("")}) {
    WriteConfig(json);
    DockerConfigCredentials store(ConfigPath());
    auto c = store.Lookup("ghcr.io");
    ASSERT_FALSE(c.ok()) << json;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_EQ(c.status().message().find("secret"), std::string::npos) << c.status();
  }
}

TEST_F(DockerConfigTest, CredentialHelpers) {
  WriteTestHelper();
  WriteConfig(R"({"credHelpers": {"ghcr.io": "test", "https://index.docker.io/v1/": "test",
                                   "quay.io": "test"},
                  "auths": {"quay.io": {"auth": ")" + B64("q:fallback") + R"("},
                            "ecr.example.com": {"auth": ")" + B64("e:inline") + R"("}}})");
  DockerConfigCredentials store(ConfigPath());
  EXPECT_EQ(*store.Lookup("ghcr.io"), UserPass("gh-user", "gh-secret"));
  EXPECT_EQ(Asked(), "ghcr.io");
  auto hub = store.Lookup("docker.io");
  ASSERT_TRUE(hub.ok()) << hub.status();
  EXPECT_EQ(hub->identity_token, "refresh-token");
  EXPECT_TRUE(hub->username.empty());
  EXPECT_EQ(Asked(), "https://index.docker.io/v1/");
  // The helper has nothing for quay.io: the inline entry is used.
  EXPECT_EQ(*store.Lookup("quay.io"), UserPass("q", "fallback"));
  // No helper for this registry and no credsStore: inline auths.
  EXPECT_EQ(*store.Lookup("ecr.example.com"), UserPass("e", "inline"));
}

TEST_F(DockerConfigTest, CredsStoreDefaultAndNotFound) {
  WriteTestHelper();
  WriteConfig(R"({"credsStore": "test"})");
  DockerConfigCredentials store(ConfigPath());
  EXPECT_EQ(*store.Lookup("ghcr.io"), UserPass("gh-user", "gh-secret"));
  auto none = store.Lookup("registry.example.com");
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->empty());
  EXPECT_EQ(Asked(), "registry.example.com");
}

TEST_F(DockerConfigTest, BrokenHelpersAreUnavailableWithoutTheirOutput) {
  // These helpers exit without reading stdin, so writing the server name can hit EPIPE.
  // RunSubprocess handles EPIPE but relies on SIGPIPE being ignored, as the daemon does.
  signal(SIGPIPE, SIG_IGN);
  WriteHelper("broken", "echo 'boom secret-output' >&2\necho 'secret-stdout'\nexit 3\n");
  WriteHelper("garbage", "echo 'secret-not-json'\n");
  WriteHelper("wrongtype", "echo '{\"Username\": 1, \"Secret\": \"secret-value\"}'\n");
  for (const char* helper : {"broken", "garbage", "wrongtype", "absent"}) {
    WriteConfig(std::string(R"({"credsStore": ")") + helper + R"("})");
    DockerConfigCredentials store(ConfigPath());
    auto c = store.Lookup("ghcr.io");
    ASSERT_FALSE(c.ok()) << helper;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable) << helper << c.status();
    EXPECT_NE(c.status().message().find(std::string("docker-credential-") + helper),
              std::string::npos)
        << c.status();
    EXPECT_EQ(c.status().message().find("secret"), std::string::npos) << c.status();
  }
}

TEST_F(DockerConfigTest, HelperTimeout) {
  WriteHelper("hang", "exec sleep 30\n");
  WriteConfig(R"({"credsStore": "hang"})");
  DockerConfigCredentials store(ConfigPath(), absl::Milliseconds(200));
  absl::Time start = absl::Now();
  auto c = store.Lookup("ghcr.io");
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("timed out"), std::string::npos) << c.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(20));
}

TEST_F(DockerConfigTest, HelperNameCannotEscapePath) {
  WriteConfig(R"({"credsStore": "../../bin/sh"})");
  DockerConfigCredentials store(ConfigPath());
  EXPECT_EQ(store.Lookup("ghcr.io").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DockerConfigTest, RereadsWhenTheFileChanges) {
  WriteConfig(R"({"auths": {"ghcr.io": {"auth": ")" + B64("old:1") + R"("}}})");
  DockerConfigCredentials store(ConfigPath());
  EXPECT_EQ(*store.Lookup("ghcr.io"), UserPass("old", "1"));
  // Same size on purpose: WriteFileAtomic renames a new inode into place.
  WriteConfig(R"({"auths": {"ghcr.io": {"auth": ")" + B64("new:2") + R"("}}})");
  EXPECT_EQ(*store.Lookup("ghcr.io"), UserPass("new", "2"));
  ASSERT_EQ(unlink(ConfigPath().c_str()), 0);
  EXPECT_TRUE(store.Lookup("ghcr.io")->empty());
  WriteConfig("{ broken");
  EXPECT_FALSE(store.Lookup("ghcr.io").ok());
  WriteConfig(R"({"auths": {"ghcr.io": {"auth": ")" + B64("back:3") + R"("}}})");
  EXPECT_EQ(*store.Lookup("ghcr.io"), UserPass("back", "3"));
}

TEST_F(DockerConfigTest, ConcurrentLookupsWhileRewriting) {
  WriteConfig(R"({"auths": {"ghcr.io": {"auth": ")" + B64("a:1") + R"("}}})");
  DockerConfigCredentials store(ConfigPath());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        auto c = store.Lookup("ghcr.io");
        if (!c.ok() || (c->username != "a" && c->username != "b")) ++failures;
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    WriteConfig(R"({"auths": {"ghcr.io": {"auth": ")" + B64(i % 2 ? "a:1" : "b:2") + R"("}}})");
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(DockerConfigPathTest, DefaultPathHonoursDockerConfig) {
  const char* old = std::getenv("DOCKER_CONFIG");
  std::string saved = old != nullptr ? old : "";
  ASSERT_EQ(setenv("DOCKER_CONFIG", "/custom/dir", 1), 0);
  EXPECT_EQ(DockerConfigCredentials::DefaultPath(), "/custom/dir/config.json");
  ASSERT_EQ(unsetenv("DOCKER_CONFIG"), 0);
  const char* home = std::getenv("HOME");
  EXPECT_EQ(DockerConfigCredentials::DefaultPath(),
            std::string(home != nullptr ? home : "") + "/.docker/config.json");
  if (old != nullptr) setenv("DOCKER_CONFIG", saved.c_str(), 1);
}

TEST(RegistryFromServerUrlTest, Normalizes) {
  const std::pair<const char*, const char*> cases[] = {
      {"https://index.docker.io/v1/", "docker.io"},
      {"index.docker.io", "docker.io"},
      {"registry-1.docker.io", "docker.io"},
      {"docker.io", "docker.io"},
      {"https://ghcr.io", "ghcr.io"},
      {"HTTP://LocalHost:5000/v2/", "localhost:5000"},
      {"quay.io", "quay.io"},
      {"https://gcr.io/v2/project/x", "gcr.io"},
      {"", ""},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(RegistryFromServerUrl(in), want) << in;
}

// The pure parser behind DockerConfigCredentials (also the docker_config_fuzzer's target).
TEST(ParseDockerConfigTest, ParsesWithoutAFile) {
  const std::string json = absl::StrCat(
      R"({"auths":{"https://index.docker.io/v1/":{"auth":")", absl::Base64Escape("u:p:w"),
      R"("},"HTTP://Mirror.Example:5000/v2":{"identitytoken":"tok"}},)",
      R"("credHelpers":{"ghcr.io":"gh"},"credsStore":"pass","other":[1,2]})");
  absl::StatusOr<DockerConfig> c = ParseDockerConfig(json, "cfg");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->auths.size(), 2u);
  EXPECT_EQ(c->auths.at("docker.io"), UserPass("u", "p:w"));
  EXPECT_EQ(c->auths.at("mirror.example:5000").identity_token, "tok");
  EXPECT_EQ(c->cred_helpers.at("ghcr.io"), "gh");
  EXPECT_EQ(c->creds_store, "pass");

  absl::StatusOr<DockerConfig> empty = ParseDockerConfig("{}", "cfg");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_TRUE(empty->auths.empty() && empty->cred_helpers.empty() && empty->creds_store.empty());
}

TEST(ParseDockerConfigTest, ErrorsStartWithWhereAndHoldNoSecret) {
  for (std::string json : {std::string(R"({"auths":{"h":{"password":"s3cret-pw")"),
                           std::string(R"(["s3cret-pw"])"),
                           std::string(R"({"auths":{"h":{"auth":"s3cret-pw"}}})"),
                           std::string(R"({"auths":{"h":{"password":["s3cret-pw"]}}})"),
                           std::string(R"({"credsStore":{"x":"s3cret-pw"}})")}) {
    absl::StatusOr<DockerConfig> c = ParseDockerConfig(json, "/etc/cfg.json");
    ASSERT_FALSE(c.ok()) << json;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << json;
    EXPECT_TRUE(absl::StartsWith(c.status().message(), "/etc/cfg.json: ")) << c.status();
    EXPECT_EQ(c.status().message().find("s3cret"), absl::string_view::npos) << c.status();
  }
}

TEST(StaticCredentialsTest, SetAndLookup) {
  StaticCredentials store;
  EXPECT_TRUE(store.Lookup("ghcr.io")->empty());
  store.Set("ghcr.io", UserPass("a", "b"));
  EXPECT_EQ(*store.Lookup("ghcr.io"), UserPass("a", "b"));
  store.Set("ghcr.io", UserPass("c", "d"));
  EXPECT_EQ(*store.Lookup("ghcr.io"), UserPass("c", "d"));
  EXPECT_TRUE(store.Lookup("docker.io")->empty());
}

class FailingStore : public CredentialStore {
 public:
  absl::StatusOr<Credentials> Lookup(std::string_view) override {
    return absl::UnavailableError("helper down");
  }
};

TEST(ChainedCredentialsTest, FirstNonEmptyAnswerAndErrors) {
  auto first = std::make_unique<StaticCredentials>();
  first->Set("ghcr.io", UserPass("first", "1"));
  auto second = std::make_unique<StaticCredentials>();
  second->Set("ghcr.io", UserPass("second", "2"));
  second->Set("quay.io", UserPass("second", "q"));
  std::vector<std::unique_ptr<CredentialStore>> stores;
  stores.push_back(std::move(first));
  stores.push_back(std::move(second));
  stores.push_back(std::make_unique<FailingStore>());
  ChainedCredentials chain(std::move(stores));
  EXPECT_EQ(*chain.Lookup("ghcr.io"), UserPass("first", "1"));
  EXPECT_EQ(*chain.Lookup("quay.io"), UserPass("second", "q"));
  // Nobody has it until the failing store answers: its error is returned.
  EXPECT_EQ(chain.Lookup("docker.io").status().code(), absl::StatusCode::kUnavailable);

  ChainedCredentials empty({});
  EXPECT_TRUE(empty.Lookup("x")->empty());
}

TEST(CredentialsTest, Empty) {
  EXPECT_TRUE(Credentials{}.empty());
  Credentials c;
  c.registry_token = "t";
  EXPECT_FALSE(c.empty());
}

}  // namespace
}  // namespace slipstream::remote
