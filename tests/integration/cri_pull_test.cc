// SPDX-License-Identifier: Apache-2.0
// The whole CRI path, as kubelet drives it: the real containerd 1.6 with slipstreamd as its
// proxy snapshotter and the CRI plugin on `snapshotter = "slipstream"` with snapshot
// annotations. `slipstream cri pull` makes slipstream pull the image itself (containerd's
// content store keeps no layer blob), `slipstream cri run` and `ctr run` run it, a slipstreamd
// restart keeps it usable, and `slipstream cri rmi` lets containerd's GC remove its snapshots
// from slipstream. Every image, including the sandbox (pause) image, comes from a local
// registry on 127.0.0.1 over plain HTTP.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
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
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;


using it::Tail;

class CriPullTest : public it::CriIntegrationTest {
 protected:
  CriPullTest() : CriIntegrationTest("cri-it-", "") {}

  // Two layers: busybox and its applet links; a file only the second layer has.
  void PushImages() override { PushHelloImage("busybox:1", {"sh", "echo", "cat", "ls"}); }
};

TEST_F(CriPullTest, PullRunRestartAndRemove) {
  // 1. CRI PullImage: slipstream takes the pull over.
  SubprocessResult pull = Cli({"pull", ref_, "--annotation", "slipstream.io/pull-mode=parallel"});
  ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
  EXPECT_THAT(pull.stdout_data, HasSubstr(absl::StrCat("Pulled ", ref_, " as sha256:")));

  SubprocessResult images = Cli({"images"});
  EXPECT_EQ(images.exit_code, 0) << images.stderr_data;
  EXPECT_THAT(images.stdout_data, HasSubstr(ref_));

  // containerd fetched the config (and manifest) but not a single layer blob.
  ExpectNoLayerBlobsInContentStore();
  // Both layers are committed snapshots named by their chainIDs, made by slipstream's engine.
  std::string snapshots = Snapshots();
  for (const std::string& chain_id : ChainIds()) {
    EXPECT_THAT(snapshots, HasSubstr(chain_id)) << snapshots;
  }
  EXPECT_EQ(SnapshotDirs(), 2);
  std::string log = Tail(tmp_->Join("slipstreamd.log"));
  // One engine job pulled both layers (none was left to containerd).
  EXPECT_THAT(log, ContainsRegex("remote pull started\" image=[^ ]*/slipstream/busybox:1@"
                                 "sha256:[0-9a-f]+ layers=2 pulled=2"));

  // The metrics endpoint saw it: one parallel pull job, both layers' Prepares committed, and
  // at least the layers' bytes came from the registry.
  testkit::PrometheusScrape m = Scrape();
  EXPECT_EQ(m.Get("slipstream_parallel_pull_seconds_count{outcome=\"ok\"}"), 1);
  EXPECT_EQ(m.Get("slipstream_prepare_seconds_count{mode=\"parallel\",outcome=\"committed\"}"),
            2);
  EXPECT_EQ(m.Get("slipstream_parallel_bytes_total{kind=\"compressed\"}"),
            image_.layers[0].descriptor.size + image_.layers[1].descriptor.size);
  EXPECT_GE(m.Get("slipstream_registry_bytes_total"),
            image_.layers[0].descriptor.size + image_.layers[1].descriptor.size);
  EXPECT_GE(m.Get("slipstream_registry_requests_total{outcome=\"2xx\"}"), 3);
  EXPECT_EQ(m.Get("slipstream_lazy_layers{state=\"remote\"}"), -1);  // not in lazy mode
  // `slipstream status` names the image and its layers' state.
  SubprocessResult status = RunStatus();
  EXPECT_THAT(status.stdout_data,
              ContainsRegex("image [^ ]*/slipstream/busybox:1 \\(sha256:[0-9a-f]+\\): done, "
                            "2/2 layers pulled, 0 already present"))
      << status.stdout_data;

  // 2. Run through CRI: a pod (the pause image, also pulled by slipstream) and a container.
  SubprocessResult run = Cli({"run", ref_}, {"/bin/cat", "/etc/hello.txt"});
  EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
  EXPECT_EQ(run.stdout_data, "from layer two\n");
  run = Cli({"run", ref_}, {"/bin/sh", "-c", "echo out; echo err >&2; exit 7"});
  EXPECT_EQ(run.exit_code, 7);
  EXPECT_EQ(run.stdout_data, "out\n");
  EXPECT_EQ(run.stderr_data, "err\n");

  // 3. The same image through ctr on slipstream's snapshots.
  EXPECT_EQ(Ctr({"run", "--rm", "--snapshotter", "slipstream", ref_, "ctr-run", "/bin/cat",
                 "/etc/hello.txt"}),
            "from layer two\n");

  // 4. A restarted slipstreamd serves the same snapshots to a new pod.
  ASSERT_NO_FATAL_FAILURE(RestartSlipstreamd());
  run = Cli({"run", ref_}, {"/bin/echo", "again"});
  EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
  EXPECT_EQ(run.stdout_data, "again\n");

  // 5. Removing the image lets containerd's GC remove its snapshots through slipstreamd;
  // only the pause image's layer stays.
  SubprocessResult rmi = Cli({"rmi", ref_});
  EXPECT_EQ(rmi.exit_code, 0) << rmi.stderr_data;
  EXPECT_EQ(rmi.stdout_data, absl::StrCat("Deleted: ", ref_, "\n"));
  EXPECT_THAT(Cli({"images"}).stdout_data, Not(HasSubstr(ref_)));
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    snapshots = Snapshots();
    bool any = false;
    for (const std::string& chain_id : ChainIds()) any |= absl::StrContains(snapshots, chain_id);
    if (!any && SnapshotDirs() == 1) break;
    ASSERT_LT(absl::Now(), deadline) << "snapshots not garbage-collected:\n" << snapshots;
    absl::SleepFor(absl::Milliseconds(200));
  }
  // Removing it again is NotFound for the CLI (the CRI call itself is idempotent).
  rmi = Cli({"rmi", ref_});
  EXPECT_EQ(rmi.exit_code, 1);
  EXPECT_THAT(rmi.stderr_data, HasSubstr("not found"));
}

}  // namespace
}  // namespace slipstream
