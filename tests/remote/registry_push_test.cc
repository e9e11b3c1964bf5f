// SPDX-License-Identifier: Apache-2.0
// RegistryClient over a scripted transport: blob uploads and manifest PUT.
#include "remote/registry_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

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
