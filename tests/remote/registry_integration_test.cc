// SPDX-License-Identifier: Apache-2.0
// RegistryClient + CurlTransport against a real docker-registry: push/pull, platforms, Range
// reads, a 600 MiB blob, mirror fallback.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "testkit/fault_proxy.h"
#include "common/http_server.h"
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
using testkit::FaultProxy;

TEST_F(RegistryIntegrationTest, AnonymousPushThenPullRoundTrip) {
  auto client = NewClient();
  Reference ref = Ref(registry_->host(), "round/trip:v1");
  const std::string layer = RandomBytes(300000, 1);
  Descriptor m = PushImage(*client, ref, layer, "linux", "amd64");
  auto exists = client->BlobExists(ref, Sha256Of(layer));
  ASSERT_TRUE(exists.ok()) << exists.status();
  EXPECT_TRUE(*exists);

  auto resolved = client->ResolveImage(ref, Platform{.os = "linux", .architecture = "amd64"});
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->manifest_digest, m.digest);
  EXPECT_EQ(resolved->ref.digest, m.digest.str());
  EXPECT_FALSE(resolved->index_digest.has_value());
  ASSERT_EQ(resolved->manifest.layers.size(), 1u);
  auto got = client->ReadBlob(ref, resolved->manifest.layers[0]);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == layer);

  auto missing = client->ReadBlob(ref, Descriptor{.digest = Sha256Of("nope"), .size = 4});
  EXPECT_TRUE(absl::IsNotFound(missing.status())) << missing.status();
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("GET " + registry_->host() + "/round/trip blob sha256:"));
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("HTTP 404"));
}

TEST_F(RegistryIntegrationTest, PlatformSelectedFromPushedIndex) {
  auto client = NewClient();
  Reference ref = Ref(registry_->host(), "multi/arch:v1");
  Descriptor amd = PushImage(*client, ref.WithDigest(""), RandomBytes(1000, 2), "linux", "amd64");
  Descriptor arm = PushImage(*client, ref, RandomBytes(1000, 3), "linux", "arm64");
  ImageIndex index;
  index.media_type = std::string(kOciIndex);
  index.manifests = {amd, arm};
  auto idx = client->PushManifest(ref, kOciIndex, index.ToJson());
  ASSERT_TRUE(idx.ok()) << idx.status();

  auto got = client->ResolveImage(ref, Platform{.os = "linux", .architecture = "arm64"});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->index_digest, *idx);
  EXPECT_EQ(got->manifest_digest, arm.digest);
  EXPECT_EQ(got->config.platform.architecture, "arm64");
  auto none = client->ResolveImage(ref, Platform{.os = "linux", .architecture = "s390x"});
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
}

TEST_F(RegistryIntegrationTest, RangeReadsAtRandomOffsetsMatch) {
  auto client = NewClient();
  Reference ref = Ref(registry_->host(), "range/reads:v1");
  const std::string blob = RandomBytes(5 << 20, 4);
  const Digest d = Sha256Of(blob);
  ASSERT_TRUE(client->PushBlob(ref, d, blob).ok());
  auto reader = client->OpenBlob(ref, Descriptor{.digest = d, .size = static_cast<int64_t>(blob.size())});
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      for (int i = 0; i < 25; ++i) {
        int64_t off = rng() % blob.size();
        int64_t len = 1 + rng() % (300 << 10);
        auto got = reader->ReadAt(off, len);
        if (!got.ok() || *got != blob.substr(off, len)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, 0);
}

TEST_F(RegistryIntegrationTest, LargeBlobPushedFromFileAndFetchedWith16Ranges) {
  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  constexpr int64_t kSize = int64_t{600} << 20;
  // Pseudo-random content streamed to a file (never whole in memory), hashed on the way.
  auto src = OpenFile(dir->Join("src"), O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_TRUE(src.ok());
  Sha256Hasher hasher;
  for (int64_t off = 0; off < kSize; off += 8 << 20) {
    std::string block = RandomBytes(8 << 20, 1000 + off);
    hasher.Update(block);
    ASSERT_TRUE(WriteAll(src->get(), block).ok());
  }
  const Digest d = hasher.Finish();
  auto client = NewClient();
  Reference ref = Ref(registry_->host(), "large/blob:v1");
  absl::Time t0 = absl::Now();
  absl::Status pushed = client->PushBlobFromFile(ref, d, src->get(), kSize);
  ASSERT_TRUE(pushed.ok()) << pushed;
  absl::Time t1 = absl::Now();

  auto dst = OpenFile(dir->Join("dst"), O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_TRUE(dst.ok());
  ParallelFetchOptions opts;
  opts.concurrency = 16;
  std::atomic<int64_t> progress{0};
  opts.progress = [&](int64_t done) { progress = done; };
  absl::Status fetched = client->DownloadBlob(ref, Descriptor{.digest = d, .size = kSize},
                                              dst->get(), opts);
  ASSERT_TRUE(fetched.ok()) << fetched;  // DownloadBlob verified the sha256 of the file
  EXPECT_EQ(progress, kSize);
  absl::Time t2 = absl::Now();
  ::testing::Test::RecordProperty("push_seconds", absl::FormatDuration(t1 - t0));
  ::testing::Test::RecordProperty("fetch_seconds", absl::FormatDuration(t2 - t1));
  std::fprintf(stderr, "600 MiB push %s, parallel fetch %s\n",
               absl::FormatDuration(t1 - t0).c_str(), absl::FormatDuration(t2 - t1).c_str());
}


// --- mirrors -----------------------------------------------------------------------------

TEST_F(RegistryIntegrationTest, DeadMirrorFallsBackToTheNextInOrder) {
  // A port that refuses connections: bind a server and stop it.
  auto dead = HttpServer::Start([](const HttpServerRequest&) {
    return HttpServerResponse::Text(500, "");
  });
  ASSERT_TRUE(dead.ok());
  const std::string dead_host = (*dead)->host();
  (*dead)->Stop();
  auto proxy = FaultProxy::Start(registry_->host());
  ASSERT_TRUE(proxy.ok());

  auto direct = NewClient();
  Reference upstream_ref = Ref(registry_->host(), "mirrored/app:v1");
  const std::string blob = RandomBytes(100000, 9);
  ASSERT_TRUE(direct->PushBlob(upstream_ref, Sha256Of(blob), blob).ok());

  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  WriteHosts(*dir, "mirror.example:5000", absl::StrCat(R"(
server = "http://)", registry_->host(), R"("
[host."http://)", dead_host, R"("]
  capabilities = ["pull"]
[host."http://)", (*proxy)->host(), R"("]
  capabilities = ["pull"]
)"));
  auto client = NewClient({.hosts_dir = dir->path()});
  Reference ref = Ref("mirror.example:5000", "mirrored/app:v1");
  auto got = client->ReadBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 100000});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == blob);
  EXPECT_EQ((*proxy)->CountRequests("GET", "/blobs/"), 1);  // the second mirror served it
}


}  // namespace
}  // namespace slipstream::remote
