// SPDX-License-Identifier: Apache-2.0
// RegistryClient over a scripted transport: manifests, errors, retries, mirrors.
#include "remote/registry_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "common/fd.h"
#include "common/temp_dir.h"
#include "remote/media_types.h"
#include "tests/remote/registry_client_env.h"

namespace slipstream::remote {
namespace {

using ::slipstream::remote::testing::Env;
using ::slipstream::remote::testing::FakeReply;
using ::slipstream::remote::testing::RandomBytes;
using ::slipstream::remote::testing::RequestHeader;
using ::slipstream::remote::testing::ServeBlob;
using ::testing::HasSubstr;

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

}  // namespace
}  // namespace slipstream::remote
