// SPDX-License-Identifier: Apache-2.0
// RegistryClient through the fault-injecting proxy, and transport-level behaviour (redirects,
// oversized manifests) against in-process servers.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "common/status.h"
#include "remote/chunk_cache.h"
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
using testkit::Fault;
using testkit::FaultProxy;

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

TEST_F(FaultTest, ChunkCacheServesRepeatDownloadsAndForgetsCorruptBlobs) {
  auto cache_dir = TempDir::Create();
  ASSERT_TRUE(cache_dir.ok());
  auto cache = ChunkCache::Open({.dir = cache_dir->Join("cache")});
  ASSERT_TRUE(cache.ok()) << cache.status();
  auto client = NewClient();
  ParallelFetchOptions opts;
  opts.chunk_size = 256 << 10;
  opts.concurrency = 4;
  opts.cache = cache->get();
  auto download = [&]() -> absl::Status {
    auto dir = TempDir::Create();
    if (!dir.ok()) return dir.status();
    auto fd = OpenFile(dir->Join("blob"), O_RDWR | O_CREAT | O_TRUNC);
    if (!fd.ok()) return fd.status();
    SS_RETURN_IF_ERROR(client->DownloadBlob(ref_, desc_, fd->get(), opts));
    auto got = ReadFileToString(dir->Join("blob"));
    if (!got.ok()) return got.status();
    return *got == blob_ ? absl::OkStatus() : absl::DataLossError("content differs");
  };

  // A corrupted chunk fails the download and is not kept: the cache holds none of the blob.
  auto bad = proxy_->Add(Fault::CorruptAt(1000).On("GET", "/blobs/").Times(1));
  EXPECT_TRUE(absl::IsDataLoss(download()));
  EXPECT_EQ(proxy_->hits(bad), 1);
  EXPECT_EQ((*cache)->stats().stored_chunks, 0);

  // A clean download fills the cache; the next one asks the registry for no blob bytes.
  ASSERT_TRUE(download().ok());
  EXPECT_EQ((*cache)->stats().stored_chunks, 8);
  const int gets_before = proxy_->CountRequests("GET", "/blobs/");
  ASSERT_TRUE(download().ok());
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), gets_before);
  EXPECT_GE((*cache)->stats().hits, 8);
}


// --- manifests over the real transport -----------------------------------------------------

TEST(RegistryTransportTest, OversizedManifestIsRefusedAnnouncedOrStreamed) {
  const std::string big(kMaxManifestBytes + 100, ' ');
  auto server = HttpServer::Start([&](const HttpServerRequest& r) {
    HttpServerResponse resp;
    resp.headers = {{"Content-Type", std::string(kOciManifest)}};
    if (r.path.find("announced") != std::string::npos) {
      resp.body = big;
    } else {
      // Chunked: no Content-Length, so only the streamed size can tell.
      resp.content_length = -1;
      resp.body_stream = [&](BodyWriter& w) {
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
  auto storage = HttpServer::Start([&](const HttpServerRequest& r) {
    if (!r.Header("authorization").empty()) ++storage_with_auth;
    HttpServerResponse resp;
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
  auto registry = HttpServer::Start([&](const HttpServerRequest& r) {
    if (r.Header("authorization") != "Basic dTpw") {
      HttpServerResponse deny = HttpServerResponse::Text(401, "");
      deny.headers.emplace_back("WWW-Authenticate", "Basic realm=\"test\"");
      return deny;
    }
    ++registry_blob_gets;
    HttpServerResponse redirect = HttpServerResponse::Text(307, "");
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


}  // namespace
}  // namespace slipstream::remote
