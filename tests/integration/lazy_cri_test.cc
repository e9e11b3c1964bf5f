// SPDX-License-Identifier: Apache-2.0
// Lazy mode through the whole CRI path: the real containerd 1.6 with slipstreamd (configured
// with `default_mode = "lazy"`) as its proxy snapshotter and the CRI plugin on
// `snapshotter = "slipstream"` with snapshot annotations. The image has a small busybox layer
// and a big gzip layer with a v1 SOCI index built and pushed by the real `slipstream index
// push`. `slipstream cri pull` mounts the big layer through FUSE (snapshot labelled
// slipstream.io/mode=lazy, no layer blob in containerd's content store), `slipstream cri run`
// reads files of it, a restarted slipstreamd keeps serving it, and `slipstream cri rmi` lets
// containerd's GC remove the snapshots. Every image comes from a local registry on 127.0.0.1
// over plain HTTP.
//
// Not asserted: how many bytes the registry served. Background completion fetches the rest of
// the lazy layer right after it is mounted (and is not configurable from the TOML file), so a
// byte count would race with it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "plugin/remote_pull_provider.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "tests/integration/cri_env.h"
#include "tests/plugin/snapshot_test_tree.h"
#include "unpack/layer_unpacker.h"

namespace slipstream {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// The big layer: kRandomFiles incompressible files and kTextFiles text files, ~9 MiB in all.
constexpr int kRandomFiles = 48;
constexpr int kRandomFileSize = 128 << 10;
constexpr int kTextFiles = 64;
constexpr int kTextLines = 2000;
// Between the busybox layer's compressed size (~1 MiB) and the big layer's (~6 MiB): only the
// big layer gets a zTOC.
constexpr int64_t kMinLayerSize = 3 << 20;

using it::Tail;

std::string RandomBytes(std::mt19937_64& rng, int size) {
  std::string out(static_cast<size_t>(size), '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string TextFile(int n) {
  std::string out;
  for (int line = 0; line < kTextLines; ++line) {
    absl::StrAppend(&out, "file ", n, " line ", line, ": the quick brown fox jumps\n");
  }
  return out;
}

// The JSON of `slipstream status --json`.
nlohmann::json StatusJson(const std::string& socket) {
  auto r = RunSubprocess({SLIPSTREAM_CLI_PATH, "status", "--address", socket, "--json"},
                         {.timeout = absl::Seconds(30)});
  EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->stderr_data : r.status().ToString());
  if (!r.ok()) return nlohmann::json();
  auto doc = nlohmann::json::parse(r->stdout_data, nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(doc.is_object()) << r->stdout_data;
  return doc.is_object() ? doc : nlohmann::json();
}

// The lazy layer `name` of a status document (null when absent).
nlohmann::json LazyLayerOf(const nlohmann::json& status, const std::string& name) {
  if (!status.is_object() || !status.contains("lazyLayers")) return nlohmann::json();
  for (const nlohmann::json& l : status["lazyLayers"]) {
    if (l.value("name", "") == name) return l;
  }
  return nlohmann::json();
}

std::string RealPath(const std::string& path) {
  char resolved[PATH_MAX];
  return ::realpath(path.c_str(), resolved) == nullptr ? "" : std::string(resolved);
}

class LazyCriTest : public it::CriIntegrationTest {
 protected:
  LazyCriTest() : CriIntegrationTest("lazy-cri-it-", "default_mode = \"lazy\"\n") {}

  // The image under test: busybox with its applets, then the big layer under /big; then its
  // SOCI index.
  void PushImages() override {
    std::string l1 = BusyboxLayer("l1", {"sh", "cat", "sha256sum"});
    std::string big = tmp_->Join("big");
    ASSERT_TRUE(MakeDirs(big + "/big/bin").ok());
    ASSERT_TRUE(MakeDirs(big + "/big/text").ok());
    std::mt19937_64 rng(42);
    for (int i = 0; i < kRandomFiles; ++i) {
      std::string bytes = RandomBytes(rng, kRandomFileSize);
      random_sha256_.push_back(std::string(Sha256Of(bytes).hex()));
      ASSERT_TRUE(WriteFileAtomic(absl::StrCat(big, "/big/bin/r", i), bytes).ok());
    }
    for (int i = 0; i < kTextFiles; ++i) {
      ASSERT_TRUE(WriteFileAtomic(absl::StrCat(big, "/big/text/t", i), TextFile(i)).ok());
    }
    ref_ = absl::StrCat(registry_->host(), "/slipstream/lazy:1");
    image_ = Push({l1, big}, {}, {"/bin/sh"}, ref_, tmp_->Join("layout"));
    ASSERT_EQ(image_.layers.size(), 2u);
    ASSERT_LT(image_.layers[0].descriptor.size, kMinLayerSize);
    ASSERT_GT(image_.layers[1].descriptor.size, kMinLayerSize);
    ASSERT_NO_FATAL_FAILURE(PushSociIndex(ref_, kMinLayerSize));
  }

  // `cat /big/text/t<n>` inside a new container of the image; checks the whole text (a
  // mismatch reports sizes, not 100 KB of text).
  void ExpectText(int n) {
    SubprocessResult run = Cli({"run", ref_}, {"/bin/cat", absl::StrCat("/big/text/t", n)});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
    const std::string want = TextFile(n);
    EXPECT_TRUE(run.stdout_data == want)
        << "t" << n << ": got " << run.stdout_data.size() << " bytes, want " << want.size();
  }

  // `sha256sum FILE` inside a new container of the image; checks it against `want`.
  void ExpectSha256(const std::string& file, const std::string& want) {
    SubprocessResult run = Cli({"run", ref_}, {"/bin/sha256sum", file});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
    EXPECT_EQ(run.stdout_data, absl::StrCat(want, "  ", file, "\n"));
  }

  std::vector<std::string> random_sha256_;  // hex sha256 of /big/bin/r<i>
};

TEST_F(LazyCriTest, PullRunRestartAndRemove) {
  // 1. CRI PullImage: the big layer is mounted lazily, the busybox layer pulled.
  SubprocessResult pull = Cli({"pull", ref_});
  ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
  EXPECT_THAT(pull.stdout_data, HasSubstr(absl::StrCat("Pulled ", ref_, " as sha256:")));

  const std::vector<std::string> chains = ChainIds();
  ASSERT_EQ(chains.size(), 2u);
  std::string small_info = Ctr({"snapshots", "--snapshotter", "slipstream", "info", chains[0]});
  EXPECT_THAT(small_info, Not(HasSubstr("\"slipstream.io/mode\": \"lazy\""))) << small_info;
  std::string big_info = Ctr({"snapshots", "--snapshotter", "slipstream", "info", chains[1]});
  EXPECT_THAT(big_info, HasSubstr("\"slipstream.io/mode\": \"lazy\"")) << big_info;
  EXPECT_THAT(big_info, HasSubstr("Committed")) << big_info;

  // containerd fetched the config (and manifest) but not a single layer blob.
  ExpectNoLayerBlobsInContentStore();
  std::string log = Tail(tmp_->Join("slipstreamd.log"));
  EXPECT_THAT(log, HasSubstr("lazy pull: SOCI index found"));
  EXPECT_THAT(log, HasSubstr("lazy layer mounted"));

  // 2. Containers read files of the lazy layer: text and incompressible data.
  ExpectText(7);
  ExpectSha256("/big/bin/r13", random_sha256_[13]);

  // The metrics endpoint saw it: a lazy Prepare committed, spans fetched, and the lazy
  // layer either still in the FUSE mount (with its total) or, completed, on local disk
  // already (then no FUSE layer is left to count).
  testkit::PrometheusScrape m = Scrape();
  EXPECT_GE(m.Get("slipstream_prepare_seconds_count{mode=\"lazy\",outcome=\"committed\"}"), 2);
  EXPECT_GE(m.Get("slipstream_span_fetch_seconds_count"), 1);
  auto layers = [&](const char* state) {
    return m.Get(absl::StrCat("slipstream_lazy_layers{state=\"", state, "\"}"));
  };
  // The big layer, wherever completion has taken it; the small one was pulled locally.
  EXPECT_EQ(layers("remote") + layers("completing") + layers("local") +
                layers("local_fuse_in_use") + layers("stopped"),
            1);
  EXPECT_EQ(layers("stopped"), 0);
  const double in_fuse = 1 - layers("local");
  EXPECT_EQ(m.Get("slipstream_lazy_compressed_bytes{kind=\"total\"}"),
            in_fuse == 1 ? image_.layers[1].descriptor.size : 0);
  EXPECT_EQ(m.Get("slipstream_fuse_errors_total{op=\"read\",errno=\"EIO\"}"), -1);  // none

  // 3. A restarted slipstreamd serves the lazy layer again to a new pod.
  ASSERT_NO_FATAL_FAILURE(RestartSlipstreamd());
  EXPECT_THAT(Tail(tmp_->Join("slipstreamd.log")),
              HasSubstr("msg=\"lazy layers restored\" layers=1"));
  ExpectSha256(absl::StrCat("/big/bin/r", kRandomFiles - 1), random_sha256_[kRandomFiles - 1]);
  ExpectText(50);

  // 4. Removing the image lets containerd's GC remove its snapshots through slipstreamd;
  // only the pause image's layer stays.
  SubprocessResult rmi = Cli({"rmi", ref_});
  EXPECT_EQ(rmi.exit_code, 0) << rmi.stderr_data;
  EXPECT_THAT(Cli({"images"}).stdout_data, Not(HasSubstr(ref_)));
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    std::string snapshots = Snapshots();
    bool any = false;
    for (const std::string& chain_id : chains) any |= absl::StrContains(snapshots, chain_id);
    if (!any && SnapshotDirs() == 1) break;
    ASSERT_LT(absl::Now(), deadline) << "snapshots not garbage-collected:\n" << snapshots;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

// Background completion of the lazy layer ends with the layer on local disk: `slipstream
// status` says "local" with its directory, the FUSE mount no longer has it, the mounts of a
// new container resolve to the local directory (not the FUSE mount), the local copy equals
// the parallel-mode unpack of the same blob, containers read it, and a restarted slipstreamd
// keeps serving it from disk without mounting it through FUSE again.
TEST_F(LazyCriTest, CompletedLayerMovesToLocalDiskAndStaysAfterARestart) {
  SubprocessResult pull = Cli({"pull", ref_});
  ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
  const std::vector<std::string> chains = ChainIds();
  ASSERT_EQ(chains.size(), 2u);
  const std::string name = chains[1].substr(7);  // the LayerFs directory: the chainID hex

  // Bounded wait: background completion runs on its own (~6 MiB from a local registry).
  nlohmann::json layer;
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  while (true) {
    layer = LazyLayerOf(StatusJson(slip_socket_), name);
    if (layer.is_object() && layer.value("state", "") == "local") break;
    ASSERT_LT(absl::Now(), deadline) << "layer never became local: " << layer.dump();
    ASSERT_FALSE(layer.is_object() && layer.value("state", "") == "stopped") << layer.dump();
    absl::SleepFor(absl::Milliseconds(100));
  }
  const std::string local_dir = layer.value("localDir", "");
  ASSERT_TRUE(absl::StartsWith(local_dir, slip_root_ + "/snapshots/")) << local_dir;
  ASSERT_TRUE(absl::EndsWith(local_dir, "/local")) << local_dir;
  EXPECT_THAT(Tail(tmp_->Join("slipstreamd.log")),
              HasSubstr("lazy layer complete, now on local disk"));
  EXPECT_THAT(RunStatus().stdout_data, HasSubstr("local: " + local_dir));
  struct stat st;
  EXPECT_NE(::stat(absl::StrCat(slip_root_, "/fuse/", name).c_str(), &st), 0)
      << "the FUSE copy is still mounted";

  // The mounts containerd gets for a new container's rootfs on the image: the lowerdirs
  // resolve to local disk.
  Ctr({"snapshots", "--snapshotter", "slipstream", "prepare", "local-check", chains[1]});
  const std::string mounts =
      Ctr({"snapshots", "--snapshotter", "slipstream", "mounts", "/rootfs", "local-check"});
  const size_t at = mounts.find("lowerdir=");
  ASSERT_NE(at, std::string::npos) << mounts;
  const std::string lower = mounts.substr(at + 9, mounts.find_first_of(", \n", at) - at - 9);
  std::vector<std::string> lowers = absl::StrSplit(lower, ':');
  ASSERT_EQ(lowers.size(), 2u) << mounts;
  EXPECT_EQ(RealPath(lowers[0]), RealPath(local_dir)) << mounts;
  Ctr({"snapshots", "--snapshotter", "slipstream", "rm", "local-check"});

  // The local copy is the parallel-mode unpack of the same blob, file by file.
  const std::string reference = tmp_->Join("reference");
  auto unpacked = unpack::UnpackLayerFromFd(
      UniqueFd(::open(image_.layers[1].path.c_str(), O_RDONLY | O_CLOEXEC)).get(),
      image_.layers[1].descriptor.media_type, image_.layers[1].descriptor.digest,
      image_.layers[1].diff_id, reference);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  EXPECT_EQ(plugin::testing::DumpTree(local_dir), plugin::testing::DumpTree(reference));
  for (int i = 0; i < kRandomFiles; i += 5) {
    auto bytes = ReadFileToString(absl::StrCat(local_dir, "/big/bin/r", i));
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_EQ(Sha256Of(*bytes).hex(), random_sha256_[i]);
  }

  // New containers read it.
  ExpectSha256("/big/bin/r21", random_sha256_[21]);
  ExpectText(33);

  // A restart keeps it local: restored from disk, not added to the FUSE mount again.
  ASSERT_NO_FATAL_FAILURE(RestartSlipstreamd());
  EXPECT_THAT(Tail(tmp_->Join("slipstreamd.log")),
              HasSubstr("msg=\"lazy layers restored\" layers=1"));
  layer = LazyLayerOf(StatusJson(slip_socket_), name);
  EXPECT_EQ(layer.value("state", ""), "local") << layer.dump();
  EXPECT_EQ(layer.value("localDir", ""), local_dir) << layer.dump();
  EXPECT_EQ(layer.value("spansTotal", std::string("0")), "0") << "served through FUSE again";
  EXPECT_NE(::stat(absl::StrCat(slip_root_, "/fuse/", name).c_str(), &st), 0);
  ExpectSha256(absl::StrCat("/big/bin/r", kRandomFiles - 2), random_sha256_[kRandomFiles - 2]);

  // Removing the image removes the snapshot and its local copy.
  SubprocessResult rmi = Cli({"rmi", ref_});
  EXPECT_EQ(rmi.exit_code, 0) << rmi.stderr_data;
  const absl::Time gc_deadline = absl::Now() + absl::Seconds(60);
  while (::lstat(local_dir.c_str(), &st) == 0) {
    ASSERT_LT(absl::Now(), gc_deadline) << local_dir << " not removed";
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace
}  // namespace slipstream
