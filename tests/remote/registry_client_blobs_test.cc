// SPDX-License-Identifier: Apache-2.0
// RegistryClient over a scripted transport: Range reads, redirects, whole blobs, DownloadBlob.
#include "remote/registry_client.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "remote/parallel_fetch.h"
#include "tests/remote/registry_client_env.h"

namespace slipstream::remote {
namespace {

using ::slipstream::remote::testing::Env;
using ::slipstream::remote::testing::FakeReply;
using ::slipstream::remote::testing::RandomBytes;
using ::slipstream::remote::testing::RequestHeader;
using ::slipstream::remote::testing::ServeBlob;
using ::testing::HasSubstr;

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

}  // namespace
}  // namespace slipstream::remote
