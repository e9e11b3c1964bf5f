// SPDX-License-Identifier: Apache-2.0
// SOCI index round trips through a real docker-registry: build the zTOCs of an image with a
// >10 MiB gzip layer, publish the index as v2 (new image manifest + image index) and as v1
// (referrers tag fallback: distribution 2.8 has no referrers API), discover it again and read
// a file through the zTOC with a small fraction of the layer fetched.
#include "index/soci_index.h"

#include <map>
#include <memory>
#include <string>

#include "common/digest.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "index/ztoc_reader.h"
#include "remote/media_types.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "testkit/tar_writer.h"

namespace slipstream::index {
namespace {

constexpr int64_t kSpan = 1 << 20;
constexpr char kNeedle[] = "data/needle.txt";

// Incompressible bytes, so that the gzip layer stays above the 10 MiB threshold.
std::string NoiseBytes(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

std::string NeedleContent() {
  std::string s;
  for (int i = 0; s.size() < 200000; ++i) s += "line " + std::to_string(i) + " of the needle\n";
  return s;
}

class SociIndexTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto f = testkit::RegistryFixture::Start();
    ASSERT_TRUE(f.ok()) << f.status();
    registry_ = f->release();
    auto work = TempDir::Create("soci-index-test-");
    ASSERT_TRUE(work.ok()) << work.status();
    work_ = new TempDir(*std::move(work));

    std::string tar;
    testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
    ASSERT_TRUE(w.AddDir("data").ok());
    ASSERT_TRUE(w.AddFile("data/big.bin", NoiseBytes(12 << 20, 7)).ok());
    ASSERT_TRUE(w.AddFile(kNeedle, NeedleContent()).ok());
    ASSERT_TRUE(w.AddFile("data/tail.bin", NoiseBytes(1 << 20, 9)).ok());
    ASSERT_TRUE(w.Finish().ok());
    testkit::ImageSpec spec;
    spec.layers.push_back({.tar_bytes = std::move(tar), .level = 1});
    // A small second layer: it must get no zTOC.
    std::string small;
    testkit::TarWriter sw(testkit::TarWriter::StringSink(&small));
    ASSERT_TRUE(sw.AddFile("etc/hostname", "soci\n").ok());
    ASSERT_TRUE(sw.Finish().ok());
    spec.layers.push_back({.tar_bytes = std::move(small)});
    auto built = testkit::BuildImage(spec, work_->path());
    ASSERT_TRUE(built.ok()) << built.status();
    image_ = new testkit::BuiltImage(*std::move(built));
  }
  static void TearDownTestSuite() {
    delete image_;
    delete work_;
    delete registry_;
  }

  void SetUp() override {
    ASSERT_NE(registry_, nullptr);
    ASSERT_NE(image_, nullptr);
    remote::RegistryClientOptions o;
    o.retry.initial_backoff = absl::Milliseconds(20);
    o.retry.max_backoff = absl::Milliseconds(200);
    o.retry.max_total = absl::Seconds(30);
    auto c = remote::RegistryClient::Create(std::move(o));
    ASSERT_TRUE(c.ok()) << c.status();
    client_ = *std::move(c);
  }

  remote::Reference Ref(const std::string& rest) {
    auto r = remote::Reference::Parse(registry_->host() + "/" + rest);
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  // Pushes the test image as `rest` and returns its reference.
  remote::Reference PushSource(const std::string& rest) {
    remote::Reference ref = Ref(rest);
    auto pushed = testkit::PushImage(*client_, *image_, ref);
    EXPECT_TRUE(pushed.ok()) << pushed.status();
    return ref;
  }

  SociIndexOptions Options(SociVersion version) {
    SociIndexOptions o;
    o.span_size = kSpan;
    o.version = version;
    o.platform = image_->platform;
    return o;
  }

  // Reads kNeedle through the discovered index's zTOC with Range reads of the layer only.
  void ExpectNeedleReadable(const DiscoveredIndex& found, const remote::Reference& repo) {
    const remote::Descriptor& layer = image_->layers[0].descriptor;
    const remote::Descriptor* zd = found.ZtocFor(layer.digest);
    ASSERT_NE(zd, nullptr);
    auto ztoc = FetchZtoc(*client_, repo, *zd);
    ASSERT_TRUE(ztoc.ok()) << ztoc.status();
    EXPECT_GE(ztoc->SpanCount(), 10);
    std::unique_ptr<remote::BlobReader> blob = client_->OpenBlob(repo, layer);
    ZtocReader reader(std::make_shared<const Ztoc>(*std::move(ztoc)), *blob);
    ReadStats stats;
    const std::string want = NeedleContent();
    auto got = reader.ReadFile(kNeedle, 0, static_cast<int64_t>(want.size()) + 10, &stats);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, want);
    EXPECT_GT(stats.compressed_bytes_fetched, 0);
    // The needle spans at most two 1 MiB spans of a 13 MiB layer.
    EXPECT_LE(stats.compressed_bytes_fetched, 3 * kSpan) << "layer is " << layer.size;
  }

  static inline testkit::RegistryFixture* registry_ = nullptr;
  static inline TempDir* work_ = nullptr;
  static inline testkit::BuiltImage* image_ = nullptr;
  std::unique_ptr<remote::RegistryClient> client_;
};

TEST_F(SociIndexTest, BuildsZtocsOnlyForLargeLayers) {
  remote::Reference src = PushSource("soci/build:v1");
  SociIndexOptions options = Options(SociVersion::kV2);
  std::map<std::string, int64_t> progress;  // layer digest -> last bytes_read reported
  options.on_progress = [&](const remote::Descriptor& layer, int64_t read) {
    EXPECT_GT(read, progress[layer.digest.str()]) << "progress must grow";
    progress[layer.digest.str()] = read;
  };
  auto index = BuildSociIndex(*client_, src, options);
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_GT(image_->layers[0].descriptor.size, 10 << 20);
  // The indexed layer streamed through once, to its last byte.
  EXPECT_EQ(progress[image_->layers[0].descriptor.digest.str()], image_->layers[0].descriptor.size);
  ASSERT_EQ(index->ztocs.size(), 1u);
  const BuiltZtoc& z = index->ztocs[0];
  EXPECT_EQ(z.layer.digest, image_->layers[0].descriptor.digest);
  EXPECT_GE(z.spans, 12);
  EXPECT_EQ(z.descriptor.annotations.at(std::string(kAnnotationLayerDigest)),
            image_->layers[0].descriptor.digest.str());
  EXPECT_EQ(z.descriptor.annotations.at(std::string(kAnnotationLayerMediaType)),
            image_->layers[0].descriptor.media_type);
  EXPECT_EQ(z.descriptor.annotations.at(std::string(kAnnotationSpanSize)),
            std::to_string(kSpan));
  EXPECT_EQ(z.descriptor.annotations.at(std::string(kAnnotationDisableXattrs)), "true");
  EXPECT_EQ(index->manifest.config.media_type, kSociIndexV2);
  EXPECT_EQ(index->manifest.config.digest.str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
  EXPECT_EQ(index->manifest.annotations.at(std::string(kAnnotationBuildTool)), "slipstream");
  EXPECT_FALSE(index->manifest.subject.has_value());
  EXPECT_EQ(index->manifest_digest, Sha256Of(index->manifest_json));
}

TEST_F(SociIndexTest, V2ConvertDiscoverAndRandomAccess) {
  remote::Reference src = PushSource("soci/v2:src");
  auto index = BuildSociIndex(*client_, src, Options(SociVersion::kV2));
  ASSERT_TRUE(index.ok()) << index.status();
  remote::Reference dst = Ref("soci/v2:soci");
  auto converted = PushSociIndexV2(*client_, *index, dst);
  ASSERT_TRUE(converted.ok()) << converted.status();
  EXPECT_EQ(converted->index_manifest_digest, index->manifest_digest);
  EXPECT_NE(converted->image_manifest_digest, image_->manifest_digest);

  // The destination tag is an image index listing the new manifest and the SOCI index.
  auto top = client_->GetManifest(dst);
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->digest, converted->image_index_digest);
  auto list = remote::ImageIndex::Parse(top->body);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->manifests.size(), 2u);
  EXPECT_EQ(list->manifests[0].digest, converted->image_manifest_digest);
  const remote::Descriptor& soci = list->manifests[1];
  EXPECT_EQ(soci.digest, index->manifest_digest);
  EXPECT_EQ(soci.artifact_type, kSociIndexV2);
  ASSERT_TRUE(soci.platform.has_value());
  EXPECT_EQ(soci.annotations.at(std::string(kAnnotationImageManifestDigest)),
            converted->image_manifest_digest.str());

  auto found = DiscoverSociIndex(*client_, dst, image_->platform);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->source, "annotation");
  EXPECT_EQ(found->version, SociVersion::kV2);
  EXPECT_EQ(found->digest, index->manifest_digest);
  EXPECT_EQ(found->image.manifest_digest, converted->image_manifest_digest);
  // The new image manifest still describes the same layers.
  EXPECT_EQ(found->image.manifest.layers, image_->manifest.layers);
  ASSERT_EQ(found->Ztocs().size(), 1u);
  ExpectNeedleReadable(*found, dst);
}

TEST_F(SociIndexTest, V2ConvertOfAnIndexKeepsTheOtherPlatforms) {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  ASSERT_TRUE(w.AddFile("etc/arch", "s390x\n").ok());
  ASSERT_TRUE(w.Finish().ok());
  testkit::ImageSpec other_spec;
  other_spec.platform = {.os = "linux", .architecture = "s390x"};
  other_spec.layers.push_back({.tar_bytes = std::move(tar)});
  auto other = testkit::BuildImage(other_spec, work_->path());
  ASSERT_TRUE(other.ok()) << other.status();
  auto both = testkit::BuildIndex({*image_, *other}, work_->path());
  ASSERT_TRUE(both.ok()) << both.status();
  remote::Reference src = Ref("soci/multi:src");
  ASSERT_TRUE(testkit::PushIndex(*client_, *both, src).ok());

  auto index = BuildSociIndex(*client_, src, Options(SociVersion::kV2));
  ASSERT_TRUE(index.ok()) << index.status();
  ASSERT_TRUE(index->image.index_digest.has_value());
  remote::Reference dst = Ref("soci/multi:soci");
  auto converted = PushSociIndexV2(*client_, *index, dst);
  ASSERT_TRUE(converted.ok()) << converted.status();
  auto top = client_->GetManifest(dst);
  ASSERT_TRUE(top.ok()) << top.status();
  auto list = remote::ImageIndex::Parse(top->body);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->manifests.size(), 3u);
  EXPECT_EQ(list->manifests[0].digest, converted->image_manifest_digest);
  EXPECT_EQ(list->manifests[1].digest, other->manifest_digest);
  EXPECT_EQ(list->manifests[2].artifact_type, kSociIndexV2);

  auto found = DiscoverSociIndex(*client_, dst, image_->platform);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->digest, index->manifest_digest);
  ExpectNeedleReadable(*found, dst);
  // The untouched platform has no index.
  auto none = DiscoverSociIndex(*client_, dst, other_spec.platform);
  EXPECT_TRUE(absl::IsNotFound(none.status())) << none.status();
}

TEST_F(SociIndexTest, V2ConvertIntoAnotherRepositoryCopiesBlobs) {
  remote::Reference src = PushSource("soci/from:v1");
  auto index = BuildSociIndex(*client_, src, Options(SociVersion::kV2));
  ASSERT_TRUE(index.ok()) << index.status();
  remote::Reference dst = Ref("soci/elsewhere:v1");
  auto converted = PushSociIndexV2(*client_, *index, dst);
  ASSERT_TRUE(converted.ok()) << converted.status();
  auto found = DiscoverSociIndex(*client_, dst, image_->platform);
  ASSERT_TRUE(found.ok()) << found.status();
  ExpectNeedleReadable(*found, dst);
}

TEST_F(SociIndexTest, V1PushAndDiscoverThroughReferrersTag) {
  remote::Reference src = PushSource("soci/v1:latest");
  auto index = BuildSociIndex(*client_, src, Options(SociVersion::kV1));
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_EQ(index->manifest.config.media_type, kSociIndexV1);
  ASSERT_TRUE(index->manifest.subject.has_value());
  EXPECT_EQ(index->manifest.subject->digest, image_->manifest_digest);
  auto pushed = PushSociIndexV1(*client_, *index);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  // Pushing again does not list it twice.
  ASSERT_TRUE(PushSociIndexV1(*client_, *index).ok());
  auto tagged = client_->GetManifest(Ref("soci/v1:" + ReferrersTag(image_->manifest_digest)));
  ASSERT_TRUE(tagged.ok()) << tagged.status();
  auto referrers = remote::ImageIndex::Parse(tagged->body);
  ASSERT_TRUE(referrers.ok()) << referrers.status();
  ASSERT_EQ(referrers->manifests.size(), 1u);
  EXPECT_EQ(referrers->manifests[0].artifact_type, kSociIndexV1);

  // docker-registry 2.8 has no referrers API.
  auto api = client_->GetReferrers(src, image_->manifest_digest, kSociIndexV1);
  EXPECT_TRUE(absl::IsNotFound(api.status())) << api.status();

  auto found = DiscoverSociIndex(*client_, src, image_->platform);
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->source, "referrers-tag");
  EXPECT_EQ(found->version, SociVersion::kV1);
  EXPECT_EQ(found->digest, *pushed);
  ExpectNeedleReadable(*found, src);

  auto explicit_found = DiscoverSociIndex(*client_, src, image_->platform, *pushed);
  ASSERT_TRUE(explicit_found.ok()) << explicit_found.status();
  EXPECT_EQ(explicit_found->source, "explicit");
}

TEST_F(SociIndexTest, CorruptLayerInTheRegistryIsDataLoss) {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  ASSERT_TRUE(w.AddFile("corrupt/me.bin", NoiseBytes(256 << 10, 11)).ok());
  ASSERT_TRUE(w.Finish().ok());
  testkit::ImageSpec spec;
  spec.layers.push_back({.tar_bytes = std::move(tar), .level = 0});
  auto work = TempDir::Create("soci-corrupt-");
  ASSERT_TRUE(work.ok()) << work.status();
  auto built = testkit::BuildImage(spec, work->path());
  ASSERT_TRUE(built.ok()) << built.status();
  remote::Reference src = Ref("soci/corrupt:v1");
  ASSERT_TRUE(testkit::PushImage(*client_, *built, src).ok());

  // Change the gzip header's mtime in the stored layer: the stream still inflates and passes
  // its CRC, only the digest check can notice (distribution does not re-verify blobs it
  // serves).
  const Digest& layer = built->layers[0].descriptor.digest;
  const std::string data = registry_->storage_dir() + "/docker/registry/v2/blobs/sha256/" +
                           std::string(layer.hex().substr(0, 2)) + "/" +
                           std::string(layer.hex()) + "/data";
  auto bytes = ReadFileToString(data);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  (*bytes)[4] ^= 0x20;
  ASSERT_TRUE(WriteFileAtomic(data, *bytes).ok());

  SociIndexOptions options = Options(SociVersion::kV2);
  options.min_layer_size = 0;
  auto index = BuildSociIndex(*client_, src, options);
  EXPECT_TRUE(absl::IsDataLoss(index.status())) << index.status();
  EXPECT_NE(std::string(index.status().message()).find("hashes to"), std::string::npos)
      << index.status();
}

TEST_F(SociIndexTest, ImageWithoutIndexIsNotFound) {
  remote::Reference src = PushSource("soci/plain:v1");
  auto found = DiscoverSociIndex(*client_, src, image_->platform);
  EXPECT_TRUE(absl::IsNotFound(found.status())) << found.status();
}

TEST_F(SociIndexTest, ExplicitDigestOfANonIndexIsRejected) {
  remote::Reference src = PushSource("soci/notindex:v1");
  auto found = DiscoverSociIndex(*client_, src, image_->platform, image_->manifest_digest);
  EXPECT_TRUE(absl::IsInvalidArgument(found.status())) << found.status();
}

}  // namespace
}  // namespace slipstream::index
