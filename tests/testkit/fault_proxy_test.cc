// SPDX-License-Identifier: Apache-2.0
// Integration tests: FaultProxy in front of a real registry (and of a scripted HttpServer),
// observed with an independent libcurl client.
#include "testkit/fault_proxy.h"

#include <random>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "gtest/gtest.h"
#include "testkit/net_fetch.h"
#include "testkit/registry_fixture.h"

namespace slipstream::testkit {
namespace {

FetchResult FetchOrDie(const std::string& url, const FetchOptions& options = {}) {
  absl::StatusOr<FetchResult> r = Fetch(url, options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : FetchResult{};
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

// Pushes `data` as a blob of `repo` through `base_url` (POST + PUT); returns the PUT answer.
FetchResult PushBlob(const std::string& base_url, const std::string& repo,
                     const std::string& data, std::string* location_seen = nullptr) {
  FetchOptions post;
  post.method = "POST";
  FetchResult opened = FetchOrDie(absl::StrCat(base_url, "/v2/", repo, "/blobs/uploads/"), post);
  if (opened.status != 202) return opened;
  std::string location = opened.Header("location");
  if (location_seen != nullptr) *location_seen = location;
  if (absl::StartsWith(location, "/")) location = base_url + location;
  FetchOptions put;
  put.method = "PUT";
  put.body = data;
  return FetchOrDie(absl::StrCat(location, absl::StrContains(location, "?") ? "&" : "?",
                                 "digest=", Sha256Of(data).str()),
                    put);
}

// One registry with one 256 KiB blob, shared by the tests of this suite (starting a registry
// per test would cost more than the tests themselves). Each test gets its own proxy.
class FaultProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<RegistryFixture>> reg = RegistryFixture::Start();
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = std::move(reg).value().release();
    blob_ = new std::string(RandomBytes(256 * 1024, 42));
    FetchResult pushed = PushBlob(registry_->url(), kRepo, *blob_);
    ASSERT_EQ(pushed.status, 201) << pushed.body;
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
    delete blob_;
    blob_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(registry_, nullptr);
    absl::StatusOr<std::unique_ptr<FaultProxy>> proxy = FaultProxy::Start(registry_->host());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(proxy).value();
  }

  std::string BlobUrl() const {
    return absl::StrCat(proxy_->url(), "/v2/", kRepo, "/blobs/", Sha256Of(*blob_).str());
  }

  static constexpr const char* kRepo = "testkit/proxy";
  static RegistryFixture* registry_;
  static std::string* blob_;
  std::unique_ptr<FaultProxy> proxy_;
};

RegistryFixture* FaultProxyTest::registry_ = nullptr;
std::string* FaultProxyTest::blob_ = nullptr;

TEST_F(FaultProxyTest, PassesBlobsRangesHeadsAndUploadsThroughUnchanged) {
  FetchResult full = FetchOrDie(BlobUrl());
  ASSERT_TRUE(full.ok()) << full.error;
  EXPECT_EQ(full.status, 200);
  EXPECT_TRUE(full.body == *blob_);
  EXPECT_EQ(full.Header("docker-content-digest"), Sha256Of(*blob_).str());

  FetchOptions range;
  range.headers.push_back("Range: bytes=1000-1999");
  FetchResult part = FetchOrDie(BlobUrl(), range);
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.Header("content-range"), absl::StrCat("bytes 1000-1999/", blob_->size()));
  EXPECT_TRUE(part.body == blob_->substr(1000, 1000));

  FetchOptions head;
  head.method = "HEAD";
  FetchResult headed = FetchOrDie(BlobUrl(), head);
  EXPECT_TRUE(headed.ok()) << headed.error;
  EXPECT_EQ(headed.status, 200);
  EXPECT_EQ(headed.Header("content-length"), absl::StrCat(blob_->size()));
  EXPECT_TRUE(headed.body.empty());

  EXPECT_EQ(FetchOrDie(absl::StrCat(proxy_->url(), "/v2/", kRepo, "/blobs/sha256:",
                                    std::string(64, '0')))
                .status,
            404);

  // Uploads: the registry builds Location from the Host header the proxy forwards, so the
  // session URL points back at the proxy and the PUT flows through it too.
  std::string location;
  const std::string small = "uploaded through the proxy";
  EXPECT_EQ(PushBlob(proxy_->url(), kRepo, small, &location).status, 201);
  EXPECT_TRUE(absl::StartsWith(location, proxy_->url())) << location;
  EXPECT_EQ(proxy_->CountRequests("PUT", "/blobs/uploads/"), 1);
  EXPECT_EQ(proxy_->requests_seen(), 6);
}

TEST_F(FaultProxyTest, DropResetsConnectionOnceThenForwards) {
  FaultId id = proxy_->Add(Fault::DropAfter(1000).On("GET", "/blobs/"));
  FetchResult dropped = FetchOrDie(BlobUrl());
  EXPECT_FALSE(dropped.ok());
  EXPECT_EQ(dropped.status, 200);
  EXPECT_LE(dropped.body.size(), 1000u);
  FetchResult again = FetchOrDie(BlobUrl());
  EXPECT_TRUE(again.ok()) << again.error;
  EXPECT_TRUE(again.body == *blob_);
  EXPECT_EQ(proxy_->hits(id), 1);
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), 2);
}

TEST_F(FaultProxyTest, TruncateSendsFewerBytesThanAdvertised) {
  FaultId id = proxy_->Add(Fault::TruncateAfter(5000).Times(2));
  FetchResult cut = FetchOrDie(BlobUrl());
  EXPECT_EQ(cut.curl_code, CURLE_PARTIAL_FILE) << cut.error;
  EXPECT_EQ(cut.body.size(), 5000u);
  EXPECT_TRUE(cut.body == blob_->substr(0, 5000));

  // Asking for more than the body still withholds the last byte.
  proxy_->ClearFaults();
  FaultId beyond = proxy_->Add(Fault::TruncateAfter(1 << 30));
  FetchResult short_by_one = FetchOrDie(BlobUrl());
  EXPECT_EQ(short_by_one.curl_code, CURLE_PARTIAL_FILE) << short_by_one.error;
  EXPECT_EQ(short_by_one.body.size(), blob_->size() - 1);
  EXPECT_EQ(proxy_->hits(id), 1);
  EXPECT_EQ(proxy_->hits(beyond), 1);
}

TEST_F(FaultProxyTest, StatusBurstThenRecovery) {
  FaultId burst = proxy_->Add(Fault::Status(503, "1").On("GET", "/blobs/").Times(2));
  FaultId throttle = proxy_->Add(Fault::Status(429, "7").On("HEAD", ""));
  for (int i = 0; i < 2; ++i) {
    FetchResult r = FetchOrDie(BlobUrl());
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.Header("retry-after"), "1");
  }
  FetchResult ok = FetchOrDie(BlobUrl());
  EXPECT_EQ(ok.status, 200);
  EXPECT_TRUE(ok.body == *blob_);

  FetchOptions head;
  head.method = "HEAD";
  FetchResult throttled = FetchOrDie(BlobUrl(), head);
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(throttled.Header("retry-after"), "7");

  EXPECT_EQ(proxy_->hits(burst), 2);
  EXPECT_EQ(proxy_->hits(throttle), 1);
  std::vector<ProxiedRequest> log = proxy_->requests();
  ASSERT_EQ(log.size(), 4u);
  EXPECT_EQ(log[0].fault, burst);
  EXPECT_EQ(log[2].fault, -1);
  EXPECT_EQ(log[2].status, 200);
}

TEST_F(FaultProxyTest, CorruptFlipsExactlyOneByte) {
  const int64_t at = 123457;
  FaultId id = proxy_->Add(Fault::CorruptAt(at, 0x80));
  FetchResult r = FetchOrDie(BlobUrl());
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.body.size(), blob_->size());
  EXPECT_NE(Sha256Of(r.body), Sha256Of(*blob_));
  int differing = 0;
  for (size_t i = 0; i < r.body.size(); ++i) {
    if (r.body[i] != (*blob_)[i]) {
      ++differing;
      EXPECT_EQ(i, static_cast<size_t>(at));
      EXPECT_EQ(static_cast<uint8_t>(r.body[i] ^ (*blob_)[i]), 0x80);
    }
  }
  EXPECT_EQ(differing, 1);
  EXPECT_EQ(proxy_->hits(id), 1);
  // Offsets are relative to the body the client receives, also for ranges.
  proxy_->Add(Fault::CorruptAt(0, 0xff));
  FetchOptions range;
  range.headers.push_back("Range: bytes=10-19");
  FetchResult part = FetchOrDie(BlobUrl(), range);
  EXPECT_EQ(part.status, 206);
  ASSERT_EQ(part.body.size(), 10u);
  EXPECT_EQ(static_cast<uint8_t>(part.body[0] ^ (*blob_)[10]), 0xff);
  EXPECT_EQ(part.body.substr(1), blob_->substr(11, 9));
}

TEST_F(FaultProxyTest, FiniteStallDelaysButCompletes) {
  proxy_->Add(Fault::StallAfter(100, absl::Milliseconds(400)));
  absl::Time start = absl::Now();
  FetchResult r = FetchOrDie(BlobUrl());
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(400));
  EXPECT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.body == *blob_);
}

TEST_F(FaultProxyTest, ThrottleCapsEachResponseAndKeepsBytes) {
  // 256 KiB at 1 MiB/s takes at least 250 ms; the body must arrive intact, twice (Times(-1)).
  proxy_->Add(Fault::Throttle(1 << 20).On("GET", "/blobs/").Times(-1));
  for (int i = 0; i < 2; ++i) {
    absl::Time start = absl::Now();
    FetchResult r = FetchOrDie(BlobUrl());
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(240));
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_TRUE(r.body == *blob_);
  }
}

TEST_F(FaultProxyTest, EndlessStallTimesOutClientAndEndsOnStop) {
  FaultId id = proxy_->Add(Fault::StallAfter(100).Times(-1));
  FetchOptions quick;
  quick.timeout = absl::Seconds(1);
  FetchResult timed_out = FetchOrDie(BlobUrl(), quick);
  EXPECT_EQ(timed_out.curl_code, CURLE_OPERATION_TIMEDOUT) << timed_out.error;
  EXPECT_EQ(timed_out.body.size(), 100u);

  // A client that waits forever is released by Stop().
  FetchResult blocked;
  std::thread client([&] { blocked = FetchOrDie(BlobUrl()); });
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (proxy_->hits(id) < 2 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(proxy_->hits(id), 2);
  absl::Time stop_start = absl::Now();
  proxy_->Stop();
  client.join();
  EXPECT_LT(absl::Now() - stop_start, absl::Seconds(5));
  EXPECT_FALSE(blocked.ok());
}

TEST_F(FaultProxyTest, FaultsOnlyHitMatchingRequests) {
  FaultId manifests = proxy_->Add(Fault::Status(500).On("", "/manifests/").Times(-1));
  FaultId puts = proxy_->Add(Fault::Status(502).On("PUT", "").Times(-1));
  EXPECT_EQ(FetchOrDie(BlobUrl()).status, 200);
  EXPECT_EQ(FetchOrDie(absl::StrCat(proxy_->url(), "/v2/", kRepo, "/manifests/latest")).status,
            500);
  EXPECT_EQ(proxy_->hits(manifests), 1);
  EXPECT_EQ(proxy_->hits(puts), 0);
}

TEST(FaultProxyUpstreamTest, UnreachableUpstreamIs502) {
  // Reserve a port, then free it: nothing listens there afterwards.
  int port = 0;
  {
    absl::StatusOr<std::unique_ptr<HttpServer>> s =
        HttpServer::Start([](const HttpServerRequest&) { return HttpServerResponse{}; });
    ASSERT_TRUE(s.ok());
    port = (*s)->port();
  }
  auto proxy = FaultProxy::Start(absl::StrCat("127.0.0.1:", port));
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  EXPECT_EQ(FetchOrDie((*proxy)->url() + "/v2/").status, 502);
}

TEST(FaultProxyUpstreamTest, ChunkedUpstreamBodiesAndCutsBeforeTheLastChunk) {
  const std::string payload = RandomBytes(50000, 7);
  auto upstream = HttpServer::Start([&](const HttpServerRequest&) {
    HttpServerResponse r;
    r.body_stream = [&](BodyWriter& w) -> absl::Status {
      for (size_t i = 0; i < payload.size(); i += 4096) {
        absl::Status s = w.Write(std::string_view(payload).substr(i, 4096));
        if (!s.ok()) return s;
      }
      return absl::OkStatus();
    };
    return r;  // content_length -1: chunked
  });
  ASSERT_TRUE(upstream.ok()) << upstream.status();
  auto proxy = FaultProxy::Start((*upstream)->host());
  ASSERT_TRUE(proxy.ok()) << proxy.status();

  FetchResult whole = FetchOrDie((*proxy)->url() + "/stream");
  ASSERT_TRUE(whole.ok()) << whole.error;
  EXPECT_EQ(whole.Header("transfer-encoding"), "chunked");
  EXPECT_TRUE(whole.body == payload);

  (*proxy)->Add(Fault::TruncateAfter(1 << 30));
  FetchResult cut = FetchOrDie((*proxy)->url() + "/stream");
  EXPECT_FALSE(cut.ok());
  EXPECT_EQ(cut.body.size(), payload.size());
}

}  // namespace
}  // namespace slipstream::testkit
