// SPDX-License-Identifier: Apache-2.0
// RegistryClient + CurlTransport against a real docker-registry (distribution) process, its
// auth variants, TLS, mirrors and the fault-injecting proxy.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "remote/curl_transport.h"
#include "remote/media_types.h"
#include "remote/registry_client.h"
#include "testkit/fault_proxy.h"
#include "testkit/http_server.h"
#include "testkit/registry_fixture.h"
#include "testkit/token_server.h"

namespace slipstream::remote {
namespace {

using testkit::Fault;
using testkit::FaultProxy;
using testkit::RegistryAuth;
using testkit::RegistryFixture;
using testkit::RegistryFixtureOptions;
using ::testing::HasSubstr;

std::string RandomBytes(size_t n, uint64_t seed) {
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

RetryPolicy FastRetry() {
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
};

std::unique_ptr<RegistryClient> NewClient(ClientSetup setup = {}) {
  RegistryClientOptions o;
  o.hosts_dir = setup.hosts_dir;
  o.credentials = setup.creds;
  o.retry = FastRetry();
  o.stall_timeout = setup.stall_timeout;
  auto c = RegistryClient::Create(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

Reference Ref(const std::string& host, const std::string& rest) {
  auto r = Reference::Parse(host + "/" + rest);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

// Writes <dir>/<registry>/hosts.toml.
void WriteHosts(const TempDir& dir, const std::string& registry, const std::string& toml) {
  ASSERT_TRUE(MakeDirs(dir.Join(registry)).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.Join(registry + "/hosts.toml"), toml).ok());
}

// Pushes a one-layer image for `platform`; returns the manifest descriptor.
Descriptor PushImage(RegistryClient& c, const Reference& ref, const std::string& layer,
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
    auto f = RegistryFixture::Start();
    ASSERT_TRUE(f.ok()) << f.status();
    registry_ = f->release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }
  static RegistryFixture* registry_;
};
RegistryFixture* RegistryIntegrationTest::registry_ = nullptr;

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

// --- faults ------------------------------------------------------------------------------

class FaultTest : public RegistryIntegrationTest {
 protected:
  void SetUp() override {
    auto p = FaultProxy::Start(registry_->host());
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = *std::move(p);
    // Content goes in directly; reads go through the proxy (same storage behind it).
    auto direct = NewClient();
    blob_ = RandomBytes(2 << 20, 77);
    digest_ = Sha256Of(blob_);
    ASSERT_TRUE(direct->PushBlob(Ref(registry_->host(), "faults/app:v1"), digest_, blob_).ok());
    ref_ = Ref(proxy_->host(), "faults/app:v1");
    desc_ = Descriptor{.digest = digest_, .size = static_cast<int64_t>(blob_.size())};
  }
  std::string ReadAllRange(RegistryClient& c, absl::Status* st) {
    std::string out;
    *st = c.ReadBlobRange(ref_, digest_, 0, desc_.size, [&](std::string_view b) {
      out.append(b.data(), b.size());
      return absl::OkStatus();
    });
    return out;
  }
  std::unique_ptr<FaultProxy> proxy_;
  std::string blob_;
  Digest digest_;
  Reference ref_;
  Descriptor desc_;
};

TEST_F(FaultTest, DroppedConnectionIsResumed) {
  auto client = NewClient();
  auto id = proxy_->Add(Fault::DropAfter(300000).On("GET", "/blobs/").Times(2));
  absl::Status st;
  std::string got = ReadAllRange(*client, &st);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(got == blob_);
  EXPECT_EQ(proxy_->hits(id), 2);
}

TEST_F(FaultTest, TruncatedBodyIsResumed) {
  auto client = NewClient();
  auto id = proxy_->Add(Fault::TruncateAfter(5000).On("GET", "/blobs/"));
  auto got = client->ReadBlob(ref_, desc_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == blob_);
  EXPECT_EQ(proxy_->hits(id), 1);
}

TEST_F(FaultTest, ServerErrorBurstIsRetried) {
  auto client = NewClient();
  auto id = proxy_->Add(Fault::Status(503).On("GET", "/blobs/").Times(3));
  auto got = client->ReadBlob(ref_, desc_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == blob_);
  EXPECT_EQ(proxy_->hits(id), 3);
}

TEST_F(FaultTest, TooManyRequestsHonoursRetryAfter) {
  auto client = NewClient();
  auto id = proxy_->Add(Fault::Status(429, "1").On("GET", "/blobs/"));
  absl::Time start = absl::Now();
  auto got = client->ReadBlob(ref_, desc_);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_GE(absl::Now() - start, absl::Seconds(1));
  EXPECT_EQ(proxy_->hits(id), 1);
}

TEST_F(FaultTest, StalledTransferIsAbortedAndResumed) {
  auto client = NewClient({.stall_timeout = absl::Seconds(2)});
  auto id = proxy_->Add(Fault::StallAfter(100000).On("GET", "/blobs/"));
  absl::Status st;
  std::string got = ReadAllRange(*client, &st);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_TRUE(got == blob_);
  EXPECT_EQ(proxy_->hits(id), 1);
}

TEST_F(FaultTest, PersistentErrorsGiveUpAsUnavailable) {
  auto client = NewClient();
  proxy_->Add(Fault::Status(502).On("GET", "/blobs/").Times(-1));
  auto got = client->ReadBlob(ref_, desc_);
  EXPECT_TRUE(absl::IsUnavailable(got.status())) << got.status();
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("HTTP 502"));
}

TEST_F(FaultTest, CorruptedBytesAreNeverAccepted) {
  auto client = NewClient();
  proxy_->Add(Fault::CorruptAt(12345).On("GET", "/blobs/").Times(-1));
  auto got = client->ReadBlob(ref_, desc_);
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();

  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  auto fd = OpenFile(dir->Join("blob"), O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok());
  ParallelFetchOptions opts;
  opts.chunk_size = 256 << 10;
  absl::Status st = client->DownloadBlob(ref_, desc_, fd->get(), opts);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
}

// --- mirrors -----------------------------------------------------------------------------

TEST_F(RegistryIntegrationTest, DeadMirrorFallsBackToTheNextInOrder) {
  // A port that refuses connections: bind a server and stop it.
  auto dead = testkit::HttpServer::Start([](const testkit::HttpServerRequest&) {
    return testkit::HttpServerResponse::Text(500, "");
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

// --- manifests over the real transport -----------------------------------------------------

TEST(RegistryTransportTest, OversizedManifestIsRefusedAnnouncedOrStreamed) {
  const std::string big(kMaxManifestBytes + 100, ' ');
  auto server = testkit::HttpServer::Start([&](const testkit::HttpServerRequest& r) {
    testkit::HttpServerResponse resp;
    resp.headers = {{"Content-Type", std::string(kOciManifest)}};
    if (r.path.find("announced") != std::string::npos) {
      resp.body = big;
    } else {
      // Chunked: no Content-Length, so only the streamed size can tell.
      resp.content_length = -1;
      resp.body_stream = [&](testkit::BodyWriter& w) {
        for (size_t off = 0; off < big.size(); off += 65536) {
          if (!w.Write(std::string_view(big).substr(off, 65536)).ok()) break;
        }
        return absl::OkStatus();
      };
    }
    return resp;
  });
  ASSERT_TRUE(server.ok());
  auto client = NewClient();
  for (const char* repo : {"announced/app:v1", "streamed/app:v1"}) {
    auto m = client->GetManifest(Ref((*server)->host(), repo));
    EXPECT_TRUE(absl::IsResourceExhausted(m.status())) << repo << ": " << m.status();
  }
}

TEST(RegistryTransportTest, RedirectTargetGetsNoAuthorizationAndIsReused) {
  const std::string blob = RandomBytes(50000, 11);
  const Digest d = Sha256Of(blob);
  std::atomic<int> storage_with_auth{0}, registry_blob_gets{0};
  auto storage = testkit::HttpServer::Start([&](const testkit::HttpServerRequest& r) {
    if (!r.Header("authorization").empty()) ++storage_with_auth;
    testkit::HttpServerResponse resp;
    std::string range = r.Header("range");
    long long a = 0, b = 0;
    if (sscanf(range.c_str(), "bytes=%lld-%lld", &a, &b) == 2) {
      b = std::min<long long>(b, blob.size() - 1);
      resp.status = 206;
      resp.body = blob.substr(a, b - a + 1);
      resp.headers = {{"Content-Range", absl::StrCat("bytes ", a, "-", b, "/", blob.size())}};
    } else {
      resp.body = blob;
    }
    return resp;
  });
  ASSERT_TRUE(storage.ok());
  const std::string storage_url = (*storage)->url();
  auto registry = testkit::HttpServer::Start([&](const testkit::HttpServerRequest& r) {
    if (r.Header("authorization") != "Basic dTpw") {
      testkit::HttpServerResponse deny = testkit::HttpServerResponse::Text(401, "");
      deny.headers.emplace_back("WWW-Authenticate", "Basic realm=\"test\"");
      return deny;
    }
    ++registry_blob_gets;
    testkit::HttpServerResponse redirect = testkit::HttpServerResponse::Text(307, "");
    redirect.headers.emplace_back("Location", storage_url + "/presigned?sig=abc");
    return redirect;
  });
  ASSERT_TRUE(registry.ok());
  auto creds = std::make_shared<StaticCredentials>();
  creds->Set((*registry)->host(), Credentials{.username = "u", .password = "p"});
  auto client = NewClient({.creds = creds});
  Reference ref = Ref((*registry)->host(), "redirect/app:v1");
  auto whole = client->ReadBlob(ref, Descriptor{.digest = d, .size = 50000});
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(*whole == blob);
  auto reader = client->OpenBlob(ref, Descriptor{.digest = d, .size = 50000});
  for (int64_t off : {0, 1000, 49000}) {
    auto got = reader->ReadAt(off, 500);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, blob.substr(off, 500));
  }
  EXPECT_EQ(registry_blob_gets, 1);  // later reads went straight to the remembered target
  EXPECT_EQ(storage_with_auth, 0);
}

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

  auto plain = TempDir::Create();
  ASSERT_TRUE(plain.ok());
  WriteHosts(*plain, host, absl::StrCat("server = \"https://", host, "\"\n"));
  auto untrusting = NewClient({.hosts_dir = plain->path()});
  auto refused = untrusting->ReadBlob(ref, Descriptor{.digest = Sha256Of(blob), .size = 40000});
  EXPECT_TRUE(absl::IsFailedPrecondition(refused.status())) << refused.status();
}

}  // namespace
}  // namespace slipstream::remote
