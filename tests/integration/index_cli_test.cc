// SPDX-License-Identifier: Apache-2.0
// The real `slipstream` binary's index and ztoc commands against a real registry
// (docker-registry on 127.0.0.1): `index create`, `index push` (v2 in place, and --v1),
// `index convert SRC DST`, `index list`, `index info`, `ztoc info --json` and
// `ztoc get-file`, on an image with one layer above --min-layer-size (a file crossing many
// spans of a small --span-size, and a small file) and one layer below it.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "remote/manifest.h"
#include "remote/platform.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "testkit/tar_writer.h"

#ifndef SLIPSTREAM_PATH
#error "SLIPSTREAM_PATH must name the slipstream binary"
#endif

namespace slipstream {
namespace {

constexpr int64_t kSpanSize = 128 << 10;
constexpr int64_t kMinLayerSize = 1 << 20;
constexpr char kBigPath[] = "data/big.bin";
constexpr char kSmallPath[] = "etc/small.txt";
constexpr char kTinyPath[] = "etc/tiny.txt";  // in the second layer, which gets no zTOC
// Entries of the indexed layer: data/, data/big.bin, data/link, etc/, etc/small.txt.
constexpr size_t kIndexedEntries = 5;

// Deterministic bytes, half noise and half repeated text per 4 KiB, so deflate compresses
// them about 2:1 and the layer stays above kMinLayerSize.
std::string LayerData(size_t size, uint64_t seed) {
  std::string out;
  out.reserve(size);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  while (out.size() < size) {
    for (int i = 0; i < 2048; ++i) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      out.push_back(static_cast<char>(x));
    }
    for (int i = 0; i < 64; ++i) out += absl::StrCat("line ", seed, " ", out.size() % 997, "\n");
    out.resize(std::min(out.size(), size));
  }
  out.resize(size);
  return out;
}

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// The image (built once) and a registry shared by the tests; each test pushes the image to
// its own repository, so tests do not see each other's indexes.
class IndexCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto tmp = TempDir::Create("index-cli-it-");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_ = new TempDir(std::move(*tmp));
    ASSERT_TRUE(MakeDirs(tmp_->Join("hosts")).ok());
    ASSERT_TRUE(MakeDirs(tmp_->Join("docker")).ok());
    auto reg = testkit::RegistryFixture::Start();
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = reg->release();

    big_ = new std::string(LayerData(3 << 20, 1));
    small_ = new std::string(LayerData(5000, 2));
    tiny_ = new std::string("only in the small layer\n");
    std::string tar1, tar2;
    testkit::TarWriter w1(testkit::TarWriter::StringSink(&tar1));
    ASSERT_TRUE(w1.AddDir("data").ok());
    ASSERT_TRUE(w1.AddFile(kBigPath, *big_).ok());
    ASSERT_TRUE(w1.AddSymlink("data/link", "big.bin").ok());
    ASSERT_TRUE(w1.AddDir("etc").ok());
    ASSERT_TRUE(w1.AddFile(kSmallPath, *small_).ok());
    ASSERT_TRUE(w1.Finish().ok());
    testkit::TarWriter w2(testkit::TarWriter::StringSink(&tar2));
    ASSERT_TRUE(w2.AddFile(kTinyPath, *tiny_).ok());
    ASSERT_TRUE(w2.Finish().ok());
    uncompressed_size_ = static_cast<int64_t>(tar1.size());

    testkit::ImageSpec spec;
    spec.layers.push_back({.tar_bytes = std::move(tar1)});
    spec.layers.push_back({.tar_bytes = std::move(tar2)});
    spec.cmd = {"/bin/sh"};
    auto built = testkit::BuildImage(spec, tmp_->Join("layout"));
    ASSERT_TRUE(built.ok()) << built.status();
    image_ = new testkit::BuiltImage(*std::move(built));
    ASSERT_GT(image_->layers[0].descriptor.size, kMinLayerSize);
    ASSERT_LT(image_->layers[1].descriptor.size, kMinLayerSize);
  }

  static void TearDownTestSuite() {
    delete image_;
    delete big_;
    delete small_;
    delete tiny_;
    delete registry_;
    delete tmp_;
  }

  // Pushes the image as <registry>/<repo>:1 and returns that reference.
  static std::string PushAs(const std::string& repo) {
    std::string ref = absl::StrCat(registry_->host(), "/", repo, ":1");
    auto client = remote::RegistryClient::Create({});
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return ref;
    auto parsed = remote::Reference::Parse(ref);
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    auto pushed = testkit::PushImage(**client, *image_, *parsed);
    EXPECT_TRUE(pushed.ok()) << pushed.status();
    return ref;
  }

  // Runs `slipstream ARGS... --hosts-dir <empty> --docker-config <empty>`.
  static CliResult Slipstream(std::vector<std::string> args) {
    std::vector<std::string> argv = {SLIPSTREAM_PATH};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--hosts-dir", tmp_->Join("hosts"), "--docker-config",
                             tmp_->Join("docker/config.json")});
    auto r = RunSubprocess(argv, {.timeout = absl::Seconds(120)});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    return {r->exit_code, r->stdout_data, r->stderr_data};
  }

  static std::vector<std::string> BuildFlags() {
    return {"--span-size", std::to_string(kSpanSize), "--min-layer-size",
            std::to_string(kMinLayerSize)};
  }

  static std::vector<std::string> With(std::vector<std::string> a,
                                       const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }

  // The SOCI index manifest digest `index list IMAGE` reports (and how it was found).
  static std::string ListIndex(const std::string& image, std::string* found_by) {
    CliResult r = Slipstream({"index", "list", image});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    size_t at = r.out.find("Index:    ");
    if (at == std::string::npos) return "";
    std::string line = r.out.substr(at + 10, r.out.find('\n', at) - at - 10);
    *found_by = line.substr(line.find(" (") + 2);
    return line.substr(0, line.find(' '));
  }

  // `ztoc info DIGEST --image IMAGE --json` of the indexed layer's zTOC.
  static nlohmann::json ZtocJson(const std::string& image) {
    std::string found_by;
    std::string index = ListIndex(image, &found_by);
    CliResult info = Slipstream({"index", "info", index, "--image", image});
    EXPECT_EQ(info.exit_code, 0) << info.err;
    nlohmann::json manifest = nlohmann::json::parse(info.out, nullptr, false);
    if (manifest.is_discarded() || manifest["layers"].size() != 1) {
      ADD_FAILURE() << "index info: " << info.out;
      return {};
    }
    std::string ztoc = manifest["layers"][0]["digest"];
    CliResult r = Slipstream({"ztoc", "info", ztoc, "--image", image, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  static TempDir* tmp_;
  static testkit::RegistryFixture* registry_;
  static testkit::BuiltImage* image_;
  static std::string* big_;
  static std::string* small_;
  static std::string* tiny_;
  static int64_t uncompressed_size_;
};

TempDir* IndexCliTest::tmp_ = nullptr;
testkit::RegistryFixture* IndexCliTest::registry_ = nullptr;
testkit::BuiltImage* IndexCliTest::image_ = nullptr;
std::string* IndexCliTest::big_ = nullptr;
std::string* IndexCliTest::small_ = nullptr;
std::string* IndexCliTest::tiny_ = nullptr;
int64_t IndexCliTest::uncompressed_size_ = 0;

TEST_F(IndexCliTest, CreateIndexesOnlyLayersAboveTheMinimumSize) {
  std::string image = PushAs("create/app");
  CliResult r = Slipstream(With({"index", "create", image}, BuildFlags()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("zTOCs:    1 of 2 layers"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(image_->layers[0].descriptor.digest.Short()), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(image_->layers[1].descriptor.digest.Short()), std::string::npos) << r.out;

  // With the default 10 MiB minimum the 1.6 MB layer gets no zTOC either.
  CliResult defaults = Slipstream({"index", "create", image});
  ASSERT_EQ(defaults.exit_code, 0) << defaults.err;
  EXPECT_NE(defaults.out.find("zTOCs:    0 of 2 layers"), std::string::npos) << defaults.out;
  // create publishes nothing.
  CliResult list = Slipstream({"index", "list", image});
  EXPECT_EQ(list.exit_code, 1);
  EXPECT_NE(list.err.find("[NOT_FOUND]"), std::string::npos) << list.err;
}

TEST_F(IndexCliTest, ConvertPublishesV2UnderTheDestination) {
  std::string src = PushAs("convert/src");
  std::string dst = absl::StrCat(registry_->host(), "/convert/dst:soci");
  CliResult r = Slipstream(With({"index", "convert", src, dst}, BuildFlags()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pushed " + dst + "@sha256:"), std::string::npos) << r.out;

  std::string found_by;
  std::string index = ListIndex(dst, &found_by);
  EXPECT_EQ(found_by, "v2, found by annotation)");
  EXPECT_NE(r.out.find("SOCI index     " + index), std::string::npos) << r.out;
  // The source is left as it was.
  EXPECT_EQ(Slipstream({"index", "list", src}).exit_code, 1);

  CliResult info = Slipstream({"index", "info", index, "--image", dst});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  nlohmann::json m = nlohmann::json::parse(info.out, nullptr, false);
  ASSERT_FALSE(m.is_discarded()) << info.out;
  EXPECT_EQ(m["config"]["mediaType"], "application/vnd.amazon.soci.index.v2+json");
  ASSERT_EQ(m["layers"].size(), 1u);
  EXPECT_EQ(m["layers"][0]["annotations"]["com.amazon.soci.image-layer-digest"],
            image_->layers[0].descriptor.digest.str());
  EXPECT_EQ(m["layers"][0]["annotations"]["com.amazon.soci.span-size"],
            std::to_string(kSpanSize));

  // DST is an image index now: --platform picks from it.
  std::string host = remote::Platform::Host().String();
  CliResult here = Slipstream(With({"index", "create", dst, "--platform", host}, BuildFlags()));
  EXPECT_EQ(here.exit_code, 0) << here.err;
  EXPECT_NE(here.out.find("zTOCs:    1 of 2 layers"), std::string::npos) << here.out;
  CliResult elsewhere = Slipstream({"index", "create", dst, "--platform", "linux/s390x"});
  EXPECT_EQ(elsewhere.exit_code, 1) << elsewhere.out;
}

TEST_F(IndexCliTest, PushPublishesV2InPlaceAndV1AsAReferrer) {
  std::string v2 = PushAs("push/v2");
  CliResult pushed = Slipstream(With({"index", "push", v2}, BuildFlags()));
  ASSERT_EQ(pushed.exit_code, 0) << pushed.err;
  EXPECT_NE(pushed.out.find("pushed " + v2 + "@sha256:"), std::string::npos) << pushed.out;
  std::string found_by;
  EXPECT_FALSE(ListIndex(v2, &found_by).empty());
  EXPECT_EQ(found_by, "v2, found by annotation)");

  std::string v1 = PushAs("push/v1");
  CliResult pushed1 = Slipstream(With({"index", "push", v1, "--v1"}, BuildFlags()));
  ASSERT_EQ(pushed1.exit_code, 0) << pushed1.err;
  std::string index = ListIndex(v1, &found_by);
  EXPECT_NE(pushed1.out.find("pushed SOCI index " + index), std::string::npos) << pushed1.out;
  // docker-registry 2.8 has no referrers API: found through the referrers tag.
  EXPECT_EQ(found_by, "v1, found by referrers-tag)");
  CliResult info = Slipstream({"index", "info", index, "--image", v1});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  nlohmann::json m = nlohmann::json::parse(info.out, nullptr, false);
  ASSERT_FALSE(m.is_discarded()) << info.out;
  EXPECT_EQ(m["config"]["mediaType"], "application/vnd.amazon.soci.index.v1+json");
  EXPECT_EQ(m["subject"]["digest"], image_->manifest_digest.str());

  // v2 needs a tag to publish under.
  CliResult by_digest = Slipstream(
      {"index", "push", absl::StrCat(registry_->host(), "/push/v1@", image_->manifest_digest.str())});
  EXPECT_EQ(by_digest.exit_code, 1);
  EXPECT_NE(by_digest.err.find("[INVALID_ARGUMENT]"), std::string::npos) << by_digest.err;
}

// Publishing a v2 index again (CI re-runs) replaces the image index's SOCI entry instead of
// adding a second one.
TEST_F(IndexCliTest, PushingV2TwiceKeepsOneSociEntry) {
  std::string image = PushAs("push/twice");
  for (int i = 0; i < 2; ++i) {
    CliResult r = Slipstream(With({"index", "push", image}, BuildFlags()));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto client = remote::RegistryClient::Create({});
  ASSERT_TRUE(client.ok()) << client.status();
  auto ref = remote::Reference::Parse(image);
  ASSERT_TRUE(ref.ok());
  auto got = (*client)->GetManifest(*ref);
  ASSERT_TRUE(got.ok()) << got.status();
  auto top = remote::ImageIndex::Parse(got->body);
  ASSERT_TRUE(top.ok()) << top.status() << "\n" << got->body;
  int soci = 0, images = 0;
  for (const remote::Descriptor& d : top->manifests) {
    (d.artifact_type == "application/vnd.amazon.soci.index.v2+json" ? soci : images)++;
  }
  EXPECT_EQ(soci, 1) << got->body;
  EXPECT_EQ(images, 1) << got->body;
  std::string found_by;
  EXPECT_FALSE(ListIndex(image, &found_by).empty());
  EXPECT_EQ(found_by, "v2, found by annotation)");
}

TEST_F(IndexCliTest, ZtocInfoDescribesTheLayer) {
  std::string image = PushAs("info/app");
  ASSERT_EQ(Slipstream(With({"index", "push", image}, BuildFlags())).exit_code, 0);
  nlohmann::json z = ZtocJson(image);
  ASSERT_TRUE(z.is_object());
  EXPECT_EQ(z["version"], "0.9");
  EXPECT_EQ(z["compression_algorithm"], "gzip");
  EXPECT_EQ(z["span_size"], kSpanSize);
  EXPECT_EQ(z["compressed_archive_size"], image_->layers[0].descriptor.size);
  EXPECT_EQ(z["uncompressed_archive_size"], uncompressed_size_);
  // 3 MiB in 128 KiB spans: a span ends at the first deflate block end after 128 KiB.
  int64_t spans = z["max_span_id"].get<int64_t>() + 1;
  EXPECT_GE(spans, 12);
  EXPECT_LE(spans, 25);
  EXPECT_EQ(z["span_digests"].size(), static_cast<size_t>(spans));
  ASSERT_EQ(z["spans"].size(), static_cast<size_t>(spans));
  EXPECT_EQ(z["spans"][spans - 1]["uncompressed_end"], uncompressed_size_);
  ASSERT_EQ(z["files"].size(), kIndexedEntries);
  for (const nlohmann::json& f : z["files"]) {
    if (f["name"] == kBigPath) {
      EXPECT_EQ(f["type"], "reg");
      EXPECT_EQ(f["uncompressed_size"], static_cast<int64_t>(big_->size()));
    }
    if (f["name"] == "data/link") {
      EXPECT_EQ(f["linkname"], "big.bin");
    }
  }
}

TEST_F(IndexCliTest, GetFileReadsOnlyTheSpansOfTheFile) {
  std::string image = PushAs("get/app");
  ASSERT_EQ(Slipstream(With({"index", "push", image}, BuildFlags())).exit_code, 0);
  nlohmann::json z = ZtocJson(image);
  ASSERT_TRUE(z.is_object());

  // The big file crosses every span.
  std::string out = tmp_->Join("big.out");
  CliResult big = Slipstream({"ztoc", "get-file", image, kBigPath, "-o", out});
  ASSERT_EQ(big.exit_code, 0) << big.err;
  auto got = ReadFileToString(out, 64 << 20);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == *big_) << "data/big.bin differs (" << got->size() << " bytes)";

  // The small one costs at most two adjacent spans.
  CliResult small = Slipstream({"ztoc", "get-file", image, kSmallPath, "-o", tmp_->Join("small.out")});
  ASSERT_EQ(small.exit_code, 0) << small.err;
  got = ReadFileToString(tmp_->Join("small.out"));
  ASSERT_TRUE(got.ok());
  EXPECT_TRUE(*got == *small_);
  size_t at = small.err.find("fetched ");
  ASSERT_NE(at, std::string::npos) << small.err;
  int64_t fetched = 0;
  ASSERT_TRUE(absl::SimpleAtoi(small.err.substr(at + 8, small.err.find(' ', at + 8) - at - 8),
                               &fetched))
      << small.err;
  int64_t two_spans = 0;
  const nlohmann::json& spans = z["spans"];
  for (size_t i = 0; i < spans.size(); ++i) {
    size_t j = std::min(i + 1, spans.size() - 1);
    two_spans = std::max(two_spans, spans[j]["compressed_end"].get<int64_t>() -
                                        spans[i]["compressed_start"].get<int64_t>());
  }
  EXPECT_GT(fetched, 0);
  EXPECT_LE(fetched, two_spans) << small.err;
  EXPECT_LT(fetched, image_->layers[0].descriptor.size / 4) << small.err;

  // Without -o the file goes to stdout.
  CliResult to_stdout = Slipstream({"ztoc", "get-file", image, kSmallPath});
  ASSERT_EQ(to_stdout.exit_code, 0) << to_stdout.err;
  EXPECT_TRUE(to_stdout.out == *small_);

  // The second layer has no zTOC, so its file cannot be read this way.
  CliResult tiny = Slipstream({"ztoc", "get-file", image, kTinyPath});
  EXPECT_EQ(tiny.exit_code, 1);
  EXPECT_NE(tiny.err.find("[NOT_FOUND]"), std::string::npos) << tiny.err;
}

TEST_F(IndexCliTest, GetFileThroughAV1Index) {
  std::string image = PushAs("get/v1");
  ASSERT_EQ(Slipstream(With({"index", "push", image, "--v1"}, BuildFlags())).exit_code, 0);
  CliResult small = Slipstream({"ztoc", "get-file", image, "./" + std::string(kSmallPath)});
  ASSERT_EQ(small.exit_code, 0) << small.err;
  EXPECT_TRUE(small.out == *small_);
}

}  // namespace
}  // namespace slipstream
