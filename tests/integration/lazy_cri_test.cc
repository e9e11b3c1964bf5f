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
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
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
#include "plugin/remote_pull_provider.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "tests/integration/cri_env.h"

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
    ASSERT_NO_FATAL_FAILURE(PushSociIndex());
  }

  // `slipstream index push IMAGE --v1`: the image's manifest digest stays what containerd
  // resolves, the index is found through the referrers fallback tag. An empty hosts dir: the
  // CLI talks plain HTTP to 127.0.0.1 by default.
  void PushSociIndex() {
    std::vector<std::string> argv = {
        SLIPSTREAM_CLI_PATH, "index", "push", ref_, "--v1", "--span-size", "65536",
        "--min-layer-size", absl::StrCat(kMinLayerSize), "--hosts-dir", tmp_->Join("cli-hosts"),
        "--docker-config", tmp_->Join("docker/config.json")};
    auto r = RunSubprocess(argv, {.timeout = absl::Seconds(120)});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << absl::StrJoin(argv, " ") << "\n"
                               << r->stdout_data << r->stderr_data;
    EXPECT_THAT(r->stdout_data, HasSubstr("pushed SOCI index")) << r->stdout_data;
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

  // The metrics endpoint saw it: a lazy Prepare committed, spans fetched, one lazy layer
  // whose background completion has a total.
  testkit::PrometheusScrape m = Scrape();
  EXPECT_GE(m.Get("slipstream_prepare_seconds_count{mode=\"lazy\",outcome=\"committed\"}"), 2);
  EXPECT_GE(m.Get("slipstream_span_fetch_seconds_count"), 1);
  EXPECT_EQ(m.Get("slipstream_lazy_layers{state=\"complete\"}") +
                m.Get("slipstream_lazy_layers{state=\"fetching\"}"),
            1);
  EXPECT_EQ(m.Get("slipstream_lazy_compressed_bytes{kind=\"total\"}"),
            image_.layers[1].descriptor.size);
  EXPECT_GT(m.Get("slipstream_lazy_compressed_bytes{kind=\"fetched\"}"), 0);
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

}  // namespace
}  // namespace slipstream
