// SPDX-License-Identifier: Apache-2.0
// The kill tests' bench: the shared CRI fixture (registry, containerd 1.6 CRI, slipstreamd)
// plus one fresh image per kill case, so that every case pulls layers nobody has yet without
// removing anything in between, and the checks of kill_env.h over every image pulled so far.
#pragma once

#include <signal.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/remote_pull_provider.h"
#include "tests/chaos/kill_env.h"
#include "tests/integration/cri_env.h"

namespace slipstream::chaos {

// One image of a kill case: busybox (with a marker file, so its layer is the case's own) and
// a layer with /etc/hello.txt and `data_bytes` of random data; `expected` holds each layer's
// fingerprint from its tar.
struct CaseImage {
  std::string ref;
  std::string hello;  // the content of /etc/hello.txt
  testkit::BuiltImage image;
  std::vector<TreeFingerprint> expected;
  bool pulled = false;  // the last recovery pulled it: its snapshots are checked from now on
};

class KillTest : public it::CriIntegrationTest {
 protected:
  explicit KillTest(std::string prefix, std::string config = "")
      : CriIntegrationTest(std::move(prefix), std::move(config)) {}

  void PushImages() override {}

  // Pushes the image of case `name` (a unique word). With `base` (an earlier case's name)
  // its first layer is that case's, so both images share it.
  CaseImage PushCase(const std::string& name, int data_bytes, const std::string& base = "") {
    CaseImage c;
    std::string l1 = tmp_->Join(absl::StrCat("bb-", base));
    if (base.empty()) {
      l1 = BusyboxLayer(absl::StrCat("bb-", name), {"sh", "cat", "sha256sum"});
      EXPECT_TRUE(MakeDirs(l1 + "/etc").ok());
      EXPECT_TRUE(WriteFileAtomic(l1 + "/etc/case", name + "\n").ok());
    }
    std::string l2 = tmp_->Join(absl::StrCat("data-", name));
    EXPECT_TRUE(MakeDirs(l2 + "/etc").ok());
    EXPECT_TRUE(MakeDirs(l2 + "/data/sub").ok());
    c.hello = absl::StrCat("hello from ", name, "\n");
    EXPECT_TRUE(WriteFileAtomic(l2 + "/etc/hello.txt", c.hello).ok());
    std::mt19937_64 rng(std::hash<std::string>()(name));
    std::string bytes(static_cast<size_t>(data_bytes), '\0');
    for (char& ch : bytes) ch = static_cast<char>(rng() & 0xff);
    EXPECT_TRUE(WriteFileAtomic(l2 + "/data/random.bin", bytes).ok());
    EXPECT_TRUE(WriteFileAtomic(l2 + "/data/sub/text", std::string(100000, 'x'), 0600).ok());
    EXPECT_EQ(::symlink("../etc/hello.txt", (l2 + "/data/link").c_str()), 0);
    c.ref = absl::StrCat(registry_->host(), "/chaos/", name, ":1");
    c.image = Push({l1, l2}, {}, {"/bin/sh"}, c.ref, tmp_->Join(absl::StrCat("layout-", name)));
    for (size_t i = 0; i < c.image.layers.size(); ++i) {
      c.expected.push_back(
          ExpectedLayer(c.image.layers[i], tmp_->Join(absl::StrCat("expect-", name, "-", i))));
    }
    return c;
  }

  int64_t LogSize() {
    struct stat st;
    return ::stat(tmp_->Join("slipstreamd.log").c_str(), &st) == 0 ? st.st_size : 0;
  }
  std::string LogSince(int64_t offset) {
    auto text = ReadFileToString(tmp_->Join("slipstreamd.log"), 256 << 20);
    if (!text.ok() || static_cast<int64_t>(text->size()) < offset) return "";
    return text->substr(static_cast<size_t>(offset));
  }

  // Restarts slipstreamd with SLIPSTREAM_CRASH_AT=`spec`.
  void StartArmed(const std::string& spec) {
    slipstreamd_env_ = {{"SLIPSTREAM_CRASH_AT", spec}};
    ASSERT_NO_FATAL_FAILURE(RestartSlipstreamd());
    slipstreamd_env_.clear();
  }

  // Waits (up to `wait`) for slipstreamd to die; true when it was killed by SIGKILL. It is
  // SIGKILLed at the deadline otherwise (and false returned).
  bool WaitForDeath(absl::Duration wait) {
    absl::Time deadline = absl::Now() + wait;
    while (slipstreamd_->Running() && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    const bool died = !slipstreamd_->Running();
    slipstreamd_->Stop(SIGKILL);
    slipstreamd_.reset();
    return died;
  }

  // Runs `pull` (returning the CLI's exit code) on a thread and SIGKILLs slipstreamd `delay`
  // after it started — a random moment, not a synchronisation; returns the pull's exit code
  // once it ended and slipstreamd is gone (expected to die of the SIGKILL).
  int PullKilledAfter(const std::function<int()>& pull, absl::Duration delay) {
    int exit_code = -2;
    std::thread puller([&] { exit_code = pull(); });
    absl::SleepFor(delay);
    ::kill(slipstreamd_->pid(), SIGKILL);
    puller.join();
    EXPECT_TRUE(WaitForDeath(absl::Seconds(10)));
    return exit_code;
  }

  // Starts a clean slipstreamd after a kill and waits for containerd to redial it.
  void Recover() {
    slipstreamd_.reset();
    ASSERT_NO_FATAL_FAILURE(StartSlipstreamd());
    ASSERT_NO_FATAL_FAILURE(WaitForContainerd());
  }

  // The directory holding committed snapshot `chain_id`'s files, through a view of it.
  std::string SnapshotContentDir(const std::string& chain_id, const std::string& view_key) {
    std::string out = Ctr({"snapshots", "--snapshotter", "slipstream", "view", "--target",
                           "/chaos-target", view_key, chain_id});
    // "mount -t <type> <source> <target> -o <options>"
    std::vector<std::string> words = absl::StrSplit(out, absl::ByAnyChar(" \n"), absl::SkipEmpty());
    if (words.size() < 7 || words[0] != "mount") {
      ADD_FAILURE() << "unexpected view output: " << out;
      return "";
    }
    if (words[2] == "bind") return words[3];
    for (absl::string_view opt : absl::StrSplit(words[6], ',')) {
      if (absl::ConsumePrefix(&opt, "lowerdir=")) {
        return std::string(opt.substr(0, opt.find(':')));
      }
    }
    ADD_FAILURE() << "no lowerdir in: " << out;
    return "";
  }

  // Pulls `c` through CRI, checks every committed snapshot of it against its layer tars,
  // then runs it with ctr. Marks it pulled.
  void PullAndVerify(CaseImage& c) {
    const absl::Time start = absl::Now();
    SubprocessResult pull = Cli({"pull", c.ref});
    last_pull_ = absl::Now() - start;
    ASSERT_EQ(pull.exit_code, 0) << c.ref << "\n" << pull.stdout_data << pull.stderr_data;
    c.pulled = true;
    ASSERT_NO_FATAL_FAILURE(VerifySnapshots(c));
    ExpectRunPrintsHello(c);
  }

  // `ctr run` of the image prints /etc/hello.txt, then an end marker. The marker tells a
  // file read wrong (marker there, content not) from ctr losing a short-lived task's output
  // altogether (seen once in 40 lazy runs: nothing printed, exit 0); only the latter is
  // run again, once, and reported.
  void ExpectRunPrintsHello(const CaseImage& c) {
    std::string out;
    for (int attempt = 0; attempt < 2; ++attempt) {
      out = Ctr({"run", "--rm", "--snapshotter", "slipstream", c.ref,
                 absl::StrCat("chaos-run-", ++runs_), "/bin/sh", "-c",
                 "cat /etc/hello.txt; echo END"});
      if (!out.empty()) break;
      std::cout << "[chaos] ctr run of " << c.ref << " printed nothing; running it again"
                << std::endl;
    }
    EXPECT_EQ(out, c.hello + "END\n") << c.ref;
  }

  void VerifySnapshots(const CaseImage& c) {
    std::vector<Digest> diff_ids;
    for (const testkit::BuiltLayer& l : c.image.layers) diff_ids.push_back(l.diff_id);
    std::vector<Digest> chains = plugin::ChainIds(diff_ids);
    for (size_t i = 0; i < chains.size(); ++i) {
      const std::string key = absl::StrCat("chaos-view-", ++views_);
      std::string dir = SnapshotContentDir(chains[i].str(), key);
      ASSERT_FALSE(dir.empty());
      TreeFingerprint got = Fingerprint(dir);
      EXPECT_EQ(Diff(c.expected[i], got), "")
          << c.ref << " layer " << i << " (" << chains[i].str() << ") in " << dir;
      // containerd's GC may have collected the view already (no lease holds it).
      (void)RunSubprocess({ctr_, "-a", containerd_socket_, "-n", "k8s.io", "snapshots",
                           "--snapshotter", "slipstream", "rm", key},
                          {.timeout = absl::Seconds(60)});
    }
  }

  // Every image pulled so far still verifies, and no temp space is left.
  void VerifyAll(std::vector<CaseImage>& images) {
    for (CaseImage& c : images) {
      if (c.pulled) {
        ASSERT_NO_FATAL_FAILURE(VerifySnapshots(c));
      }
    }
    ExpectNoTemps();
  }

  // containerd removes a snapshot from the backend in its garbage collector, after `ctr
  // snapshots rm` has returned, so a removal (snapshots/rm-*) may still be under way: wait for
  // those for a bounded time. Any other leftover fails at once.
  void ExpectNoTemps() {
    std::vector<std::string> temps = LeftoverTemps(slip_root_, slipstreamd_->pid());
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!temps.empty() && absl::Now() < deadline &&
           absl::c_all_of(temps, [](const std::string& t) {
             return absl::StartsWith(t, "snapshots/rm-");
           })) {
      absl::SleepFor(absl::Milliseconds(50));
      temps = LeftoverTemps(slip_root_, slipstreamd_->pid());
    }
    EXPECT_THAT(temps, ::testing::IsEmpty());
    EXPECT_THAT(TempFds(slipstreamd_->pid()), ::testing::IsEmpty());
  }

  absl::Duration last_pull_;  // how long PullAndVerify's `cri pull` took
  int runs_ = 0;
  int views_ = 0;
};

}  // namespace slipstream::chaos
