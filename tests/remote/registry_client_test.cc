// SPDX-License-Identifier: Apache-2.0
// RegistryClient over a scripted transport: retries, resume, redirects, verification,
// mirrors, push sequences, parallel download.
#include "remote/registry_client.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <random>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "remote/media_types.h"
#include "remote/parallel_fetch.h"
#include "tests/remote/fake_transport.h"

namespace slipstream::remote {
namespace {

using ::slipstream::remote::testing::FakeClock;
using ::slipstream::remote::testing::FakeReply;
using ::slipstream::remote::testing::FakeTransport;
using ::slipstream::remote::testing::RequestHeader;
using ::slipstream::remote::testing::ServeBlob;
using ::testing::HasSubstr;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

struct Env {
  FakeClock clock;
  FakeTransport* fake = nullptr;
  std::unique_ptr<RegistryClient> client;
  std::shared_ptr<StaticCredentials> creds = std::make_shared<StaticCredentials>();
  Reference repo = *Reference::Parse("localhost:5000/app:v1");

  explicit Env(FakeTransport::Handler handler, std::string hosts_dir = "",
               RetryPolicy retry = RetryPolicy()) {
    auto t = std::make_unique<FakeTransport>(std::move(handler));
    fake = t.get();
    RegistryClientOptions o;
    o.transport = std::move(t);
    o.credentials = creds;
    o.hosts_dir = std::move(hosts_dir);
    o.retry = retry;
    o.now = [this] { return clock.Now(); };
    o.sleep = [this](absl::Duration d) { clock.Sleep(d); };
    client = *RegistryClient::Create(std::move(o));
  }
};

const std::string kBlobPrefix = "http://localhost:5000/v2/app/blobs/";

// --- manifests -------------------------------------------------------------------------

TEST(RegistryClientTest, ManifestByDigestIsVerified) {
  const std::string body = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"})";
  const Digest good = Sha256Of(body);
  std::string served = body;
  Env env([&](const HttpRequest& r) {
    EXPECT_THAT(RequestHeader(r, "accept"), HasSubstr("application/vnd.oci.image.index.v1+json"));
    FakeReply reply;
    reply.body = served;
    reply.headers = {{"Content-Type", "application/vnd.oci.image.manifest.v1+json"}};
    return reply;
  });
  Reference ref = env.repo.WithDigest(good.str());
  auto m = env.client->GetManifest(ref);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest, good);
  EXPECT_EQ(m->media_type, kOciManifest);

  served = body + " ";  // one byte different: must never be accepted
  auto bad = env.client->GetManifest(ref);
  EXPECT_TRUE(absl::IsDataLoss(bad.status())) << bad.status();
}

TEST(RegistryClientTest, TagManifestCheckedAgainstDockerContentDigest) {
  const std::string body = R"({"schemaVersion":2,"manifests":[]})";
  std::string header = Sha256Of(body).str();
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    reply.body = body;
    reply.headers = {{"Docker-Content-Digest", header}, {"Content-Type", "application/json"}};
    return reply;
  });
  auto m = env.client->GetManifest(env.repo);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->digest.str(), header);
  EXPECT_EQ(m->media_type, kOciIndex);  // guessed from the body when Content-Type is generic
  EXPECT_THAT(env.fake->requests()[0].url, HasSubstr("/v2/app/manifests/v1"));

  header = Sha256Of("something else").str();
  auto bad = env.client->GetManifest(env.repo);
  EXPECT_TRUE(absl::IsDataLoss(bad.status())) << bad.status();
}

TEST(RegistryClientTest, OversizedManifestIsRefused) {
  bool announce_only = false;
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    if (announce_only) {
      reply.body = "{}";
      reply.headers = {{"Content-Length", std::to_string(kMaxManifestBytes + 1)}};
    } else {
      reply.body = std::string(kMaxManifestBytes + 10, ' ');
    }
    return reply;
  });
  auto m = env.client->GetManifest(env.repo);
  EXPECT_TRUE(absl::IsResourceExhausted(m.status())) << m.status();
  announce_only = true;
  m = env.client->GetManifest(env.repo);
  EXPECT_TRUE(absl::IsResourceExhausted(m.status())) << m.status();
}

// --- errors and retries ------------------------------------------------------------------

TEST(RegistryClientTest, ErrorNamesHostRepositoryDigestAndStatus) {
  const std::string blob = "hello";
  const Digest d = Sha256Of(blob);
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    reply.status = 404;
    reply.body = R"({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]})";
    return reply;
  });
  auto got = env.client->ReadBlob(env.repo, Descriptor{.digest = d, .size = 5});
  EXPECT_TRUE(absl::IsNotFound(got.status())) << got.status();
  EXPECT_THAT(std::string(got.status().message()),
              HasSubstr("GET localhost:5000/app blob " + d.str().substr(0, 19) +
                        ": HTTP 404 Not Found (BLOB_UNKNOWN: blob unknown to registry)"));
  auto exists = env.client->BlobExists(env.repo, d);
  ASSERT_TRUE(exists.ok());
  EXPECT_FALSE(*exists);
}

TEST(RegistryClientTest, RetriesServerErrorsHonouringRetryAfter) {
  const std::string blob = "payload";
  std::atomic<int> n{0};
  Env env([&](const HttpRequest& r) {
    int i = ++n;
    FakeReply reply;
    if (i == 1) {
      reply.status = 503;
    } else if (i == 2) {
      reply.status = 429;
      reply.headers = {{"Retry-After", "7"}};
    } else if (i == 3) {
      reply.error = absl::UnavailableError("connection refused");
    } else {
      reply.body = blob;
    }
    return reply;
  });
  auto got = env.client->ReadBlob(env.repo, Descriptor{.digest = Sha256Of(blob), .size = 7});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, blob);
  ASSERT_EQ(env.clock.sleeps.size(), 3u);
  EXPECT_GE(env.clock.sleeps[1], absl::Seconds(7));
  EXPECT_LE(env.clock.sleeps[0], absl::Milliseconds(200));
}

TEST(RegistryClientTest, GivesUpAfterMaxAttempts) {
  RetryPolicy p;
  p.max_attempts = 3;
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    reply.status = 502;
    return reply;
  }, "", p);
  auto got = env.client->ReadBlob(env.repo, Descriptor{.digest = Sha256Of("x"), .size = 1});
  EXPECT_TRUE(absl::IsUnavailable(got.status())) << got.status();
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("HTTP 502 Bad Gateway"));
  EXPECT_EQ(env.fake->requests().size(), 3u);
}

TEST(RegistryClientTest, NonRetryableStatusIsNotRetried) {
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    reply.status = 403;
    return reply;
  });
  auto got = env.client->ReadBlob(env.repo, Descriptor{.digest = Sha256Of("x"), .size = 1});
  EXPECT_TRUE(absl::IsPermissionDenied(got.status())) << got.status();
  EXPECT_EQ(env.fake->requests().size(), 1u);
}

// --- Range reads -------------------------------------------------------------------------

TEST(RegistryClientTest, DroppedRangeReadResumesWhereBytesStopped) {
  const std::string blob = RandomBytes(100000, 1);
  const Digest d = Sha256Of(blob);
  std::atomic<int> n{0};
  Env env([&](const HttpRequest& r) {
    FakeReply reply = ServeBlob(r, blob);
    if (++n == 2) reply.cut_after = 30000;  // the big read's first attempt dies mid-body
    return reply;
  });
  // A first small read teaches the client that this host honours Range (the first read at
  // a non-zero offset is a buffered probe).
  ASSERT_TRUE(env.client->ReadBlobRange(env.repo, d, 10, 10, [](std::string_view) {
    return absl::OkStatus();
  }).ok());
  std::string got;
  absl::Status st = env.client->ReadBlobRange(env.repo, d, 1000, 90000, [&](std::string_view c) {
    got.append(c.data(), c.size());
    return absl::OkStatus();
  });
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(got, blob.substr(1000, 90000));
  auto reqs = env.fake->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(RequestHeader(reqs[1], "range"), "bytes=1000-90999");
  EXPECT_EQ(RequestHeader(reqs[2], "range"), "bytes=31000-90999");
}

TEST(RegistryClientTest, ServerIgnoringRangeIsHandled) {
  const std::string blob = RandomBytes(3 << 20, 2);  // bigger than the 1 MiB probe
  const Digest d = Sha256Of(blob);
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    reply.body = blob;  // always 200 with everything
    return reply;
  });
  Descriptor desc{.digest = d, .size = static_cast<int64_t>(blob.size())};
  auto reader = env.client->OpenBlob(env.repo, desc);
  for (int64_t off : {int64_t{5000}, int64_t{2 << 20}, int64_t{0}, int64_t{(3 << 20) - 10}}) {
    auto got = reader->ReadAt(off, 4096);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, blob.substr(off, 4096)) << off;
  }
}

TEST(RegistryClientTest, RangeWithWrongContentRangeIsDataLoss) {
  const std::string blob = RandomBytes(10000, 3);
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    reply.status = 206;
    reply.body = blob.substr(0, 100);
    reply.headers = {{"Content-Range", "bytes 0-99/10000"}};  // we asked for 500-599
    return reply;
  });
  auto reader = env.client->OpenBlob(env.repo, Descriptor{.digest = Sha256Of(blob), .size = 10000});
  auto got = reader->ReadAt(500, 100);
  EXPECT_TRUE(absl::IsDataLoss(got.status())) << got.status();
}

TEST(RegistryClientTest, ReadPastEndIsOutOfRange) {
  const std::string blob = RandomBytes(1000, 4);
  Env env([&](const HttpRequest& r) { return ServeBlob(r, blob); });
  auto reader = env.client->OpenBlob(env.repo, Descriptor{.digest = Sha256Of(blob), .size = 1000});
  EXPECT_TRUE(absl::IsOutOfRange(reader->ReadAt(1001, 1).status()));
  auto tail = reader->ReadAt(990, 100);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(*tail, blob.substr(990));
}

TEST(RegistryClientTest, RedirectTargetIsRememberedAndGetsNoAuthorization) {
  const std::string blob = RandomBytes(5000, 5);
  const Digest d = Sha256Of(blob);
  std::atomic<int> registry_hits{0};
  std::atomic<bool> storage_saw_auth{false};
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://storage.test/", 0) == 0) {
      if (!RequestHeader(r, "authorization").empty()) storage_saw_auth = true;
      return ServeBlob(r, blob);
    }
    ++registry_hits;
    FakeReply reply;
    if (RequestHeader(r, "authorization") != "Basic dTpw") {
      reply.status = 401;
      reply.headers = {{"WWW-Authenticate", "Basic realm=\"r\""}};
      return reply;
    }
    reply.status = 307;
    reply.headers = {{"Location", "http://storage.test/b/" + std::string(d.hex()) + "?X-Sig=secret"}};
    return reply;
  });
  env.creds->Set("localhost:5000", Credentials{.username = "u", .password = "p"});
  auto reader = env.client->OpenBlob(env.repo, Descriptor{.digest = d, .size = 5000});
  auto a = reader->ReadAt(0, 100);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, blob.substr(0, 100));
  const int after_first = registry_hits;
  EXPECT_EQ(after_first, 2);  // 401, then 307
  auto b = reader->ReadAt(4000, 1000);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(*b, blob.substr(4000, 1000));
  EXPECT_EQ(registry_hits, after_first);  // went straight to storage
  EXPECT_FALSE(storage_saw_auth);
  // After redirect_ttl the registry is asked again.
  env.clock.Advance(absl::Minutes(6));
  ASSERT_TRUE(reader->ReadAt(10, 10).ok());
  EXPECT_EQ(registry_hits, after_first + 1);
}

TEST(RegistryClientTest, ExpiredRedirectTargetFallsBackToRegistry) {
  const std::string blob = RandomBytes(2000, 6);
  const Digest d = Sha256Of(blob);
  std::atomic<int> generation{1};
  Env env([&](const HttpRequest& r) {
    if (r.url.rfind("http://storage.test/", 0) == 0) {
      if (r.url.find("gen=" + std::to_string(generation.load())) == std::string::npos) {
        FakeReply expired;
        expired.status = 403;
        return expired;
      }
      return ServeBlob(r, blob);
    }
    FakeReply reply;
    reply.status = 307;
    reply.headers = {{"Location", "http://storage.test/b?gen=" + std::to_string(generation.load())}};
    return reply;
  });
  auto reader = env.client->OpenBlob(env.repo, Descriptor{.digest = d, .size = 2000});
  ASSERT_TRUE(reader->ReadAt(0, 10).ok());
  generation = 2;  // presigned URL revoked
  auto got = reader->ReadAt(100, 10);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, blob.substr(100, 10));
}

// --- whole blobs -------------------------------------------------------------------------

TEST(RegistryClientTest, ReadBlobVerifiesDigestAndSize) {
  const std::string blob = "0123456789";
  std::string served = blob;
  Env env([&](const HttpRequest&) {
    FakeReply reply;
    reply.body = served;
    return reply;
  });
  Descriptor desc{.digest = Sha256Of(blob), .size = 10};
  ASSERT_TRUE(env.client->ReadBlob(env.repo, desc).ok());
  served = "0123456780";
  EXPECT_TRUE(absl::IsDataLoss(env.client->ReadBlob(env.repo, desc).status()));
  served = "01234567890";
  EXPECT_TRUE(absl::IsDataLoss(env.client->ReadBlob(env.repo, desc).status()));
}

TEST(RegistryClientTest, DownloadBlobInParallelChunks) {
  const std::string blob = RandomBytes((1 << 20) + 123, 7);
  const Digest d = Sha256Of(blob);
  bool corrupt = false;
  Env env([&](const HttpRequest& r) {
    FakeReply reply = ServeBlob(r, blob);
    if (corrupt && RequestHeader(r, "range").rfind("bytes=65536-", 0) == 0) reply.body[7] ^= 1;
    return reply;
  });
  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  auto fd = OpenFile(dir->Join("blob"), O_RDWR | O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok());
  ParallelFetchOptions opts;
  opts.chunk_size = 64 << 10;
  opts.concurrency = 4;
  std::atomic<int64_t> last_progress{0};
  opts.progress = [&](int64_t done) { last_progress = done; };
  Descriptor desc{.digest = d, .size = static_cast<int64_t>(blob.size())};
  absl::Status st = env.client->DownloadBlob(env.repo, desc, fd->get(), opts);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(last_progress, static_cast<int64_t>(blob.size()));
  auto written = ReadFileToString(dir->Join("blob"));
  ASSERT_TRUE(written.ok());
  EXPECT_TRUE(*written == blob);
  EXPECT_EQ(env.fake->requests().size(), 17u);  // ceil((1 MiB + 123) / 64 KiB)

  corrupt = true;
  st = env.client->DownloadBlob(env.repo, desc, fd->get(), opts);
  EXPECT_TRUE(absl::IsDataLoss(st)) << st;
}

TEST(RegistryClientTest, PlanParallelFetchDefaults) {
  ParallelPlan tiny = PlanParallelFetch(1000, {});
  EXPECT_EQ(tiny.concurrency, 1);
  EXPECT_EQ(tiny.chunks, 1);
  ParallelPlan big = PlanParallelFetch(int64_t{600} << 20, {});
  EXPECT_EQ(big.chunk_size, 8 << 20);
  EXPECT_EQ(big.concurrency, 16);
  EXPECT_EQ(big.chunks, 75);
  ParallelPlan mid = PlanParallelFetch(int64_t{20} << 20, {});
  EXPECT_EQ(mid.concurrency, 3);
  ParallelFetchOptions o;
  o.chunk_size = 1 << 20;
  o.concurrency = 2;
  ParallelPlan custom = PlanParallelFetch(int64_t{10} << 20, o);
  EXPECT_EQ(custom.chunk_size, 1 << 20);
  EXPECT_EQ(custom.concurrency, 2);
  EXPECT_EQ(PlanParallelFetch(0, {}).chunks, 0);
}

// --- mirrors -----------------------------------------------------------------------------

TEST(RegistryClientTest, MirrorsAreTriedInOrderAndFallBack) {
  auto dir = TempDir::Create();
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(MakeDirs(dir->Join("localhost:5000")).ok());
  ASSERT_TRUE(WriteFileAtomic(dir->Join("localhost:5000/hosts.toml"), R"(
server = "http://localhost:5000"

[host."http://mirror-dead.test"]
  capabilities = ["pull", "resolve"]

[host."http://mirror-empty.test"]
  capabilities = ["pull", "resolve"]

[host."http://mirror-pull-only.test"]
  capabilities = ["pull"]
)").ok());
  const std::string body = R"({"schemaVersion":2})";
  Env env([&](const HttpRequest& r) {
    FakeReply reply;
    if (r.url.find("mirror-dead") != std::string::npos) {
      reply.error = absl::UnavailableError("connection refused");
    } else if (r.url.find("mirror-empty") != std::string::npos) {
      reply.status = 404;
    } else if (r.url.find("mirror-pull-only") != std::string::npos) {
      ADD_FAILURE() << "a pull-only mirror must not resolve tags";
    } else {
      reply.body = body;
    }
    return reply;
  }, dir->path());
  auto m = env.client->GetManifest(env.repo);
  ASSERT_TRUE(m.ok()) << m.status();
  std::vector<std::string> order;
  std::string prev;
  for (const HttpRequest& r : env.fake->requests()) {
    std::string host = r.url.substr(0, r.url.find("/v2/"));
    if (host != prev) order.push_back(host);
    prev = host;
  }
  EXPECT_EQ(order, (std::vector<std::string>{"http://mirror-dead.test", "http://mirror-empty.test",
                                             "http://localhost:5000"}));
}

// --- push --------------------------------------------------------------------------------

TEST(RegistryClientTest, PushSmallBlobIsMonolithic) {
  const std::string blob = RandomBytes(1000, 8);
  const Digest d = Sha256Of(blob);
  Env env([&](const HttpRequest& r) {
    FakeReply reply;
    if (r.method == "HEAD") {
      reply.status = 404;
    } else if (r.method == "POST") {
      EXPECT_EQ(r.url, "http://localhost:5000/v2/app/blobs/uploads/");
      reply.status = 202;
      reply.headers = {{"Location", "/v2/app/blobs/uploads/u1?_state=abc"}};
    } else if (r.method == "PUT") {
      EXPECT_EQ(r.url, "http://localhost:5000/v2/app/blobs/uploads/u1?_state=abc&digest=" + d.str());
      EXPECT_TRUE(r.body == blob);
      reply.status = 201;
    }
    return reply;
  });
  absl::Status st = env.client->PushBlob(env.repo, d, blob);
  ASSERT_TRUE(st.ok()) << st;
  ASSERT_EQ(env.fake->requests().size(), 3u);
  // Mismatched data is refused before anything is sent.
  EXPECT_TRUE(absl::IsInvalidArgument(env.client->PushBlob(env.repo, Sha256Of("x"), blob)));
  EXPECT_EQ(env.fake->requests().size(), 3u);
}

TEST(RegistryClientTest, PushSkipsExistingBlob) {
  Env env([&](const HttpRequest& r) {
    FakeReply reply;
    EXPECT_EQ(r.method, "HEAD");
    return reply;  // 200
  });
  ASSERT_TRUE(env.client->PushBlob(env.repo, Sha256Of("abc"), "abc").ok());
  EXPECT_EQ(env.fake->requests().size(), 1u);
}

TEST(RegistryClientTest, PushLargeBlobInChunks) {
  const std::string blob = RandomBytes((20 << 20) + 5, 9);
  const Digest d = Sha256Of(blob);
  std::string received;
  std::vector<std::string> ranges;
  Env env([&](const HttpRequest& r) {
    FakeReply reply;
    if (r.method == "HEAD") {
      reply.status = 404;
    } else if (r.method == "POST") {
      reply.status = 202;
      reply.headers = {{"Location", "http://localhost:5000/v2/app/blobs/uploads/u2?n=0"}};
    } else if (r.method == "PATCH") {
      ranges.push_back(RequestHeader(r, "content-range"));
      received += r.body;
      reply.status = 202;
      reply.headers = {{"Location", "/v2/app/blobs/uploads/u2?n=" + std::to_string(ranges.size())}};
    } else if (r.method == "PUT") {
      EXPECT_EQ(r.url, "http://localhost:5000/v2/app/blobs/uploads/u2?n=2&digest=" + d.str());
      EXPECT_TRUE(r.body.empty());
      reply.status = 201;
    }
    return reply;
  });
  absl::Status st = env.client->PushBlob(env.repo, d, blob);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_EQ(ranges, (std::vector<std::string>{"0-16777215", "16777216-20971524"}));
  EXPECT_TRUE(received == blob);
}

TEST(RegistryClientTest, PushManifestUsesTagAndReturnsDigest) {
  const std::string body = R"({"schemaVersion":2})";
  Env env([&](const HttpRequest& r) {
    EXPECT_EQ(r.method, "PUT");
    EXPECT_EQ(r.url, "http://localhost:5000/v2/app/manifests/v1");
    EXPECT_EQ(RequestHeader(r, "content-type"), kOciManifest);
    FakeReply reply;
    reply.status = 201;
    return reply;
  });
  auto d = env.client->PushManifest(env.repo, kOciManifest, body);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(*d, Sha256Of(body));
  EXPECT_TRUE(absl::IsInvalidArgument(
      env.client->PushManifest(env.repo.WithDigest(Sha256Of("x").str()), kOciManifest, body)
          .status()));
}

}  // namespace
}  // namespace slipstream::remote
