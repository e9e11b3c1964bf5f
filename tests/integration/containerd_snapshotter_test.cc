// SPDX-License-Identifier: Apache-2.0
// The real containerd 1.6 (Debian) with slipstreamd as its proxy snapshotter: `ctr image pull
// --snapshotter slipstream` (no CRI labels: plain overlay behaviour), `ctr run` prints what
// the image's busybox echoes, a slipstreamd restart keeps the snapshots usable, and removing
// the image garbage-collects its snapshots.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "gtest/gtest.h"
#include "tests/integration/cri_env.h"

namespace slipstream {
namespace {

// The shared CRI bench (registry, slipstreamd, containerd 1.6); this test drives containerd
// through `ctr` only, so no CRI label reaches slipstreamd.
class ContainerdSnapshotterTest : public it::CriIntegrationTest {
 protected:
  ContainerdSnapshotterTest() : CriIntegrationTest("containerd-it-", "") {}

  // Two layers: busybox with the applet links, then a file that only the second layer has.
  void PushImages() override { PushHelloImage("busybox:1", {"sh", "echo", "cat", "ls"}); }

  // Names of the snapshots containerd has in namespace k8s.io on slipstream.
  std::vector<std::string> SnapshotLines() {
    std::vector<std::string> lines;
    for (absl::string_view line : absl::StrSplit(Snapshots(), '\n', absl::SkipEmpty())) {
      if (!absl::StartsWith(line, "KEY")) lines.emplace_back(line);
    }
    return lines;
  }
};

TEST_F(ContainerdSnapshotterTest, PullRunRestartAndRemove) {
  Ctr({"image", "pull", "--plain-http", "--snapshotter", "slipstream", ref_});
  // Two committed layers, each a directory in slipstream's root.
  EXPECT_EQ(SnapshotLines().size(), 2u);
  EXPECT_EQ(SnapshotDirs(), 2);

  std::string out = Ctr({"run", "--snapshotter", "slipstream", "--rm", ref_, "c1",
                         "/bin/echo", "hello"});
  EXPECT_EQ(out, "hello\n");
  out = Ctr({"run", "--snapshotter", "slipstream", "--rm", ref_, "c2", "/bin/cat",
             "/etc/hello.txt"});
  EXPECT_EQ(out, "from layer two\n");
  // --rm removed the container's active snapshot again.
  EXPECT_EQ(SnapshotLines().size(), 2u);

  // A restarted slipstreamd serves the same snapshots.
  ASSERT_NO_FATAL_FAILURE(RestartSlipstreamd());
  out = Ctr({"run", "--snapshotter", "slipstream", "--rm", ref_, "c3", "/bin/echo", "again"});
  EXPECT_EQ(out, "again\n");

  // Removing the image lets containerd's GC remove every snapshot through slipstreamd.
  // In k8s.io the CRI plugin added the image ID (its config digest) as a second name.
  Ctr({"image", "rm", "--sync", ref_, image_.config_digest.str()});
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!SnapshotLines().empty() || SnapshotDirs() != 0) {
    ASSERT_LT(absl::Now(), deadline) << "snapshots not garbage-collected: "
                                     << absl::StrJoin(SnapshotLines(), "; ");
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace
}  // namespace slipstream
