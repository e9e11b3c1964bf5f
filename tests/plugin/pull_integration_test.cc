// SPDX-License-Identifier: Apache-2.0
// PullImage against a real docker-registry: every compression and entry type compared with
// `tar -x`, corruption through the fault proxy, and memory use on a 200 MB layer.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <string>

#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "tests/plugin/pull_test_util.h"
#include "index/soci_index.h"
#include "plugin/pull_image.h"
#include "remote/registry_client.h"
#include "testkit/fault_proxy.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "tests/remote/registry_integration_env.h"
#include "testkit/tar_writer.h"
#include "tests/unpack/tree_snapshot.h"

namespace slipstream::plugin {
namespace {

using testing::Pseudo;
using testing::List;

// Every entry type a layer may hold, with ~1.3 MB of content so a blob spans several chunks.
std::string EveryEntryTar(uint32_t seed) {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  w.AddDir("bin", {.mode = 0755});
  w.AddFile("bin/tool", Pseudo(1 << 20, seed), {.mode = 04755, .uid = 0, .gid = 0});
  w.AddFile("bin/text", std::string(300000, 'a' + static_cast<char>(seed % 20)), {.mode = 0644});
  w.AddHardlink("bin/tool-link", "bin/tool");
  w.AddSymlink("bin/sh", "tool");
  w.AddDir("etc", {.mode = 02775, .uid = 100, .gid = 101});
  w.AddFile("etc/shadow", "root:*:1::::::\n", {.mode = 0640, .uid = 0, .gid = 42});
  w.AddFile("etc/attr", "x", {.xattrs = {{"user.note", "hello"}}});
  w.AddDir("tmp", {.mode = 01777});
  w.AddCharDevice("dev-null", 1, 3, {.mode = 0666});
  w.AddBlockDevice("dev-loop", 7, 0, {.mode = 0660, .gid = 6});
  w.AddFifo("fifo", {.mode = 0600});
  w.AddFile(std::string(120, 'L') + "/" + std::string(110, 'n'), "long name");
  w.AddWhiteout("etc", "removed");
  w.AddDir("var", {});
  w.AddOpaqueWhiteout("var");
  w.AddFile("nanotime", "t", {.mtime = absl::FromUnixNanos(1600000000123456789)});
  EXPECT_TRUE(w.Finish().ok());
  return tar;
}

using remote::testing::Ref;

// The suite's registry (registry_) and fast-retry client come from the shared remote test env.
class PullIntegrationTest : public remote::testing::RegistryIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NE(registry_, nullptr);
    auto t = TempDir::Create("pull-it-");
    ASSERT_TRUE(t.ok()) << t.status();
    tmp_.emplace(*std::move(t));
    client_ = remote::testing::NewClient({.max_total = absl::Seconds(20)});
    ASSERT_NE(client_, nullptr);
  }

  testkit::BuiltImage BuildAndPush(const testkit::ImageSpec& spec, const remote::Reference& ref) {
    auto built = testkit::BuildImage(spec, tmp_->Join("oci"));
    EXPECT_TRUE(built.ok()) << built.status();
    auto pushed = testkit::PushImage(*client_, *built, ref);
    EXPECT_TRUE(pushed.ok()) << pushed.status();
    return *built;
  }

  std::optional<TempDir> tmp_;
  std::unique_ptr<remote::RegistryClient> client_;
};

TEST_F(PullIntegrationTest, EveryCompressionAndEntryTypeMatchesTarExtract) {
  std::vector<std::string> tars;
  testkit::ImageSpec spec;
  const remote::Compression kinds[] = {remote::Compression::kGzip, remote::Compression::kGzip,
                                       remote::Compression::kZstd, remote::Compression::kNone};
  for (int i = 0; i < 4; ++i) {
    tars.push_back(EveryEntryTar(static_cast<uint32_t>(i + 1)));
    testkit::LayerSpec layer{.tar_bytes = tars.back(), .compression = kinds[i]};
    if (i == 1) layer.gzip_members_every = 200000;  // multi-member gzip
    spec.layers.push_back(std::move(layer));
  }
  const remote::Reference ref = Ref(registry_->host(), "pull/every:1");
  testkit::BuiltImage built = BuildAndPush(spec, ref);

  ImagePullOptions opts;
  opts.dest = tmp_->Join("out");
  opts.pull.tuning = {.chunk_size = 256 << 10, .requests = 8};
  opts.rootfs = true;
  auto r = PullImage(*client_, ref, remote::Platform::Host(), opts);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->layer_dirs.size(), 4u);
  EXPECT_EQ(r->manifest_digest, built.manifest_digest);

  for (size_t i = 0; i < tars.size(); ++i) {
    SCOPED_TRACE("layer " + std::to_string(i));
    EXPECT_EQ(r->layer_dirs[i], opts.dest + "/" + LayerDirName(i, built.layers[i].diff_id));
    const std::string ref_dir = tmp_->Join("ref" + std::to_string(i));
    ASSERT_TRUE(MakeDirs(ref_dir).ok());
    SubprocessOptions so;
    so.stdin_data = tars[i];
    so.timeout = absl::Seconds(60);
    auto x = RunSubprocess({"tar", "--numeric-owner", "--same-owner", "-p", "--xattrs",
                            "--xattrs-include=*", "-C", ref_dir, "-xf", "-"},
                           so);
    ASSERT_TRUE(x.ok()) << x.status();
    ASSERT_EQ(x->exit_code, 0) << x->stderr_data;
    unpack::testing::ConvertWhiteouts(ref_dir);
    // Directory mtimes are not comparable: tar -x leaves implicit parents at "now", and
    // converting whiteouts afterwards touches their directories. Every other mtime is.
    const auto want = unpack::testing::Snapshot(ref_dir, {.mtimes = false});
    const auto got = unpack::testing::Snapshot(r->layer_dirs[i], {.mtimes = false});
    EXPECT_EQ(unpack::testing::DiffSnapshots(want, got), "");
    const auto want_t = unpack::testing::Snapshot(ref_dir);
    const auto got_t = unpack::testing::Snapshot(r->layer_dirs[i]);
    for (const auto& [path, node] : want_t) {
      if (node.kind == 'd' || !got_t.count(path)) continue;
      EXPECT_EQ(node.mtime_sec, got_t.at(path).mtime_sec) << path;
      EXPECT_EQ(node.mtime_nsec, got_t.at(path).mtime_nsec) << path;
    }
    EXPECT_EQ(got_t.at("etc").mtime_sec, 1577836800);  // the tar's directory mtime
    EXPECT_EQ(got_t.at("nanotime").mtime_nsec, 123456789);
  }
  // The rootfs holds the last layer's view (all layers have the same names).
  auto tool = ReadFileToString(opts.dest + "/rootfs/bin/tool");
  ASSERT_TRUE(tool.ok()) << tool.status();
  EXPECT_EQ(*tool, Pseudo(1 << 20, 4));
  auto manifest = ReadFileToString(opts.dest + "/" + kPullManifestName);
  ASSERT_TRUE(manifest.ok()) << manifest.status();
  EXPECT_NE(manifest->find(built.layers[2].descriptor.digest.str()), std::string::npos);
  // Layer dirs, rootfs and pull.json: no temp files, no partial directories.
  EXPECT_EQ(List(opts.dest).size(), 6u);
}

// With a SOCI index (v1 through the referrers tag, v2 through the converted image), indexed
// layers are inflated span by span in parallel and unpack exactly like the sequential path.
TEST_F(PullIntegrationTest, SociIndexedLayersInflateSpansInParallel) {
  testkit::ImageSpec spec;
  std::vector<std::string> tars = {EveryEntryTar(11), EveryEntryTar(12)};
  for (const std::string& tar : tars) {
    spec.layers.push_back({.tar_bytes = tar, .compression = remote::Compression::kGzip});
  }
  const remote::Reference ref = Ref(registry_->host(), "pull/soci:1");
  BuildAndPush(spec, ref);

  auto sequential = [&](const remote::Reference& r, const std::string& dest) {
    ImagePullOptions opts;
    opts.dest = tmp_->Join(dest);
    auto pulled = PullImage(*client_, r, remote::Platform::Host(), opts);
    EXPECT_TRUE(pulled.ok()) << pulled.status();
    return pulled;
  };
  auto with_index = [&](const remote::Reference& r, const std::string& dest) {
    ImagePullOptions opts;
    opts.dest = tmp_->Join(dest);
    opts.use_soci_index = true;
    opts.span_inflate_threads = 2;
    opts.pull.tuning = {.chunk_size = 128 << 10, .requests = 4};
    auto pulled = PullImage(*client_, r, remote::Platform::Host(), opts);
    EXPECT_TRUE(pulled.ok()) << pulled.status();
    return pulled;
  };

  // No index yet: the sequential path, and the reference tree.
  auto plain = sequential(ref, "plain");
  ASSERT_TRUE(plain.ok());
  auto none = with_index(ref, "no-index");
  ASSERT_TRUE(none.ok());
  for (const LayerResult& l : none->layers) EXPECT_FALSE(l.span_inflated);

  for (index::SociVersion version : {index::SociVersion::kV1, index::SociVersion::kV2}) {
    const bool v1 = version == index::SociVersion::kV1;
    SCOPED_TRACE(v1 ? "v1" : "v2");
    auto built = index::BuildSociIndex(
        *client_, ref, {.span_size = 64 << 10, .min_layer_size = 0, .version = version});
    ASSERT_TRUE(built.ok()) << built.status();
    ASSERT_EQ(built->ztocs.size(), 2u);
    remote::Reference pull_ref = ref;
    if (v1) {
      ASSERT_TRUE(index::PushSociIndexV1(*client_, *built).ok());
    } else {
      pull_ref = Ref(registry_->host(), "pull/soci:v2");
      ASSERT_TRUE(index::PushSociIndexV2(*client_, *built, pull_ref).ok());
    }
    auto indexed = with_index(pull_ref, v1 ? "v1" : "v2");
    ASSERT_TRUE(indexed.ok());
    ASSERT_EQ(indexed->layers.size(), 2u);
    for (size_t i = 0; i < 2; ++i) {
      EXPECT_TRUE(indexed->layers[i].span_inflated) << i;
      EXPECT_EQ(indexed->layers[i].unpack.diff_id, plain->layers[i].unpack.diff_id);
      // Implicit parent directories get "now" as mtime; everything else must be identical.
      EXPECT_EQ(unpack::testing::DiffSnapshots(
                    unpack::testing::Snapshot(plain->layer_dirs[i], {.mtimes = false}),
                    unpack::testing::Snapshot(indexed->layer_dirs[i], {.mtimes = false})),
                "");
    }
  }
}

TEST_F(PullIntegrationTest, CorruptBlobIsDataLossAndLeavesNothingBehind) {
  testkit::ImageSpec spec;
  spec.layers.push_back({.tar_bytes = EveryEntryTar(7), .compression = remote::Compression::kGzip});
  spec.layers.push_back({.tar_bytes = EveryEntryTar(8), .compression = remote::Compression::kZstd});
  const remote::Reference ref = Ref(registry_->host(), "pull/corrupt:1");
  testkit::BuiltImage built = BuildAndPush(spec, ref);

  auto proxy = testkit::FaultProxy::Start(registry_->host());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  const std::string target = "/blobs/" + built.layers[0].descriptor.digest.str();
  testkit::FaultId id = (*proxy)->Add(testkit::Fault::CorruptAt(1000).On("GET", target).Times(-1));

  ImagePullOptions opts;
  opts.dest = tmp_->Join("out");
  opts.pull.tuning = {.chunk_size = 256 << 10, .requests = 8};
  auto r = PullImage(*client_, Ref((*proxy)->host(), "pull/corrupt:1"), remote::Platform::Host(),
                     opts);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << r.status();
  EXPECT_GT((*proxy)->hits(id), 0);
  EXPECT_TRUE(List(opts.dest).empty()) << *List(opts.dest).begin();
}

TEST_F(PullIntegrationTest, TruncatedTransferIsResumed) {
  testkit::ImageSpec spec;
  spec.layers.push_back({.tar_bytes = EveryEntryTar(9), .compression = remote::Compression::kGzip});
  const remote::Reference ref = Ref(registry_->host(), "pull/truncated:1");
  testkit::BuiltImage built = BuildAndPush(spec, ref);
  auto proxy = testkit::FaultProxy::Start(registry_->host());
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  const std::string target = "/blobs/" + built.layers[0].descriptor.digest.str();
  testkit::FaultId id =
      (*proxy)->Add(testkit::Fault::TruncateAfter(5000).On("GET", target).Times(2));
  ImagePullOptions opts;
  opts.dest = tmp_->Join("out");
  opts.pull.tuning = {.chunk_size = 256 << 10, .requests = 4};
  auto r = PullImage(*client_, Ref((*proxy)->host(), "pull/truncated:1"),
                     remote::Platform::Host(), opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*proxy)->hits(id), 2);
  EXPECT_EQ(r->layers[0].unpack.digest, built.layers[0].descriptor.digest);
}

int64_t PeakRssKiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

TEST_F(PullIntegrationTest, LargeLayerPullsWithBoundedMemory) {
  // 200 MB of incompressible data written in pieces, so the test itself stays small.
  const std::string src = tmp_->Join("src");
  ASSERT_TRUE(MakeDirs(src).ok());
  {
    auto fd = OpenFile(src + "/big.bin", O_WRONLY | O_CREAT | O_TRUNC);
    ASSERT_TRUE(fd.ok()) << fd.status();
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(WriteAll(fd->get(), Pseudo(1000000, static_cast<uint32_t>(100 + i))).ok());
    }
  }
  testkit::ImageSpec spec;
  spec.layers.push_back({.source_dir = src, .compression = remote::Compression::kZstd, .level = 1});
  const remote::Reference ref = Ref(registry_->host(), "pull/large:1");
  testkit::BuiltImage built = BuildAndPush(spec, ref);
  ASSERT_GT(built.layers[0].descriptor.size, 199000000);

  // Reset the peak so only the pull counts (Linux >= 4.0).
  { std::ofstream("/proc/self/clear_refs") << "5"; }
  ImagePullOptions opts;
  opts.dest = tmp_->Join("out");
  opts.pull.tuning = {.chunk_size = 4 << 20, .requests = 16};
  auto r = PullImage(*client_, ref, remote::Platform::Host(), opts);
  ASSERT_TRUE(r.ok()) << r.status();
  const int64_t peak = PeakRssKiB();
  EXPECT_GT(peak, 0);
  RecordProperty("peak_rss_kib", std::to_string(peak));
  std::cout << "peak RSS during a 200 MB pull: " << peak / 1024 << " MiB\n";
  EXPECT_LT(peak, 256 * 1024) << "peak RSS " << peak << " KiB";
  struct stat st;
  ASSERT_EQ(::stat((r->layer_dirs[0] + "/big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 200000000);
}

}  // namespace
}  // namespace slipstream::plugin
