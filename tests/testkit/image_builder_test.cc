// SPDX-License-Identifier: Apache-2.0
// ImageBuilder against a real registry: build from a directory with every entry type, a
// TarWriter stream and a tar file, push, resolve and download with slipstream's client, and
// check every layer with the command-line tools (gzip/zstd/tar).
#include "testkit/image_builder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "remote/registry_client.h"
#include "testkit/compress.h"
#include "testkit/registry_fixture.h"
#include "testkit/tar_writer.h"

namespace slipstream::testkit {
namespace {

using remote::Compression;
using ::testing::HasSubstr;

// A tree with a regular file, an empty file, a setuid file, nested and sticky directories, a
// symlink, a hardlink, a fifo and a 2 MiB file. Devices come from a TarWriter layer instead,
// since mknod(2) needs privileges a test should not assume.
void MakeTree(const std::string& root) {
  ASSERT_TRUE(MakeDirs(root + "/etc").ok());
  ASSERT_TRUE(MakeDirs(root + "/usr/bin").ok());
  ASSERT_TRUE(MakeDirs(root + "/tmp").ok());
  ASSERT_EQ(::chmod((root + "/tmp").c_str(), 01777), 0);
  ASSERT_TRUE(WriteFileAtomic(root + "/etc/hostname", "slipstream\n").ok());
  ASSERT_TRUE(WriteFileAtomic(root + "/etc/empty", "").ok());
  ASSERT_TRUE(WriteFileAtomic(root + "/usr/bin/tool", "#!/bin/sh\necho hi\n", 0755).ok());
  ASSERT_EQ(::chmod((root + "/usr/bin/tool").c_str(), 04755), 0);
  std::string big(2 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 7919) >> 5);
  ASSERT_TRUE(WriteFileAtomic(root + "/usr/big.bin", big).ok());
  ASSERT_EQ(::symlink("../usr/bin/tool", (root + "/etc/tool-link").c_str()), 0);
  ASSERT_EQ(::link((root + "/etc/hostname").c_str(), (root + "/etc/hostname.hard").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/tmp/fifo").c_str(), 0600), 0);
}

std::string DeviceLayer() {
  std::string tar;
  TarWriter w(TarWriter::StringSink(&tar));
  EXPECT_TRUE(w.AddDir("dev").ok());
  EXPECT_TRUE(w.AddCharDevice("dev/null", 1, 3, {.mode = 0666}).ok());
  EXPECT_TRUE(w.AddBlockDevice("dev/loop0", 7, 0, {.mode = 0660}).ok());
  EXPECT_TRUE(w.AddWhiteout("etc", "empty").ok());
  EXPECT_TRUE(w.AddOpaqueWhiteout("tmp").ok());
  EXPECT_TRUE(w.Finish().ok());
  return tar;
}

absl::StatusOr<SubprocessResult> RunTool(const std::vector<std::string>& argv) {
  SubprocessOptions opts;
  opts.env["TZ"] = "UTC";
  return RunSubprocess(argv, opts);
}

// Decompresses `blob` with the CLI into `out` (uncompressed tar).
void CliDecompress(Compression c, const std::string& blob, const std::string& out) {
  std::string cmd;
  switch (c) {
    case Compression::kGzip: cmd = "gzip -dc"; break;
    case Compression::kZstd: cmd = "zstd -qdc"; break;
    case Compression::kNone: cmd = "cat"; break;
  }
  auto r = RunTool({"sh", "-c", absl::StrCat(cmd, " '", blob, "' > '", out, "'")});
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->exit_code, 0) << r->stderr_data;
}

Digest FileDigest(const std::string& path) {
  auto fd = OpenFile(path, O_RDONLY);
  EXPECT_TRUE(fd.ok()) << fd.status();
  Sha256Hasher h;
  std::string buf(1 << 20, '\0');
  ssize_t n;
  while (fd.ok() && (n = ::read(fd->get(), buf.data(), buf.size())) > 0) {
    h.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
  }
  return h.Finish();
}

std::string TarListing(const std::string& tar_path) {
  auto r = RunTool({"tar", "-tv", "--numeric-owner", "-f", tar_path});
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return "";
  EXPECT_EQ(r->exit_code, 0) << r->stderr_data;
  EXPECT_EQ(r->stderr_data, "");
  return r->stdout_data;
}

// A registry fixture, a client and a temp dir per test.
class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto reg = RegistryFixture::Start();
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = std::move(*reg);
    auto client = remote::RegistryClient::Create({});
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    auto dir = TempDir::Create("image-builder-");
    ASSERT_TRUE(dir.ok());
    dir_ = std::make_unique<TempDir>(std::move(*dir));
  }

  remote::Reference Ref(const std::string& repo_tag) {
    auto ref = remote::Reference::Parse(absl::StrCat(registry_->host(), "/", repo_tag));
    EXPECT_TRUE(ref.ok()) << ref.status();
    return *ref;
  }

  std::unique_ptr<RegistryFixture> registry_;
  std::unique_ptr<remote::RegistryClient> client_;
  std::unique_ptr<TempDir> dir_;
};

class ImageBuilderRegistry : public RegistryTest,
                             public ::testing::WithParamInterface<Compression> {};

TEST_P(ImageBuilderRegistry, PushResolveDownloadAndVerifyEveryLayer) {
  const Compression c = GetParam();
  const std::string tree = dir_->Join("tree");
  MakeTree(tree);
  // A plain tar file as the third source, written by GNU tar itself.
  const std::string tar_file = dir_->Join("extra.tar");
  ASSERT_TRUE(MakeDirs(dir_->Join("extra/opt")).ok());
  ASSERT_TRUE(WriteFileAtomic(dir_->Join("extra/opt/readme"), "from a tar file\n").ok());
  auto gnu = RunTool({"tar", "-cf", tar_file, "-C", dir_->Join("extra"), "opt"});
  ASSERT_TRUE(gnu.ok() && gnu->exit_code == 0);

  ImageSpec spec;
  spec.layers.push_back({.source_dir = tree, .compression = c, .gzip_members_every = 1 << 20,
                         .tree = {.uid = 0, .gid = 0}});
  spec.layers.push_back({.tar_bytes = DeviceLayer(), .compression = c});
  spec.layers.push_back({.source_tar = tar_file, .compression = c});
  spec.platform = {.os = "linux", .architecture = "amd64"};
  spec.cmd = {"/usr/bin/tool"};
  spec.env = {"PATH=/usr/bin"};
  auto built = BuildImage(spec, dir_->Join("layout"));
  ASSERT_TRUE(built.ok()) << built.status();
  ASSERT_EQ(built->layers.size(), 3u);
  EXPECT_EQ(built->layers[0].descriptor.media_type, LayerMediaType(c));

  const remote::Reference ref = Ref(absl::StrCat("testkit/every-type:", AV(CompressionName(c))));
  auto pushed = PushImage(*client_, *built, ref);
  ASSERT_TRUE(pushed.ok()) << pushed.status() << "\n" << registry_->LogTail();
  EXPECT_EQ(*pushed, built->manifest_digest);

  auto resolved = client_->ResolveImage(ref, spec.platform);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->manifest_digest, built->manifest_digest);
  EXPECT_EQ(resolved->manifest_body, built->manifest_json);
  EXPECT_EQ(resolved->config.platform.architecture, "amd64");
  EXPECT_THAT(resolved->config.cmd, ::testing::ElementsAre("/usr/bin/tool"));
  ASSERT_EQ(resolved->config.diff_ids.size(), 3u);
  ASSERT_EQ(resolved->manifest.layers.size(), 3u);

  std::vector<std::string> listings;
  for (size_t i = 0; i < 3; ++i) {
    const remote::Descriptor& layer = resolved->manifest.layers[i];
    const std::string blob = dir_->Join(absl::StrCat("download-", i));
    {
      auto fd = OpenFile(blob, O_CREAT | O_RDWR | O_TRUNC);
      ASSERT_TRUE(fd.ok());
      ASSERT_TRUE(client_->DownloadBlob(ref, layer, fd->get()).ok());
    }
    EXPECT_EQ(FileDigest(blob), layer.digest) << "layer " << i;
    const std::string tar = blob + ".tar";
    CliDecompress(c, blob, tar);
    EXPECT_EQ(FileDigest(tar), resolved->config.diff_ids[i]) << "layer " << i;
    listings.push_back(TarListing(tar));
  }

  EXPECT_THAT(listings[0], HasSubstr("drwxr-xr-x 0/0"));
  EXPECT_THAT(listings[0], HasSubstr(" etc/\n"));
  EXPECT_THAT(listings[0], HasSubstr(" 11 "));  // etc/hostname
  EXPECT_THAT(listings[0], HasSubstr("etc/hostname.hard link to etc/hostname"));
  EXPECT_THAT(listings[0], HasSubstr("etc/tool-link -> ../usr/bin/tool"));
  EXPECT_THAT(listings[0], HasSubstr("prw------- 0/0"));
  EXPECT_THAT(listings[0], HasSubstr("-rwsr-xr-x 0/0"));
  EXPECT_THAT(listings[0], HasSubstr("drwxrwxrwt 0/0"));
  EXPECT_THAT(listings[0], HasSubstr(absl::StrCat(2 << 20, " ")));
  EXPECT_THAT(listings[1], HasSubstr("crw-rw-rw- 0/0"));
  EXPECT_THAT(listings[1], HasSubstr("brw-rw---- 0/0"));
  EXPECT_THAT(listings[1], HasSubstr("etc/.wh.empty"));
  EXPECT_THAT(listings[1], HasSubstr("tmp/.wh..wh..opq"));
  EXPECT_THAT(listings[2], HasSubstr("opt/readme"));
}

INSTANTIATE_TEST_SUITE_P(Compressions, ImageBuilderRegistry,
                         ::testing::Values(Compression::kGzip, Compression::kZstd,
                                           Compression::kNone),
                         [](const auto& info) { return std::string(CompressionName(info.param)); });

TEST_F(RegistryTest, IndexSelectsThePlatform) {
  std::vector<BuiltImage> images;
  for (const char* arch : {"amd64", "arm64"}) {
    std::string tar;
    TarWriter w(TarWriter::StringSink(&tar));
    ASSERT_TRUE(w.AddFile("arch", arch).ok());
    ASSERT_TRUE(w.Finish().ok());
    ImageSpec spec;
    spec.layers.push_back({.tar_bytes = tar});
    spec.platform = {.os = "linux", .architecture = arch};
    auto built = BuildImage(spec, dir_->Join("layout"));
    ASSERT_TRUE(built.ok()) << built.status();
    images.push_back(*std::move(built));
  }
  auto index = BuildIndex(images, dir_->Join("layout"));
  ASSERT_TRUE(index.ok()) << index.status();
  const remote::Reference ref = Ref("testkit/multi:v1");
  auto pushed = PushIndex(*client_, *index, ref);
  ASSERT_TRUE(pushed.ok()) << pushed.status() << "\n" << registry_->LogTail();
  EXPECT_EQ(*pushed, index->index_digest);

  auto arm = client_->ResolveImage(ref, {.os = "linux", .architecture = "arm64"});
  ASSERT_TRUE(arm.ok()) << arm.status();
  ASSERT_TRUE(arm->index_digest.has_value());
  EXPECT_EQ(*arm->index_digest, index->index_digest);
  EXPECT_EQ(arm->manifest_digest, images[1].manifest_digest);
  EXPECT_EQ(arm->config.platform.architecture, "arm64");
  auto amd = client_->ResolveImage(ref, {.os = "linux", .architecture = "amd64"});
  ASSERT_TRUE(amd.ok()) << amd.status();
  EXPECT_EQ(amd->manifest_digest, images[0].manifest_digest);
  auto ppc = client_->ResolveImage(ref, {.os = "linux", .architecture = "ppc64le"});
  EXPECT_EQ(ppc.status().code(), absl::StatusCode::kNotFound);

  // The layout's index.json now names the index.
  auto layout = ReadFileToString(dir_->Join("layout/index.json"));
  ASSERT_TRUE(layout.ok());
  EXPECT_THAT(*layout, HasSubstr(index->index_digest.str()));
}

TEST(ImageBuilder, BuildIsDeterministicAndWritesAnOciLayout) {
  auto dir = TempDir::Create("image-layout-");
  ASSERT_TRUE(dir.ok());
  MakeTree(dir->Join("tree"));
  ImageSpec spec;
  spec.layers.push_back({.source_dir = dir->Join("tree"), .compression = Compression::kZstd});
  spec.layers.push_back({.tar_bytes = DeviceLayer()});
  spec.platform = {.os = "linux", .architecture = "arm64", .variant = "v8"};
  auto a = BuildImage(spec, dir->Join("a"));
  auto b = BuildImage(spec, dir->Join("b"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->manifest_digest, b->manifest_digest);
  EXPECT_EQ(a->manifest_json, b->manifest_json);

  auto parsed = remote::Manifest::Parse(a->manifest_json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, a->manifest);
  auto config = remote::ImageConfig::Parse(a->config_json);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->platform.variant, "v8");
  ASSERT_EQ(config->diff_ids.size(), 2u);
  EXPECT_EQ(config->diff_ids[1], Sha256Of(DeviceLayer()));
  EXPECT_EQ(a->layers[1].uncompressed_size, static_cast<int64_t>(DeviceLayer().size()));

  // Every blob is stored under its own digest.
  for (const BuiltLayer& layer : a->layers) {
    EXPECT_EQ(FileDigest(layer.path), layer.descriptor.digest);
  }
  auto manifest_blob = ReadFileToString(
      dir->Join(absl::StrCat("a/blobs/sha256/", AV(a->manifest_digest.hex()))));
  ASSERT_TRUE(manifest_blob.ok());
  EXPECT_EQ(*manifest_blob, a->manifest_json);
  auto oci_layout = ReadFileToString(dir->Join("a/oci-layout"));
  ASSERT_TRUE(oci_layout.ok());
  EXPECT_THAT(*oci_layout, HasSubstr("imageLayoutVersion"));
  auto index = ReadFileToString(dir->Join("a/index.json"));
  ASSERT_TRUE(index.ok());
  auto layout_index = remote::ImageIndex::Parse(*index);
  ASSERT_TRUE(layout_index.ok()) << layout_index.status();
  ASSERT_EQ(layout_index->manifests.size(), 1u);
  EXPECT_EQ(layout_index->manifests[0].digest, a->manifest_digest);
}

TEST(ImageBuilder, CacheKeyReusesTheLayer) {
  auto dir = TempDir::Create("image-cache-");
  ASSERT_TRUE(dir.ok());
  MakeTree(dir->Join("tree"));
  LayerSpec spec{.source_dir = dir->Join("tree"), .cache_key = "tree@1"};
  auto first = BuildLayer(spec, dir->Join("work"));
  ASSERT_TRUE(first.ok()) << first.status();
  // Change the tree: a reused layer must not notice, a new key must.
  ASSERT_TRUE(WriteFileAtomic(dir->Join("tree/new-file"), "x").ok());
  auto reused = BuildLayer(spec, dir->Join("work"));
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(reused->descriptor.digest, first->descriptor.digest);
  EXPECT_EQ(reused->diff_id, first->diff_id);
  spec.cache_key = "tree@2";
  auto rebuilt = BuildLayer(spec, dir->Join("work"));
  ASSERT_TRUE(rebuilt.ok());
  EXPECT_NE(rebuilt->descriptor.digest, first->descriptor.digest);
  // A lost blob invalidates the record.
  ASSERT_EQ(::unlink(rebuilt->path.c_str()), 0);
  auto again = BuildLayer(spec, dir->Join("work"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->descriptor.digest, rebuilt->descriptor.digest);
  EXPECT_EQ(FileDigest(again->path), again->descriptor.digest);
}

TEST(ImageBuilder, BadSpecsAreRejected) {
  auto dir = TempDir::Create("image-bad-");
  ASSERT_TRUE(dir.ok());
  EXPECT_EQ(BuildLayer({}, dir->path()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildLayer({.source_dir = "/a", .tar_bytes = "b"}, dir->path()).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildLayer({.source_dir = dir->Join("missing")}, dir->path()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(BuildLayer({.source_tar = dir->Join("missing.tar")}, dir->path()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(BuildImage({}, dir->path()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BuildIndex({}, dir->path()).status().code(), absl::StatusCode::kInvalidArgument);
  // Nothing half-written is left behind in the blob store.
  auto ls = RunTool({"sh", "-c", absl::StrCat("ls -A '", dir->path(), "/blobs/sha256' 2>/dev/null")});
  ASSERT_TRUE(ls.ok());
  EXPECT_EQ(ls->stdout_data, "");
}

}  // namespace
}  // namespace slipstream::testkit
