// SPDX-License-Identifier: Apache-2.0
// RegistryClient against registries with Basic auth, Bearer tokens and TLS.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "remote/curl_transport.h"
#include "testkit/token_server.h"
#include "tests/remote/registry_integration_env.h"

namespace slipstream::remote {
namespace {

using ::slipstream::remote::testing::FastRetry;
using ::slipstream::remote::testing::NewClient;
using ::slipstream::remote::testing::PushImage;
using ::slipstream::remote::testing::RandomBytes;
using ::slipstream::remote::testing::Ref;
using ::slipstream::remote::testing::RegistryIntegrationTest;
using ::slipstream::remote::testing::WriteHosts;
using ::testing::HasSubstr;
using testkit::RegistryAuth;
using testkit::RegistryFixture;

// --- auth and TLS variants -----------------------------------------------------------------

TEST(RegistryAuthTest, BasicAuthWithHtpasswd) {
  auto f = RegistryFixture::Start({.auth = RegistryAuth::kBasic});
  ASSERT_TRUE(f.ok()) << f.status();
  Reference ref = Ref((*f)->host(), "basic/app:v1");
  auto anonymous = NewClient();
  absl::Status denied = anonymous->PushBlob(ref, Sha256Of("abc"), "abc");
  EXPECT_TRUE(absl::IsUnauthenticated(denied)) << denied;

  auto creds = std::make_shared<StaticCredentials>();
  creds->Set((*f)->host(), Credentials{.username = (*f)->username(), .password = (*f)->password()});
  auto client = NewClient({.creds = creds});
  const std::string blob = RandomBytes(70000, 5);
  ASSERT_TRUE(client->PushBlob(ref, Sha256Of(blob), blob).ok());
  auto got = client->ReadBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 70000});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == blob);

  creds->Set((*f)->host(), Credentials{.username = (*f)->username(), .password = "wrong"});
  auto wrong = NewClient({.creds = creds});
  EXPECT_TRUE(absl::IsUnauthenticated(
      wrong->ReadBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 70000}).status()));
}

TEST(RegistryAuthTest, BearerTokensFromTokenServer) {
  auto f = RegistryFixture::Start({.auth = RegistryAuth::kToken});
  ASSERT_TRUE(f.ok()) << f.status();
  Reference ref = Ref((*f)->host(), "token/app:v1");
  auto creds = std::make_shared<StaticCredentials>();
  creds->Set((*f)->host(), Credentials{.username = (*f)->username(), .password = (*f)->password()});
  auto client = NewClient({.creds = creds});
  const std::string layer = RandomBytes(120000, 6);
  Descriptor m = PushImage(*client, ref, layer, "linux", "amd64");
  auto resolved = client->ResolveImage(ref, Platform{.os = "linux", .architecture = "amd64"});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->manifest_digest, m.digest);
  const int issued = (*f)->token_server()->tokens_issued();
  EXPECT_GE(issued, 1);
  // Cached tokens: more reads ask for no new token.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client->ReadBlob(ref, resolved->manifest.layers[0]).ok());
  }
  EXPECT_EQ((*f)->token_server()->tokens_issued(), issued);

  // Anonymous clients may pull but not push.
  auto anonymous = NewClient();
  auto pulled = anonymous->ReadBlob(ref, resolved->manifest.layers[0]);
  ASSERT_TRUE(pulled.ok()) << pulled.status();
  EXPECT_TRUE(*pulled == layer);
  absl::Status push = anonymous->PushBlob(ref, Sha256Of("zzz"), "zzz");
  EXPECT_FALSE(push.ok());
}

TEST(RegistryAuthTest, TlsWithCustomCaAndWithSkipVerify) {
  auto f = RegistryFixture::Start({.tls = true});
  ASSERT_TRUE(f.ok()) << f.status();
  const std::string host = (*f)->host();
  Reference ref = Ref(host, "tls/app:v1");
  const std::string blob = RandomBytes(40000, 8);

  auto with_ca = TempDir::Create();
  ASSERT_TRUE(with_ca.ok());
  WriteHosts(*with_ca, host, absl::StrCat("server = \"https://", host, "\"\n[host.\"https://",
                                          host, "\"]\n  ca = \"", (*f)->ca_cert_path(), "\"\n"));
  auto client = NewClient({.hosts_dir = with_ca->path()});
  absl::Status pushed = client->PushBlob(ref, Sha256Of(blob), blob);
  ASSERT_TRUE(pushed.ok()) << pushed;
  auto got = client->ReadBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 40000});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == blob);

  auto skip = TempDir::Create();
  ASSERT_TRUE(skip.ok());
  WriteHosts(*skip, host, absl::StrCat("server = \"https://", host, "\"\n[host.\"https://",
                                       host, "\"]\n  skip_verify = true\n"));
  auto skipping = NewClient({.hosts_dir = skip->path()});
  auto got2 = skipping->ReadBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 40000});
  ASSERT_TRUE(got2.ok()) << got2.status();

  // Concurrent Range reads over TLS multiplex as HTTP/2 streams on few connections.
  {
    auto transport = CurlTransport::Create();
    ASSERT_TRUE(transport.ok());
    CurlTransport* curl = transport->get();
    RegistryClientOptions o;
    o.hosts_dir = with_ca->path();
    o.transport = *std::move(transport);
    auto h2client = RegistryClient::Create(std::move(o));
    ASSERT_TRUE(h2client.ok());
    auto reader = (*h2client)->OpenBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 40000});
    ASSERT_TRUE(reader->ReadAt(0, 10).ok());  // warm up: one connection, ALPN h2
    std::vector<std::thread> threads;
    std::atomic<int> bad{0};
    for (int i = 0; i < 16; ++i) {
      threads.emplace_back([&, i] {
        auto got = reader->ReadAt(i * 2000, 2000);
        if (!got.ok() || *got != blob.substr(i * 2000, 2000)) ++bad;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(bad, 0);
    CurlTransport::Stats st = curl->stats();
    EXPECT_GT(st.http2_responses, 16);
    EXPECT_LE(st.connections_opened, 2);
  }

  auto plain = TempDir::Create();
  ASSERT_TRUE(plain.ok());
  WriteHosts(*plain, host, absl::StrCat("server = \"https://", host, "\"\n"));
  auto untrusting = NewClient({.hosts_dir = plain->path()});
  auto refused = untrusting->ReadBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 40000});
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
}


}  // namespace
}  // namespace slipstream::remote
