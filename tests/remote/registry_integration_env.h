// SPDX-License-Identifier: Apache-2.0
// Helpers for the registry integration tests: clients with fast retries, image pushing,
// hosts.toml writing, and a suite fixture sharing one anonymous registry.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "remote/media_types.h"
#include "remote/registry_client.h"
#include "testkit/registry_fixture.h"

namespace slipstream::remote::testing {

inline std::string RandomBytes(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i += 8) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    memcpy(&s[i], &x, std::min<size_t>(8, n - i));
  }
  return s;
}

inline RetryPolicy FastRetry() {
  RetryPolicy p;
  p.initial_backoff = absl::Milliseconds(20);
  p.max_backoff = absl::Milliseconds(200);
  p.max_total = absl::Seconds(30);
  return p;
}

struct ClientSetup {
  std::string hosts_dir;
  std::shared_ptr<CredentialStore> creds;
  absl::Duration stall_timeout = absl::Seconds(30);
  absl::Duration max_total = absl::Seconds(30);  // bound on one call's retries
};

inline std::unique_ptr<RegistryClient> NewClient(ClientSetup setup = {}) {
  RegistryClientOptions o;
  o.hosts_dir = setup.hosts_dir;
  o.credentials = setup.creds;
  o.retry = FastRetry();
  o.retry.max_total = setup.max_total;
  o.stall_timeout = setup.stall_timeout;
  auto c = RegistryClient::Create(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

inline Reference Ref(const std::string& host, const std::string& rest) {
  auto r = Reference::Parse(host + "/" + rest);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

// Writes <dir>/<registry>/hosts.toml.
inline void WriteHosts(const TempDir& dir, const std::string& registry, const std::string& toml) {
  ASSERT_TRUE(MakeDirs(dir.Join(registry)).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.Join(registry + "/hosts.toml"), toml).ok());
}

// Pushes a one-layer image for `platform`; returns the manifest descriptor.
inline Descriptor PushImage(RegistryClient& c, const Reference& ref, const std::string& layer,
                     const std::string& os, const std::string& arch) {
  const std::string config = R"({"architecture":")" + arch + R"(","os":")" + os +
                             R"(","rootfs":{"type":"layers","diff_ids":[")" +
                             Sha256Of(layer).str() + R"("]},"config":{}})";
  EXPECT_TRUE(c.PushBlob(ref, Sha256Of(config), config).ok());
  EXPECT_TRUE(c.PushBlob(ref, Sha256Of(layer), layer).ok());
  const std::string manifest =
      R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)"
      R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
      Sha256Of(config).str() + R"(","size":)" + std::to_string(config.size()) +
      R"(},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")" +
      Sha256Of(layer).str() + R"(","size":)" + std::to_string(layer.size()) + "}]}";
  auto d = c.PushManifest(ref, kOciManifest, manifest);
  EXPECT_TRUE(d.ok()) << d.status();
  Descriptor desc;
  desc.media_type = std::string(kOciManifest);
  desc.digest = Sha256Of(manifest);
  desc.size = static_cast<int64_t>(manifest.size());
  desc.platform = Platform{.os = os, .architecture = arch};
  return desc;
}


// One anonymous registry shared by the tests that do not need a special one.
class RegistryIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = testkit::RegistryFixture::Start();
    ASSERT_TRUE(f.ok()) << f.status();
    registry_ = f->release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  static inline testkit::RegistryFixture* registry_ = nullptr;
};

}  // namespace slipstream::remote::testing
