// SPDX-License-Identifier: Apache-2.0
// SIGKILL of slipstreamd during lazy-mode CRI pulls (`default_mode = "lazy"`): each case's
// image has a busybox layer (pulled by the parallel engine) and a 5 MiB layer with a zTOC in
// a v1 SOCI index (pushed by `slipstream index push`), mounted through FUSE and completed in
// the background. Kills:
//   - timed: SIGKILL after a random delay (seeded, seed printed) within the time the pull
//     plus background completion takes;
//   - named crash points this mode passes: the chunk cache's write (lazy reads and
//     background completion store spans there) and the commit of a staged layer.
// After each kill: a clean slipstreamd (resuming the FUSE mount kept by
// slipstream-fuse-holder), the same image pulled again through CRI, every committed snapshot
// of every image so far compared with its layer tar file by file (the lazy one read through
// FUSE), no temp space left, and `ctr run` printing the image's file.
// SLIPSTREAM_CHAOS_LONG=1 runs 15 timed kills instead of 3.
#include <signal.h>

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/chaos/kill_fixture.h"

namespace slipstream::chaos {
namespace {

using ::testing::HasSubstr;

constexpr int kBigLayerBytes = 5 << 20;
constexpr int64_t kMinLayerSize = 3 << 20;  // between busybox (~1 MiB) and the big layer

class KillLazyTest : public KillTest {
 protected:
  KillLazyTest() : KillTest("chaos-kill-lazy-", "default_mode = \"lazy\"\n") {}

  // A case image with a SOCI index for its big layer.
  CaseImage PushLazyCase(const std::string& name) {
    CaseImage c = PushCase(name, kBigLayerBytes);
    EXPECT_LT(c.image.layers[0].descriptor.size, kMinLayerSize);
    EXPECT_GT(c.image.layers[1].descriptor.size, kMinLayerSize);
    EXPECT_NO_FATAL_FAILURE(PushSociIndex(c.ref, kMinLayerSize));
    return c;
  }

  // The image's big layer is lazy (a FUSE snapshot), so the case exercised lazy mode.
  void ExpectLazy(const CaseImage& c) {
    std::vector<Digest> diff_ids;
    for (const testkit::BuiltLayer& l : c.image.layers) diff_ids.push_back(l.diff_id);
    std::string info = Ctr({"snapshots", "--snapshotter", "slipstream", "info",
                            plugin::ChainIds(diff_ids).back().str()});
    EXPECT_THAT(info, HasSubstr("\"slipstream.io/mode\": \"lazy\"")) << info;
  }
};

TEST_F(KillLazyTest, CrashPointsDuringLazyPull) {
  std::vector<CaseImage> images;
  int n = 0;
  for (const char* spec : {"chunk_cache.write.before_rename:3",
                           "snapshot.commit_staged.after_rename:2"}) {
    SCOPED_TRACE(spec);
    images.push_back(PushLazyCase(absl::StrCat("lazy", n++)));
    CaseImage& c = images.back();
    StartArmed(spec);
    ASSERT_FALSE(HasFatalFailure());
    const int64_t log_at = LogSize();
    const int code = Cli({"pull", c.ref}).exit_code;
    // The chunk cache point may come from background completion, after the pull returned.
    EXPECT_TRUE(WaitForDeath(absl::Seconds(60))) << "slipstreamd did not die at " << spec;
    const std::string point(spec, std::string(spec).find(':'));
    EXPECT_THAT(LogSince(log_at), HasSubstr(absl::StrCat("crash point ", point, " hit")));
    ASSERT_NO_FATAL_FAILURE(Recover());
    ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
    ExpectLazy(c);
    ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
    std::cout << "[chaos] point=" << spec << " during=lazy cri pull trigger_exit=" << code
              << (HasFailure() ? " FAILED" : " recovered, snapshots verified, no temps")
              << std::endl;
    ASSERT_FALSE(HasFailure());
  }
}

TEST_F(KillLazyTest, RandomKillsDuringLazyPullAndBackgroundCompletion) {
  std::mt19937_64 rng(ChaosSeed("RandomKillsDuringLazyPullAndBackgroundCompletion"));
  std::vector<CaseImage> images;
  // The window: twice a lazy pull, so about half the kills land while the pull runs and
  // half after it answered, while background completion fetches the rest of the big layer.
  images.push_back(PushLazyCase("calibrate"));
  ASSERT_NO_FATAL_FAILURE(PullAndVerify(images.back()));
  const absl::Duration window = 2 * last_pull_;
  ExpectLazy(images.back());
  const int kills = LongRun() ? 15 : 3;
  for (int k = 0; k < kills; ++k) {
    images.push_back(PushLazyCase(absl::StrCat("timed", k)));
    CaseImage& c = images.back();
    const absl::Duration delay = std::uniform_real_distribution<double>(0, 1)(rng) * window;
    SCOPED_TRACE(absl::StrCat("kill ", k, " after ", absl::FormatDuration(delay)));
    const int pull_exit = PullKilledAfter([&] { return Cli({"pull", c.ref}).exit_code; }, delay);
    ASSERT_NO_FATAL_FAILURE(Recover());
    ASSERT_NO_FATAL_FAILURE(PullAndVerify(c));
    ExpectLazy(c);
    ASSERT_NO_FATAL_FAILURE(VerifyAll(images));
    std::cout << "[chaos] lazy timed kill " << k << " after " << absl::FormatDuration(delay)
              << " of a " << absl::FormatDuration(window) << " window: first pull exit="
              << pull_exit << (HasFailure() ? " FAILED" : " recovered, verified") << std::endl;
  }
}

}  // namespace
}  // namespace slipstream::chaos
