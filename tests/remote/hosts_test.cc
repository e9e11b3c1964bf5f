// SPDX-License-Identifier: Apache-2.0
#include "remote/hosts.h"

#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/fd.h"
#include "common/temp_dir.h"

namespace slipstream::remote {
namespace {

using Headers = std::vector<std::pair<std::string, std::string>>;

absl::StatusOr<std::vector<RegistryHost>> Parse(const std::string& toml,
                                                const std::string& registry = "docker.io") {
  return ParseHostsToml(toml, registry, "/etc/containerd/certs.d/" + registry);
}

TEST(HostsTest, DefaultsWithoutConfig) {
  auto hosts = LoadRegistryHosts("", "docker.io");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0].BaseUrl(), "https://registry-1.docker.io/v2");
  EXPECT_EQ((*hosts)[0].capabilities, kCapPull | kCapResolve | kCapPush);

  EXPECT_EQ((*LoadRegistryHosts("", "ghcr.io"))[0].BaseUrl(), "https://ghcr.io/v2");
  EXPECT_EQ((*LoadRegistryHosts("", "localhost:5000"))[0].BaseUrl(), "http://localhost:5000/v2");
  EXPECT_EQ((*LoadRegistryHosts("", "localhost"))[0].BaseUrl(), "http://localhost/v2");
  EXPECT_EQ((*LoadRegistryHosts("", "127.0.0.1:41234"))[0].BaseUrl(),
            "http://127.0.0.1:41234/v2");
  EXPECT_EQ((*LoadRegistryHosts("", "[::1]:5000"))[0].BaseUrl(), "http://[::1]:5000/v2");
  EXPECT_EQ((*LoadRegistryHosts("", "127.0.0.1.example.com"))[0].scheme, "https");
  EXPECT_EQ((*LoadRegistryHosts("", "localhost.example.com"))[0].scheme, "https");
}

// From containerd docs/hosts.md: a mirror tried before the upstream server.
TEST(HostsTest, DocsMirrorExample) {
  auto hosts = Parse(R"(
server = "https://registry-1.docker.io"    # Exclude this to not use upstream

[host."https://public-mirror.example.com"]
  capabilities = ["pull"]                   # Requires less trust, won't resolve tag to digest from this host
[host."https://docker-mirror.internal"]
  capabilities = ["pull", "resolve"]
  ca = "docker-mirror.crt"                  # Or absolute path /etc/containerd/certs.d/docker.io/docker-mirror.crt
)");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 3u);
  EXPECT_EQ((*hosts)[0].BaseUrl(), "https://public-mirror.example.com/v2");
  EXPECT_EQ((*hosts)[0].capabilities, kCapPull);
  EXPECT_EQ((*hosts)[1].BaseUrl(), "https://docker-mirror.internal/v2");
  EXPECT_EQ((*hosts)[1].capabilities, kCapPull | kCapResolve);
  EXPECT_EQ((*hosts)[1].tls.ca_file, "/etc/containerd/certs.d/docker.io/docker-mirror.crt");
  EXPECT_EQ((*hosts)[2].BaseUrl(), "https://registry-1.docker.io/v2");
  EXPECT_EQ((*hosts)[2].capabilities, kCapPull | kCapResolve | kCapPush);
}

TEST(HostsTest, FileOrderIsKeptEvenWhenNotAlphabetical) {
  auto hosts = Parse(R"(
[host."https://zzz.example.com"]
[host."https://aaa.example.com"]
[host."https://mmm.example.com"]
)");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 4u);
  EXPECT_EQ((*hosts)[0].host, "zzz.example.com");
  EXPECT_EQ((*hosts)[1].host, "aaa.example.com");
  EXPECT_EQ((*hosts)[2].host, "mmm.example.com");
  // No `server`: the default upstream comes last.
  EXPECT_EQ((*hosts)[3].host, "registry-1.docker.io");
}

// From containerd docs/hosts.md: TLS settings on the upstream server itself.
TEST(HostsTest, DocsServerTlsExample) {
  auto hosts = ParseHostsToml(R"(
server = "https://registry.example.com"

ca = "/etc/certs/mirror.pem"
skip_verify = false
client = [["/etc/certs/client.cert", "/etc/certs/client.key"],["/etc/certs/client2.cert", "/etc/certs/client2.key"]]
[header]
  x-custom-2 = ["value1", "value2"]
)",
                              "registry.example.com", "/etc/containerd/certs.d/registry.example.com");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 1u);
  const RegistryHost& h = (*hosts)[0];
  EXPECT_EQ(h.BaseUrl(), "https://registry.example.com/v2");
  EXPECT_EQ(h.tls.ca_file, "/etc/certs/mirror.pem");
  EXPECT_FALSE(h.tls.skip_verify);
  EXPECT_EQ(h.tls.client_cert_file, "/etc/certs/client.cert");
  EXPECT_EQ(h.tls.client_key_file, "/etc/certs/client.key");
  EXPECT_EQ(h.headers, (Headers{{"x-custom-2", "value1"}, {"x-custom-2", "value2"}}));
}

TEST(HostsTest, HostOptions) {
  auto hosts = Parse(R"(
[host."http://192.168.31.250:5000"]
  capabilities = ["PULL", "Resolve", "push"]
  skip_verify = true
  ca = ["/abs/ca1.crt", "rel/ca2.crt"]
  client = "client.pem"
  [host."http://192.168.31.250:5000".header]
    x-custom-1 = "custom header"
)");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 2u);
  const RegistryHost& h = (*hosts)[0];
  EXPECT_EQ(h.scheme, "http");
  EXPECT_EQ(h.host, "192.168.31.250:5000");
  EXPECT_EQ(h.capabilities, kCapPull | kCapResolve | kCapPush);
  EXPECT_TRUE(h.tls.skip_verify);
  EXPECT_EQ(h.tls.ca_file, "/abs/ca1.crt");
  // A single client file holds both certificate and key.
  EXPECT_EQ(h.tls.client_cert_file, "/etc/containerd/certs.d/docker.io/client.pem");
  EXPECT_EQ(h.tls.client_key_file, "/etc/containerd/certs.d/docker.io/client.pem");
  EXPECT_EQ(h.headers, (Headers{{"x-custom-1", "custom header"}}));
  EXPECT_TRUE(h.Can(kCapPush));
}

struct PathCase {
  std::string key;
  bool override_path;
  std::string base_url;
};

class HostsPathTest : public testing::TestWithParam<PathCase> {};

TEST_P(HostsPathTest, V2SuffixRule) {
  const PathCase& c = GetParam();
  std::string toml = "[host.\"" + c.key + "\"]\n";
  if (c.override_path) toml += "override_path = true\n";
  auto hosts = Parse(toml);
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ((*hosts)[0].BaseUrl(), c.base_url);
}

INSTANTIATE_TEST_SUITE_P(
    Paths, HostsPathTest,
    testing::Values(PathCase{"https://mirror.example.com", false, "https://mirror.example.com/v2"},
                    PathCase{"mirror.example.com", false, "https://mirror.example.com/v2"},
                    PathCase{"mirror.example.com:8443", false, "https://mirror.example.com:8443/v2"},
                    PathCase{"https://mirror.example.com/", false, "https://mirror.example.com/v2"},
                    PathCase{"https://mirror.example.com/v2", false, "https://mirror.example.com/v2"},
                    PathCase{"https://mirror.example.com/v2/", false, "https://mirror.example.com/v2"},
                    PathCase{"https://artifactory.example.com/artifactory/api/docker/remote", false,
                             "https://artifactory.example.com/artifactory/api/docker/remote/v2"},
                    PathCase{"https://registry.example.com/custom/v2", false,
                             "https://registry.example.com/custom/v2"},
                    PathCase{"https://registry.example.com/a//b/./c/../d", false,
                             "https://registry.example.com/a/b/d/v2"},
                    PathCase{"https://registry.example.com/api", true,
                             "https://registry.example.com/api"},
                    PathCase{"https://registry.example.com", true, "https://registry.example.com"}));

struct BadCase {
  std::string toml;
  std::string mentions;
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.toml; }

class HostsRejectTest : public testing::TestWithParam<BadCase> {};

TEST_P(HostsRejectTest, InvalidArgumentNamingFile) {
  auto hosts = Parse(GetParam().toml);
  ASSERT_FALSE(hosts.ok()) << GetParam().toml;
  EXPECT_EQ(hosts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(hosts.status().message().find("/etc/containerd/certs.d/docker.io/hosts.toml"),
            std::string::npos)
      << hosts.status();
  EXPECT_NE(hosts.status().message().find(GetParam().mentions), std::string::npos)
      << hosts.status();
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, HostsRejectTest,
    testing::Values(
        BadCase{"server = ", "malformed TOML"}, BadCase{"[host.\"x\"", "malformed TOML"},
        BadCase{"a = 1\na = 2", "malformed TOML"},
        BadCase{"server = 5", "server"},
        BadCase{"server = \"httpx://x\"", "scheme"},
        BadCase{"server = \"ftp://x\"", "malformed server URL"},
        BadCase{"server = \"https://x:port\"", "malformed server URL"},
        BadCase{"server = \"https://\"", "malformed server URL"},
        BadCase{"server = \"https://user@x\"", "malformed server URL"},
        BadCase{"server = \"https://x/?q=1\"", "malformed server URL"},
        BadCase{"capabilities = [\"pull\", \"delete\"]", "unknown capability \"delete\""},
        BadCase{"[host.\"https://m\"]\ncapabilities = \"pull\"", "capabilities"},
        BadCase{"[host.\"https://m\"]\ncapabilities = [1]", "capabilities"},
        BadCase{"[host.\"https://m\"]\nskip_verify = \"yes\"", "skip_verify"},
        BadCase{"[host.\"https://m\"]\noverride_path = 1", "override_path"},
        BadCase{"[host.\"https://m\"]\nca = 5", "ca"},
        BadCase{"[host.\"https://m\"]\nca = [\"a\", 5]", "ca"},
        BadCase{"[host.\"https://m\"]\nclient = [[\"a\"]]", "client"},
        BadCase{"[host.\"https://m\"]\nclient = [[\"a\", \"b\", \"c\"]]", "client"},
        BadCase{"[host.\"https://m\"]\nclient = 1", "client"},
        BadCase{"[host.\"https://m\"]\nheader = \"x\"", "header"},
        BadCase{"[host.\"https://m\"]\n[host.\"https://m\".header]\nx = 1", "header"},
        BadCase{"[host.\"https://m\"]\n[host.\"https://m\".header]\nx = \"a\\nb\"", "newline"},
        // Found by fuzz/hosts_toml_fuzzer: quoted keys and escapes reached the wire as is.
        BadCase{"[header]\n\"X-A\\r\\nX-Injected\" = \"v\"", "not a token"},
        BadCase{"[header]\n\"\" = \"v\"", "not a token"},
        BadCase{"[header]\n\"X A:\" = \"v\"", "not a token"},
        BadCase{"[header]\nX-A = \"a\\u0000b\"", "NUL"},
        BadCase{"host = \"x\"", "host"},
        BadCase{"host = { a = 1 }", "must be a table"},
        BadCase{"[host.\"https://m  x\"]", "malformed server URL"},
        BadCase{"[host.\"\"]", "malformed server URL"}));

TEST(HostsTest, RejectsHugeFile) {
  std::string huge = "# " + std::string(2 << 20, 'x');
  EXPECT_EQ(Parse(huge).status().code(), absl::StatusCode::kInvalidArgument);
}

// Writes <dir>/<name>/hosts.toml (creating the directory).
void WriteHosts(const TempDir& dir, const std::string& name, const std::string& toml) {
  ASSERT_TRUE(MakeDirs(dir.Join(name)).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.Join(name) + "/hosts.toml", toml).ok());
}

TEST(HostsTest, LoadsDirectoryPerRegistry) {
  auto dir = TempDir::Create("hosts-test-");
  ASSERT_TRUE(dir.ok()) << dir.status();
  WriteHosts(*dir, "docker.io", "[host.\"https://mirror.gcr.io\"]\ncapabilities = [\"pull\"]\n");
  auto hosts = LoadRegistryHosts(dir->path(), "docker.io");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[0].BaseUrl(), "https://mirror.gcr.io/v2");
  EXPECT_EQ((*hosts)[1].BaseUrl(), "https://registry-1.docker.io/v2");
  // Another registry without a directory gets its default server.
  auto other = LoadRegistryHosts(dir->path(), "quay.io");
  ASSERT_TRUE(other.ok());
  ASSERT_EQ(other->size(), 1u);
  EXPECT_EQ((*other)[0].BaseUrl(), "https://quay.io/v2");
}

TEST(HostsTest, PortDirectoryNamesAndDefaultFallback) {
  auto dir = TempDir::Create("hosts-test-");
  ASSERT_TRUE(dir.ok());
  WriteHosts(*dir, "reg.example.com:5000", "server = \"https://colon-dir\"\n");
  WriteHosts(*dir, "other.example.com_5000_", "server = \"https://underscore-dir\"\n");
  WriteHosts(*dir, "other.example.com:5000", "server = \"https://colon-loses\"\n");
  WriteHosts(*dir, "_default", "server = \"https://default-dir\"\n");

  auto colon = LoadRegistryHosts(dir->path(), "reg.example.com:5000");
  ASSERT_TRUE(colon.ok()) << colon.status();
  EXPECT_EQ(colon->back().host, "colon-dir");
  // "host_port_" is looked up before "host:port".
  auto underscore = LoadRegistryHosts(dir->path(), "other.example.com:5000");
  ASSERT_TRUE(underscore.ok());
  EXPECT_EQ(underscore->back().host, "underscore-dir");
  auto fallback = LoadRegistryHosts(dir->path(), "ghcr.io");
  ASSERT_TRUE(fallback.ok());
  ASSERT_EQ(fallback->size(), 1u);
  EXPECT_EQ(fallback->back().host, "default-dir");
}

TEST(HostsTest, CertsDirectoryWithoutHostsToml) {
  auto dir = TempDir::Create("hosts-test-");
  ASSERT_TRUE(dir.ok());
  std::string reg = dir->Join("myregistry.example.com:5000");
  ASSERT_TRUE(MakeDirs(reg).ok());
  ASSERT_TRUE(WriteFileAtomic(reg + "/ca.crt", "PEM").ok());
  ASSERT_TRUE(WriteFileAtomic(reg + "/client.cert", "PEM").ok());
  ASSERT_TRUE(WriteFileAtomic(reg + "/client.key", "PEM").ok());
  auto hosts = LoadRegistryHosts(dir->path(), "myregistry.example.com:5000");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 1u);
  const RegistryHost& h = (*hosts)[0];
  EXPECT_EQ(h.BaseUrl(), "https://myregistry.example.com:5000/v2");
  EXPECT_EQ(h.tls.ca_file, reg + "/ca.crt");
  EXPECT_EQ(h.tls.client_cert_file, reg + "/client.cert");
  EXPECT_EQ(h.tls.client_key_file, reg + "/client.key");
}

TEST(HostsTest, MalformedFileNamesThePath) {
  auto dir = TempDir::Create("hosts-test-");
  ASSERT_TRUE(dir.ok());
  WriteHosts(*dir, "docker.io", "capabilities = [\"fly\"]\n");
  auto hosts = LoadRegistryHosts(dir->path(), "docker.io");
  ASSERT_FALSE(hosts.ok());
  EXPECT_EQ(hosts.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(hosts.status().message().find(dir->Join("docker.io/hosts.toml")), std::string::npos)
      << hosts.status();
}

TEST(HostsTest, RejectsPathLikeRegistryNames) {
  for (const char* bad : {"", ".", "..", "../etc", "a/b", "a\\b"}) {
    EXPECT_EQ(LoadRegistryHosts("/nonexistent", bad).status().code(),
              absl::StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(HostsTest, TopLevelTlsWithoutServerAppliesToDefault) {
  auto hosts = ParseHostsToml("skip_verify = true\ncapabilities = [\"pull\"]\n", "localhost:5000",
                              "/d");
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  ASSERT_EQ(hosts->size(), 1u);
  EXPECT_EQ((*hosts)[0].BaseUrl(), "http://localhost:5000/v2");
  EXPECT_TRUE((*hosts)[0].tls.skip_verify);
  // containerd gives the implicit default server every capability.
  EXPECT_EQ((*hosts)[0].capabilities, kCapPull | kCapResolve | kCapPush);
}

}  // namespace
}  // namespace slipstream::remote
