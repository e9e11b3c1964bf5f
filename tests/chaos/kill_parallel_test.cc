// SPDX-License-Identifier: Apache-2.0
// SIGKILL of slipstreamd during parallel-mode CRI pulls (containerd 1.6 CRI, a local
// registry, runc). Two kinds of kill:
//   - named crash points (common/crash_point.h): slipstreamd starts with
//     SLIPSTREAM_CRASH_AT=<point>[:<nth>] and kills itself there; the test checks its log
//     line, so a point that is never reached fails the test;
//   - timed kills: SIGKILL from the test after a random delay (seeded, seed printed) within
//     the time a pull takes.
// After each kill a clean slipstreamd starts, the same image is pulled again through CRI,
// and then every committed snapshot of every image pulled so far must match its layer tar
// file by file, no temp space may be left (kill_env.h names what is looked for), and `ctr
// run` of the image prints the expected output. SLIPSTREAM_CHAOS_LONG=1 runs 25 timed kills
// instead of 4.
#include <signal.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/chaos/kill_fixture.h"

namespace slipstream::chaos {
namespace {

using ::testing::HasSubstr;

class KillParallelTest : public KillTest {
 protected:
  KillParallelTest() : KillTest("chaos-kill-parallel-") {}

  // Arms `spec`, runs `trigger`, and expects slipstreamd to die at that point; then starts a
  // clean slipstreamd. Returns the trigger's exit code (for the report line).
  int KillAt(const std::string& spec, const std::function<int()>& trigger) {
    StartArmed(spec);
    if (HasFatalFailure()) return -1;
    const int64_t log_at = LogSize();
    const int exit_code = trigger();
    EXPECT_TRUE(WaitForDeath(absl::Seconds(30))) << "slipstreamd did not die at " << spec;
    const std::string point = spec.substr(0, spec.find(':'));
    EXPECT_THAT(LogSince(log_at), HasSubstr(absl::StrCat("crash point ", point, " hit")));
    Recover();
    return exit_code;
  }

  int PullExit(const std::string& ref) { return Cli({"pull", ref}).exit_code; }

  void Report(const std::string& point, const std::string& trigger, int exit_code) {
    std::cout << "[chaos] point=" << point << " during=" << trigger
              << " trigger_exit=" << exit_code << " outcome="
              << (HasFailure() ? "FAILED" : "recovered, snapshots verified, no temps")
              << std::endl;
  }
};

// Points on the pull path, in the order a pull passes them.
const char* const kPullPoints[] = {
    "remote.resolve.staged",                 // staging dirs made, job not started
    "pull.tempfile.created",                 // blob temp file exists, not yet unlinked
    "pull.chunk.written:2",                  // a chunk written to the temp file
    "pull.layer.unpack_half",                // the layer's tree half written (*.partial-*)
    "pull.layer.verified",                   // digest and diffID verified, dir renamed
    "snapshot.commit_staged.before_rename",  // row inserted, transaction open
    "snapshot.commit_staged.after_rename",   // dir in place, row not committed
    "metadata.tx.before_commit",             // the first commit of the pull
    "metadata.tx.after_commit",              // the first layer committed
    "snapshot.commit_staged.after_commit",   // the same, seen from the snapshotter
    "remote.layer.answered",                 // containerd told AlreadyExists for layer 1
    "remote.layer.answered:2",               // ... for the last layer
};

TEST_F(KillParallelTest, CrashPointsDuringPull) {
  std::vector<CaseImage> images;
  int n = 0;
  for (const char* spec : kPullPoints) {
    SCOPED_TRACE(spec);
    images.push_back(PushCase(absl::StrCat("pull", n++), 512 << 10));
    CaseImage& c = images.back();
    const int code = KillAt(spec, [&] { return PullExit(c.ref); });
    ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
    ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
    Report(spec, "cri pull", code);
    ASSERT_FALSE(HasFailure());
  }
}

TEST_F(KillParallelTest, CrashPointsAroundPulledImages) {
  std::vector<CaseImage> images;
  images.push_back(PushCase("base", 256 << 10));
  ASSERT_NO_FATAL_FAILURE(PullAndVerify(images[0]));

  // An image on the pulled image's first layer: only its own layer is pulled (containerd
  // skips the committed base) and the crash comes when that one is answered.
  {
    SCOPED_TRACE("shared base");
    images.push_back(PushCase("shared", 256 << 10, "base"));
    CaseImage& c = images.back();
    const int code = KillAt("remote.layer.answered", [&] { return PullExit(c.ref); });
    ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
    ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
    Report("remote.layer.answered (own layer on a shared base)", "cri pull", code);
  }

  // A container's rootfs: an active snapshot on top of the image's layers.
  for (const char* spec : {"snapshot.prepare.after_rename", "metadata.tx.after_commit"}) {
    SCOPED_TRACE(spec);
    CaseImage& c = images[0];
    const int code = KillAt(spec, [&] {
      auto r = RunSubprocess({ctr_, "-a", containerd_socket_, "-n", "k8s.io", "run", "--rm",
                              "--snapshotter", "slipstream", c.ref,
                              absl::StrCat("chaos-crash-run-", ++runs_), "/bin/true"},
                             {.timeout = absl::Seconds(120)});
      return r.ok() ? r->exit_code : -1;
    });
    ExpectRunPrintsHello(c);
    ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
    Report(spec, "ctr run", code);
  }

  // Removal by containerd's garbage collector after `cri rmi`; then the image comes back.
  for (const char* spec : {"snapshot.remove.after_commit", "snapshot.remove.renamed"}) {
    SCOPED_TRACE(spec);
    images.push_back(PushCase(absl::StrCat("rm", images.size()), 256 << 10));
    CaseImage& c = images.back();
    ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
    const int code = KillAt(spec, [&] { return Cli({"rmi", c.ref}).exit_code; });
    ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
    ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
    Report(spec, "cri rmi + gc", code);
  }
}

// A crash while the next daemon removes the first crash's leftovers at startup.
TEST_F(KillParallelTest, CrashDuringRecovery) {
  std::vector<CaseImage> images;
  images.push_back(PushCase("recover", 512 << 10));
  CaseImage& c = images.back();
  StartArmed("pull.layer.unpack_half");
  ASSERT_FALSE(HasFatalFailure());
  (void)PullExit(c.ref);
  ASSERT_TRUE(WaitForDeath(absl::Seconds(30)));
  // The staging dir (with the half-written tree) is still there for Open() to remove.
  std::vector<std::string> temps = LeftoverTemps(slip_root_, 0);
  EXPECT_THAT(temps, ::testing::Contains(::testing::StartsWith("snapshots/new-")));
  const int64_t log_at = LogSize();
  slipstreamd_env_ = {{"SLIPSTREAM_CRASH_AT", "snapshot.open.orphans_found"}};
  auto child = ChildProcess::Start({SLIPSTREAMD_PATH, "--config", tmp_->Join("slipstreamd.toml"),
                                    "--root", slip_root_, "--address", slip_socket_,
                                    "--log-level", "debug"},
                                   tmp_->Join("slipstreamd.log"), slipstreamd_env_);
  slipstreamd_env_.clear();
  ASSERT_TRUE(child.ok()) << child.status();
  slipstreamd_ = std::make_unique<ChildProcess>(std::move(*child));
  ASSERT_TRUE(WaitForDeath(absl::Seconds(30)));
  EXPECT_THAT(LogSince(log_at), HasSubstr("crash point snapshot.open.orphans_found hit 1"));
  ASSERT_NO_FATAL_FAILURE(Recover());
  ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
  ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
  Report("snapshot.open.orphans_found", "startup after a crash", 0);
}

TEST_F(KillParallelTest, RandomKillsDuringPull) {
  std::mt19937_64 rng(ChaosSeed("RandomKillsDuringPull"));
  constexpr int kDataBytes = 4 << 20;
  std::vector<CaseImage> images;
  // How long a pull of such an image takes here: the kills land within that window.
  images.push_back(PushCase("calibrate", kDataBytes));
  ASSERT_NO_FATAL_FAILURE(PullAndVerify(images.back()));
  const absl::Duration window = last_pull_;
  const int kills = LongRun() ? 25 : 4;
  for (int k = 0; k < kills; ++k) {
    images.push_back(PushCase(absl::StrCat("timed", k), kDataBytes));
    CaseImage& c = images.back();
    const absl::Duration delay =
        std::uniform_real_distribution<double>(0, 1)(rng) * window;
    SCOPED_TRACE(absl::StrCat("kill ", k, " after ", absl::FormatDuration(delay)));
    const int pull_exit = PullKilledAfter([&] { return PullExit(c.ref); }, delay);
    ASSERT_NO_FATAL_FAILURE(Recover());
    ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
    ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
    std::cout << "[chaos] timed kill " << k << " after " << absl::FormatDuration(delay)
              << " of a " << absl::FormatDuration(window) << " pull: first pull exit="
              << pull_exit << (HasFailure() ? " FAILED" : " recovered, verified") << std::endl;
  }
}

}  // namespace
}  // namespace slipstream::chaos
