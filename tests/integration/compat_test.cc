// SPDX-License-Identifier: Apache-2.0
// The same CRI scenario on every containerd slipstream supports: bookworm's 1.6, trixie's 1.7
// and sid's 2.1 (the last two unpacked by scripts/fetch-containerd.sh), each configured by its
// deploy/containerd file exactly as shipped (cri_env.h only swaps the paths). On 2.1 the CRI
// pull goes through the transfer service; a second 2.1 run switches CRI back to its own pull
// path (disable_snapshot_annotations = false, as 2.0 needs). Every run: `slipstream cri pull`
// (parallel mode) leaves no layer blob in containerd's content store, the image's chainIDs are
// slipstream's committed snapshots, and `slipstream cri run` prints what the image holds.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cri_env.h"

namespace slipstream {
namespace {

using it::ContainerdVersion;
using it::Tail;
using ::testing::Contains;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

class CompatTest : public it::CriIntegrationTest,
                   public ::testing::WithParamInterface<ContainerdVersion> {
 protected:
  CompatTest() : CriIntegrationTest("compat-it-", "", GetParam()) {}

  // Two layers: busybox and its applet links; a file only the second layer has.
  void PushImages() override { PushHelloImage("compat:1", {"sh", "echo", "cat"}); }
};

TEST_P(CompatTest, CriPullRunsOnSlipstreamSnapshots) {
  SCOPED_TRACE(absl::StrCat("containerd ", release_.name));
  SubprocessResult pull = Cli({"pull", ref_, "--annotation", "slipstream.io/pull-mode=parallel"});
  ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
  EXPECT_THAT(pull.stdout_data, HasSubstr(absl::StrCat("Pulled ", ref_, " as sha256:")));
  // On 2.1 the pull took the path the config chose, as containerd's own log says.
  auto containerd_log = ReadFileToString(tmp_->Join("containerd.log"), 256 << 20);
  ASSERT_TRUE(containerd_log.ok()) << containerd_log.status();
  if (GetParam() == ContainerdVersion::k2_1) {
    EXPECT_THAT(*containerd_log, HasSubstr("Calling cri transfer service"));
  } else if (GetParam() == ContainerdVersion::k2_1LocalPull) {
    EXPECT_THAT(*containerd_log, HasSubstr("Falling back to local image pull mode"));
  }

  // containerd fetched the config (and manifest) but not a single layer blob.
  ExpectNoLayerBlobsInContentStore();
  // Both layers are committed snapshots named by their chainIDs, made by slipstream's engine
  // in one job (none was left to containerd).
  std::string snapshots = Snapshots();
  for (const std::string& chain_id : ChainIds()) {
    EXPECT_THAT(snapshots, ContainsRegex(absl::StrCat(chain_id, " +[^ ]* +Committed")))
        << snapshots;
  }
  EXPECT_EQ(SnapshotDirs(), 2);
  EXPECT_THAT(Tail(tmp_->Join("slipstreamd.log")),
              ContainsRegex("remote pull started\" image=[^ ]*/slipstream/compat:1@"
                            "sha256:[0-9a-f]+ layers=2 pulled=2"));

  // A pod (the pause image, pulled by slipstream too) and a container on those snapshots.
  SubprocessResult run = Cli({"run", ref_}, {"/bin/cat", "/etc/hello.txt"});
  EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
  EXPECT_EQ(run.stdout_data, "from layer two\n");
  run = Cli({"run", ref_}, {"/bin/sh", "-c", "echo out; exit 3"});
  EXPECT_EQ(run.exit_code, 3) << run.stderr_data;
  EXPECT_EQ(run.stdout_data, "out\n");
  // The pause image came through slipstream too: its one layer is a committed snapshot (its
  // chainID is its diff ID), its blob is not in containerd's content store.
  EXPECT_THAT(Snapshots(), ContainsRegex(absl::StrCat(pause_image_.layers[0].diff_id.str(),
                                                      " +[^ ]* +Committed")));
  EXPECT_THAT(Ctr({"content", "ls", "-q"}),
              Not(HasSubstr(pause_image_.layers[0].descriptor.digest.str())));
}

std::string VersionName(const ::testing::TestParamInfo<ContainerdVersion>& info) {
  std::string name = it::ReleaseOf(info.param).name;
  return absl::StrReplaceAll(name, {{".", "_"}, {" ", "_"}, {"(", ""}, {")", ""}});
}

INSTANTIATE_TEST_SUITE_P(Containerd, CompatTest,
                         ::testing::Values(ContainerdVersion::k1_6, ContainerdVersion::k1_7,
                                           ContainerdVersion::k2_1,
                                           ContainerdVersion::k2_1LocalPull),
                         VersionName);

}  // namespace
}  // namespace slipstream
