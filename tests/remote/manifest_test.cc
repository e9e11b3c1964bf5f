// SPDX-License-Identifier: Apache-2.0
#include "remote/manifest.h"

#include <ostream>
#include <string>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "remote/media_types.h"

namespace slipstream::remote {
namespace {

// Digests are written out as in real documents; only their shape matters here.
constexpr char kD1[] = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
constexpr char kD2[] = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
constexpr char kD3[] = "sha256:3333333333333333333333333333333333333333333333333333333333333333";
constexpr char kD4[] = "sha256:4444444444444444444444444444444444444444444444444444444444444444";
constexpr char kD5[] = "sha256:5555555555555555555555555555555555555555555555555555555555555555";
constexpr char kD6[] = "sha256:6666666666666666666666666666666666666666666666666666666666666666";

// Shaped like `docker buildx build --platform linux/amd64,linux/arm64 --push` output.
const std::string kBuildxIndex = absl::StrCat(R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")", kD1, R"(",
     "size": 1234, "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")", kD2, R"(",
     "size": 1234, "platform": {"architecture": "arm64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")", kD3, R"(",
     "size": 566,
     "annotations": {"vnd.docker.reference.digest": ")", kD1, R"(",
                     "vnd.docker.reference.type": "attestation-manifest"},
     "platform": {"architecture": "unknown", "os": "unknown"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")", kD4, R"(",
     "size": 566,
     "annotations": {"vnd.docker.reference.digest": ")", kD2, R"(",
                     "vnd.docker.reference.type": "attestation-manifest"},
     "platform": {"architecture": "unknown", "os": "unknown"}}
  ]
})");

// Shaped like the Docker Hub manifest list of library/ubuntu (several arm variants).
const std::string kDockerList = absl::StrCat(R"({
  "manifests": [
    {"digest": ")", kD1, R"(", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "amd64", "os": "linux"}, "size": 529},
    {"digest": ")", kD2, R"(", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v6"}, "size": 529},
    {"digest": ")", kD3, R"(", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}, "size": 529},
    {"digest": ")", kD4, R"(", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}, "size": 529},
    {"digest": ")", kD5, R"(", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "ppc64le", "os": "linux"}, "size": 529},
    {"digest": ")", kD6, R"(", "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
     "platform": {"architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5329"},
     "size": 529}
  ],
  "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
  "schemaVersion": 2
})");

const std::string kDockerManifestBody = absl::StrCat(R"({
   "schemaVersion": 2,
   "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
   "config": {
      "mediaType": "application/vnd.docker.container.image.v1+json",
      "size": 2297,
      "digest": ")", kD1, R"("
   },
   "layers": [
      {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": 29533950,
       "digest": ")", kD2, R"("},
      {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
       "size": 1048576, "digest": ")", kD3, R"(",
       "urls": ["https://mcr.microsoft.com/v2/windows/blobs/x"]}
   ]
})");

const std::string kOciArtifact = absl::StrCat(R"({
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.manifest.v1+json",
  "artifactType": "application/vnd.amazon.soci.index.v2+json",
  "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": ")", kD1, R"(",
             "size": 2, "data": "e30="},
  "layers": [
    {"mediaType": "application/octet-stream", "digest": ")", kD2, R"(", "size": 8912,
     "annotations": {"com.amazon.soci.image-layer-digest": ")", kD3, R"(",
                     "com.amazon.soci.span-size": "4194304"}}
  ],
  "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ")", kD4,
              R"(", "size": 1000},
  "annotations": {"org.opencontainers.image.created": "2024-05-01T00:00:00Z"}
})");

TEST(ManifestTest, ParsesDockerSchema2) {
  auto m = Manifest::Parse(kDockerManifestBody);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->media_type, kDockerManifest);
  EXPECT_EQ(m->config.media_type, kDockerConfig);
  EXPECT_EQ(m->config.size, 2297);
  EXPECT_EQ(m->config.digest.str(), kD1);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[0].size, 29533950);
  EXPECT_EQ(m->layers[1].urls.size(), 1u);
  EXPECT_FALSE(m->subject.has_value());
}

TEST(ManifestTest, ParsesOciArtifactWithSubject) {
  auto m = Manifest::Parse(kOciArtifact);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->artifact_type, "application/vnd.amazon.soci.index.v2+json");
  EXPECT_EQ(m->config.media_type, kOciEmpty);
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(m->subject->digest.str(), kD4);
  EXPECT_EQ(m->layers[0].annotations.at("com.amazon.soci.span-size"), "4194304");
  EXPECT_EQ(m->annotations.at("org.opencontainers.image.created"), "2024-05-01T00:00:00Z");
}

TEST(ManifestTest, ToJsonRoundTripsAndIsDeterministic) {
  for (const std::string& body : {kDockerManifestBody, kOciArtifact}) {
    auto m = Manifest::Parse(body);
    ASSERT_TRUE(m.ok()) << m.status();
    std::string json = m->ToJson();
    EXPECT_EQ(json.find('\n'), std::string::npos);  // compact
    auto again = Manifest::Parse(json);
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << json;
    EXPECT_EQ(*again, *m);
    EXPECT_EQ(again->ToJson(), json);
  }
}

TEST(ManifestTest, ToJsonExactBytes) {
  Manifest m;
  m.media_type = std::string(kOciManifest);
  m.config.media_type = std::string(kOciConfig);
  m.config.digest = *Digest::Parse(kD1);
  m.config.size = 7;
  Descriptor layer;
  layer.media_type = std::string(kOciLayerZstd);
  layer.digest = *Digest::Parse(kD2);
  layer.size = 42;
  layer.annotations = {{"b", "2"}, {"a", "1"}};
  m.layers.push_back(layer);
  EXPECT_EQ(m.ToJson(),
            absl::StrCat(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",)",
                         R"("config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")",
                         kD1, R"(","size":7},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd",)",
                         R"("digest":")", kD2, R"(","size":42,"annotations":{"a":"1","b":"2"}}]})"));
}

TEST(ImageIndexTest, ParsesBuildxIndexAndRoundTrips) {
  auto index = ImageIndex::Parse(kBuildxIndex);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->manifests.size(), 4u);
  EXPECT_TRUE(IsAttestation(index->manifests[2]));
  EXPECT_FALSE(IsAttestation(index->manifests[0]));
  auto again = ImageIndex::Parse(index->ToJson());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(*again, *index);
}

TEST(ImageIndexTest, DockerListKeepsOsVersion) {
  auto index = ImageIndex::Parse(kDockerList);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_EQ(index->manifests.size(), 6u);
  EXPECT_EQ(index->manifests[5].platform->os_version, "10.0.17763.5329");
  auto again = ImageIndex::Parse(index->ToJson());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *index);
}

TEST(ManifestTest, KindMismatchAndDetection) {
  auto m = Manifest::Parse(kBuildxIndex);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("index"), std::string::npos);
  auto i = ImageIndex::Parse(kDockerManifestBody);
  ASSERT_FALSE(i.ok());
  EXPECT_EQ(i.status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(*DetectManifestKind(kBuildxIndex), ManifestKind::kIndex);
  EXPECT_EQ(*DetectManifestKind(kDockerManifestBody), ManifestKind::kManifest);
  // Without mediaType, the shape decides.
  std::string no_type = absl::StrReplaceAll(
      kBuildxIndex, {{R"("mediaType": "application/vnd.oci.image.index.v1+json",)", ""}});
  EXPECT_EQ(*DetectManifestKind(no_type), ManifestKind::kIndex);
  EXPECT_TRUE(ImageIndex::Parse(no_type).ok());
}

TEST(ManifestTest, Schema1IsUnimplemented) {
  const std::string schema1 = R"({"schemaVersion": 1, "name": "library/x", "tag": "1",
    "architecture": "amd64", "fsLayers": [{"blobSum": "sha256:aa"}], "history": []})";
  auto m = Manifest::Parse(schema1);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(m.status().message().find("schema 1"), std::string::npos);
  auto signed_type = Manifest::Parse(
      R"({"schemaVersion": 1, "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws"})");
  EXPECT_EQ(signed_type.status().code(), absl::StatusCode::kUnimplemented);
}

TEST(ManifestTest, TooLargeIsResourceExhausted) {
  std::string big = kDockerManifestBody;
  big.append(kMaxManifestBytes, ' ');
  EXPECT_EQ(Manifest::Parse(big).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ImageIndex::Parse(big).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ImageConfig::Parse(big).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ManifestTest, TooManyLayers) {
  std::string layer = absl::StrCat(R"({"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":")",
                                   kD2, R"(","size":1})");
  std::string layers = layer;
  for (size_t i = 1; i <= kMaxManifestEntries; ++i) absl::StrAppend(&layers, ",", layer);
  std::string body = absl::StrCat(
      R"({"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")",
      kD1, R"(","size":1},"layers":[)", layers, "]}");
  auto m = Manifest::Parse(body);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(m.status().message().find("layers"), std::string::npos);
}

struct BadCase {
  std::string body;
  std::string mentions;  // the field the error must name
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.body.substr(0, 200); }

class ManifestRejectTest : public testing::TestWithParam<BadCase> {};

TEST_P(ManifestRejectTest, InvalidArgumentNamingField) {
  auto m = Manifest::Parse(GetParam().body);
  ASSERT_FALSE(m.ok()) << GetParam().body;
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << m.status();
  EXPECT_NE(m.status().message().find(GetParam().mentions), std::string::npos) << m.status();
}

std::string WithConfig(std::string config, std::string rest = R"("layers":[])") {
  return absl::StrCat(R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":)",
                      config, ",", rest, "}");
}
const std::string kGoodConfig = absl::StrCat(
    R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":")", kD1, R"(","size":1})");

INSTANTIATE_TEST_SUITE_P(
    Malformed, ManifestRejectTest,
    testing::Values(
        BadCase{"", "malformed JSON"}, BadCase{"{", "malformed JSON"},
        BadCase{"[]", "not a JSON object"}, BadCase{"null", "not a JSON object"},
        BadCase{"{\"schemaVersion\":2,\"config\":{}} trailing", "malformed JSON"},
        BadCase{"\"\xff\"", "malformed JSON"},
        BadCase{R"({"schemaVersion":3,"config":{},"layers":[]})", "schemaVersion"},
        BadCase{R"({"schemaVersion":"2","config":{},"layers":[]})", "schemaVersion"},
        BadCase{R"({"config":{},"layers":[]})", "schemaVersion"},
        BadCase{R"({"schemaVersion":2,"mediaType":"text/html","config":{}})", "mediaType"},
        BadCase{R"({"schemaVersion":2,"mediaType":7,"config":{}})", "mediaType"},
        BadCase{R"({"schemaVersion":2})", "neither"},
        BadCase{WithConfig("[]"), "config"},
        BadCase{WithConfig("{}"), "config.mediaType"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","digest":"sha256:abc","size":1})")),
                "config.digest"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","size":1})")), "config.digest"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","digest":")", kD1, R"(","size":-1})")),
                "config.size"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","digest":")", kD1, R"(","size":1.5})")),
                "config.size"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","digest":")", kD1,
                                        R"(","size":18446744073709551615})")),
                "config.size"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","digest":")", kD1, R"("})")),
                "config.size"},
        BadCase{WithConfig(kGoodConfig, ""), "malformed JSON"},
        BadCase{WithConfig(kGoodConfig, R"("foo":1)"), "layers"},
        BadCase{WithConfig(kGoodConfig, R"("layers":{})"), "layers"},
        BadCase{WithConfig(kGoodConfig, R"("layers":[1])"), "layers[0]"},
        BadCase{WithConfig(kGoodConfig, absl::StrCat(R"("layers":[)", kGoodConfig,
                                                    R"(,{"mediaType":"x","digest":"nope","size":1}])")),
                "layers[1].digest"},
        BadCase{WithConfig(kGoodConfig, R"("layers":[],"annotations":{"a":1})"), "annotations.a"},
        BadCase{WithConfig(kGoodConfig, R"("layers":[],"annotations":[])"), "annotations"},
        BadCase{WithConfig(kGoodConfig, R"("layers":[],"subject":"x")"), "subject"},
        BadCase{WithConfig(kGoodConfig, R"("layers":[],"artifactType":false)"), "artifactType"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","digest":")", kD1,
                                        R"(","size":1,"urls":"http://x"})")),
                "config.urls"},
        BadCase{WithConfig(absl::StrCat(R"({"mediaType":"x","digest":")", kD1,
                                        R"(","size":1,"platform":{"os":"linux"}})")),
                "config.platform.architecture"}));

TEST(ManifestTest, DeeplyNestedJsonDoesNotCrash) {
  std::string deep(100000, '[');
  auto m = Manifest::Parse(deep);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  std::string nested = std::string(50000, '[') + std::string(50000, ']');
  EXPECT_EQ(Manifest::Parse(nested).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ImageConfigTest, ParsesConfig) {
  const std::string body = absl::StrCat(R"({
    "architecture": "arm64", "variant": "v8", "os": "linux",
    "created": "2024-02-27T18:47:41.373588461Z",
    "config": {"Env": ["PATH=/usr/bin", "LANG=C.UTF-8"], "Entrypoint": ["/docker-entrypoint.sh"],
               "Cmd": ["nginx", "-g", "daemon off;"], "WorkingDir": "/srv", "User": "101:101",
               "ExposedPorts": {"80/tcp": {}}},
    "rootfs": {"type": "layers", "diff_ids": [")", kD1, R"(", ")", kD2, R"("]},
    "history": [{"created_by": "x"}]
  })");
  auto c = ImageConfig::Parse(body);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->platform.String(), "linux/arm64/v8");
  ASSERT_EQ(c->diff_ids.size(), 2u);
  EXPECT_EQ(c->diff_ids[1].str(), kD2);
  EXPECT_EQ(c->env.size(), 2u);
  EXPECT_EQ(c->entrypoint, std::vector<std::string>{"/docker-entrypoint.sh"});
  EXPECT_EQ(c->cmd.size(), 3u);
  EXPECT_EQ(c->working_dir, "/srv");
  EXPECT_EQ(c->user, "101:101");
  EXPECT_EQ(c->created, "2024-02-27T18:47:41.373588461Z");
}

TEST(ImageConfigTest, NullRuntimeConfigAndNullCmd) {
  const std::string body = absl::StrCat(
      R"({"architecture":"amd64","os":"linux","config":{"Cmd":null,"Entrypoint":null},)",
      R"("rootfs":{"type":"layers","diff_ids":[]}})");
  auto c = ImageConfig::Parse(body);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->cmd.empty());
  EXPECT_TRUE(ImageConfig::Parse(
                  R"({"architecture":"amd64","os":"linux","config":null,"rootfs":{"type":"layers","diff_ids":[]}})")
                  .ok());
}

TEST(ImageConfigTest, Rejects) {
  for (const char* body : {
           R"({"os":"linux","rootfs":{"type":"layers","diff_ids":[]}})",
           R"({"architecture":"amd64","os":"linux"})",
           R"({"architecture":"amd64","os":"linux","rootfs":{"type":"tar","diff_ids":[]}})",
           R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}})",
           R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["x"]}})",
           R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[1]}})",
           R"({"architecture":"amd64","os":"linux","rootfs":[],"config":{}})",
           R"({"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Env":"A=1"}})",
           "not json"}) {
    auto c = ImageConfig::Parse(body);
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument) << body;
  }
}

Platform P(std::string os, std::string arch, std::string variant = "") {
  Platform p;
  p.os = std::move(os);
  p.architecture = std::move(arch);
  p.variant = std::move(variant);
  return p;
}

TEST(SelectPlatformTest, BuildxIndexSkipsAttestations) {
  auto index = ImageIndex::Parse(kBuildxIndex);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(SelectPlatform(*index, P("linux", "amd64"))->digest.str(), kD1);
  EXPECT_EQ(SelectPlatform(*index, P("linux", "arm64", "v8"))->digest.str(), kD2);
  auto none = SelectPlatform(*index, P("linux", "s390x"));
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(none.status().message().find("linux/amd64"), std::string::npos);
  EXPECT_NE(none.status().message().find("linux/arm64"), std::string::npos);
  // Attestations are not listed as platforms.
  EXPECT_EQ(none.status().message().find("unknown"), std::string::npos);
}

TEST(SelectPlatformTest, DockerListArmVariants) {
  auto index = ImageIndex::Parse(kDockerList);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(SelectPlatform(*index, P("linux", "arm", "v7"))->digest.str(), kD3);
  EXPECT_EQ(SelectPlatform(*index, P("linux", "arm", "v6"))->digest.str(), kD2);
  // v8 32-bit wants the newest compatible arm image: v7 beats v6.
  EXPECT_EQ(SelectPlatform(*index, P("linux", "arm", "v8"))->digest.str(), kD3);
  EXPECT_EQ(SelectPlatform(*index, P("linux", "arm64"))->digest.str(), kD4);
  EXPECT_EQ(SelectPlatform(*index, P("linux", "aarch64"))->digest.str(), kD4);
  EXPECT_EQ(SelectPlatform(*index, P("linux", "x86_64"))->digest.str(), kD1);
  EXPECT_EQ(SelectPlatform(*index, P("windows", "amd64"))->digest.str(), kD6);
  EXPECT_EQ(SelectPlatform(*index, P("linux", "arm", "v5")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(SelectPlatformTest, ExactBeatsCompatibleAndAmd64Levels) {
  ImageIndex index;
  auto add = [&](const char* digest, Platform p) {
    Descriptor d;
    d.media_type = std::string(kOciManifest);
    d.digest = *Digest::Parse(digest);
    d.size = 1;
    d.platform = std::move(p);
    index.manifests.push_back(d);
  };
  add(kD1, P("linux", "amd64"));
  add(kD2, P("linux", "amd64", "v3"));
  add(kD3, P("linux", "amd64", "v2"));
  EXPECT_EQ(SelectPlatform(index, P("linux", "amd64", "v2"))->digest.str(), kD3);
  EXPECT_EQ(SelectPlatform(index, P("linux", "amd64"))->digest.str(), kD1);
  EXPECT_EQ(SelectPlatform(index, P("linux", "amd64", "v4"))->digest.str(), kD2);
}

TEST(SelectPlatformTest, SingleEntryWithoutPlatform) {
  ImageIndex index;
  Descriptor d;
  d.media_type = std::string(kOciManifest);
  d.digest = *Digest::Parse(kD1);
  index.manifests.push_back(d);
  EXPECT_EQ(SelectPlatform(index, P("linux", "amd64"))->digest.str(), kD1);
  index.manifests.push_back(d);
  EXPECT_EQ(SelectPlatform(index, P("linux", "amd64")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(SelectPlatform(ImageIndex{}, P("linux", "amd64")).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(MediaTypesTest, Predicates) {
  EXPECT_TRUE(IsIndexMediaType(kOciIndex));
  EXPECT_TRUE(IsIndexMediaType(kDockerManifestList));
  EXPECT_FALSE(IsIndexMediaType(kOciManifest));
  EXPECT_TRUE(IsManifestMediaType(kDockerManifest));
  EXPECT_FALSE(IsManifestMediaType(kDockerManifestSchema1));
  EXPECT_EQ(*LayerCompression(kOciLayer), Compression::kNone);
  EXPECT_EQ(*LayerCompression(kOciLayerNondistributable), Compression::kNone);
  EXPECT_EQ(*LayerCompression(kOciLayerGzip), Compression::kGzip);
  EXPECT_EQ(*LayerCompression(kDockerLayerGzip), Compression::kGzip);
  EXPECT_EQ(*LayerCompression(kDockerLayerForeignGzip), Compression::kGzip);
  EXPECT_EQ(*LayerCompression(kOciLayerNondistributableGzip), Compression::kGzip);
  EXPECT_EQ(*LayerCompression(kOciLayerZstd), Compression::kZstd);
  EXPECT_EQ(*LayerCompression(kOciLayerNondistributableZstd), Compression::kZstd);
  EXPECT_EQ(LayerCompression("application/vnd.in-toto+json").status().code(),
            absl::StatusCode::kInvalidArgument);
  std::string accept = ManifestAcceptHeader();
  for (std::string_view t : {kOciIndex, kOciManifest, kDockerManifestList, kDockerManifest}) {
    EXPECT_NE(accept.find(t), std::string::npos) << t;
  }
}

}  // namespace
}  // namespace slipstream::remote
