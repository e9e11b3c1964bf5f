// SPDX-License-Identifier: Apache-2.0
// SOCI v1 discovery through the OCI referrers API, which docker-registry 2.8 lacks: a scripted
// registry (FakeTransport) answers the referrers call.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "common/digest.h"
#include "common/strings.h"
#include "gtest/gtest.h"
#include "index/soci_index.h"
#include "remote/manifest.h"
#include "remote/media_types.h"
#include "remote/registry_client.h"
#include "tests/remote/fake_transport.h"

namespace slipstream::index {
namespace {

using remote::testing::FakeReply;
using remote::testing::FakeTransport;

struct Registry {
  std::string config = R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers",)"
                       R"("diff_ids":["sha256:)" + std::string(64, 'a') + R"("]}})";
  std::string image;
  std::string soci;
  std::string other;  // a referrer of another artifact type
  bool referrers_api = true;

  Registry() {
    remote::Manifest m;
    m.media_type = std::string(remote::kOciManifest);
    m.config = {.media_type = std::string(remote::kOciConfig), .digest = Sha256Of(config),
                .size = static_cast<int64_t>(config.size())};
    m.layers.push_back({.media_type = std::string(remote::kOciLayerGzip),
                        .digest = Sha256Of("layer"), .size = 5});
    image = m.ToJson();

    remote::Manifest s;
    s.media_type = std::string(remote::kOciManifest);
    s.config = {.media_type = std::string(kSociIndexV1), .digest = Sha256Of(kEmptyJson),
                .size = 2};
    s.subject = remote::Descriptor{.media_type = std::string(remote::kOciManifest),
                                   .digest = Sha256Of(image),
                                   .size = static_cast<int64_t>(image.size())};
    s.layers.push_back({.media_type = std::string(kZtocMediaType), .digest = Sha256Of("ztoc"),
                        .size = 4,
                        .annotations = {{std::string(kAnnotationLayerDigest),
                                         Sha256Of("layer").str()}}});
    soci = s.ToJson();
    s.config.media_type = "application/vnd.example.signature";
    other = s.ToJson();
  }

  std::string ReferrersBody() const {
    remote::ImageIndex index;
    index.media_type = std::string(remote::kOciIndex);
    index.manifests.push_back({.media_type = std::string(remote::kOciManifest),
                               .digest = Sha256Of(other),
                               .size = static_cast<int64_t>(other.size()),
                               .artifact_type = "application/vnd.example.signature"});
    index.manifests.push_back({.media_type = std::string(remote::kOciManifest),
                               .digest = Sha256Of(soci),
                               .size = static_cast<int64_t>(soci.size()),
                               .artifact_type = std::string(kSociIndexV1)});
    return index.ToJson();
  }

  FakeReply Answer(const remote::HttpRequest& r) const {
    auto manifest = [](const std::string& body) {
      return FakeReply{.headers = {{"Content-Type", std::string(remote::kOciManifest)}},
                       .body = body};
    };
    const std::string& url = r.url;
    if (absl::EndsWith(AV(url), "/manifests/v1")) return manifest(image);
    if (absl::EndsWith(AV(url), "/manifests/" + Sha256Of(image).str())) return manifest(image);
    if (absl::EndsWith(AV(url), "/manifests/" + Sha256Of(soci).str())) return manifest(soci);
    if (absl::EndsWith(AV(url), "/blobs/" + Sha256Of(config).str())) {
      return FakeReply{.body = config};
    }
    if (absl::StrContains(AV(url), "/referrers/") && referrers_api) {
      return FakeReply{.headers = {{"Content-Type", std::string(remote::kOciIndex)}},
                       .body = ReferrersBody()};
    }
    return FakeReply{.status = 404, .body = R"({"errors":[{"code":"NOT_FOUND"}]})"};
  }
};

std::unique_ptr<remote::RegistryClient> NewClient(const Registry& reg, FakeTransport** fake) {
  auto transport = std::make_unique<FakeTransport>(
      [&reg](const remote::HttpRequest& r) { return reg.Answer(r); });
  *fake = transport.get();
  remote::RegistryClientOptions o;
  o.transport = std::move(transport);
  o.sleep = [](absl::Duration) {};
  auto c = remote::RegistryClient::Create(std::move(o));
  EXPECT_TRUE(c.ok()) << c.status();
  return *std::move(c);
}

remote::Reference Ref() { return *remote::Reference::Parse("registry.test/app:v1"); }
remote::Platform Amd64() { return remote::Platform{.os = "linux", .architecture = "amd64"}; }

TEST(SociReferrersTest, GetReferrersEscapesTheFilterAndFiltersLocally) {
  Registry reg;
  FakeTransport* fake = nullptr;
  auto client = NewClient(reg, &fake);
  auto got = client->GetReferrers(Ref(), Sha256Of(reg.image), kSociIndexV1);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->manifests.size(), 1u);
  EXPECT_EQ(got->manifests[0].digest, Sha256Of(reg.soci));
  ASSERT_EQ(fake->requests().size(), 1u);
  EXPECT_TRUE(absl::EndsWith(
      AV(fake->requests()[0].url),
      "/referrers/" + Sha256Of(reg.image).str() +
          "?artifactType=application%2Fvnd.amazon.soci.index.v1%2Bjson"))
      << fake->requests()[0].url;
}

TEST(SociReferrersTest, DiscoversV1ThroughTheReferrersApi) {
  Registry reg;
  FakeTransport* fake = nullptr;
  auto client = NewClient(reg, &fake);
  auto found = DiscoverSociIndex(*client, Ref(), Amd64());
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->source, "referrers");
  EXPECT_EQ(found->version, SociVersion::kV1);
  EXPECT_EQ(found->digest, Sha256Of(reg.soci));
  ASSERT_NE(found->ZtocFor(Sha256Of("layer")), nullptr);
  EXPECT_EQ(found->ZtocFor(Sha256Of("layer"))->digest, Sha256Of("ztoc"));
  EXPECT_EQ(found->ZtocFor(Sha256Of("other")), nullptr);
  EXPECT_EQ(fake->CountUrl("/manifests/sha256-"), 0);
}

TEST(SociReferrersTest, NoReferrersApiAndNoTagIsNotFound) {
  Registry reg;
  reg.referrers_api = false;
  FakeTransport* fake = nullptr;
  auto client = NewClient(reg, &fake);
  auto api = client->GetReferrers(Ref(), Sha256Of(reg.image), kSociIndexV1);
  EXPECT_TRUE(absl::IsNotFound(api.status())) << api.status();
  auto found = DiscoverSociIndex(*client, Ref(), Amd64());
  EXPECT_TRUE(absl::IsNotFound(found.status())) << found.status();
  // The fallback asked for the referrers tag.
  EXPECT_EQ(fake->CountUrl("/manifests/" + ReferrersTag(Sha256Of(reg.image))), 1);
}

}  // namespace
}  // namespace slipstream::index
