// SPDX-License-Identifier: Apache-2.0
// Registry faults during parallel-mode CRI pulls: containerd 1.6's CRI plugin pulls through
// slipstreamd (default_mode = "parallel", 256 KiB Range requests) while a FaultProxy in front
// of the registry drops, stalls, truncates, refuses (5xx, 429 + Retry-After), corrupts or
// throttles the Range GETs of the image's big layer. Every case pulls an image of its own
// (a marker file makes its layers unique) and ends in one of two outcomes, asserted per case:
//   - success after retry: both layers committed, every file hashes right;
//   - a clean error within a time bound that names the layer blob.
// In both: no committed snapshot is incomplete or wrong, no staging dir or pull temp file is
// left, and once the faults are gone the same pull succeeds with every file right.
#include <cstdint>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testkit/fault_proxy.h"
#include "tests/chaos/fault_env.h"

namespace slipstream::chaos {
namespace {

using testkit::Fault;
using ::testing::HasSubstr;

constexpr int kRandomBytes = 384 << 10;  // incompressible part of the big layer

// One row of the matrix: the faults applied to the big layer's blob GETs, and the outcome.
struct PullCase {
  std::string name;
  std::vector<Fault> faults;  // On("GET", <big layer blob path>) is added by the test
  bool succeeds;
  absl::Duration bound;  // the pull (success or error) ends within this
};

std::vector<PullCase> Cases() {
  const absl::Duration ok = absl::Seconds(30);
  // A burst longer than the retry budget (4 tries in 5 s, 2 s stall timeout) ends in an
  // error well within this.
  const absl::Duration fail = absl::Seconds(25);
  return {
      {"drop-at-0-x1", {Fault::DropAfter(0)}, true, ok},
      {"drop-mid-x3", {Fault::DropAfter(100 << 10).Times(3)}, true, ok},
      {"drop-at-0-all", {Fault::DropAfter(0).Times(-1)}, false, fail},
      {"truncate-mid-x2", {Fault::TruncateAfter(50 << 10).Times(2)}, true, ok},
      {"truncate-at-0-all", {Fault::TruncateAfter(0).Times(-1)}, false, fail},
      {"stall-1s-x2", {Fault::StallAfter(64 << 10, absl::Seconds(1)).Times(2)}, true, ok},
      {"stall-forever-x1", {Fault::StallAfter(64 << 10)}, true, ok},
      {"stall-forever-all", {Fault::StallAfter(0).Times(-1)}, false, fail},
      {"503-x3", {Fault::Status(503).Times(3)}, true, ok},
      {"502-500-mixed", {Fault::Status(502), Fault::Status(500)}, true, ok},
      {"429-retry-after-1-x2", {Fault::Status(429, "1").Times(2)}, true, ok},
      {"503-all", {Fault::Status(503).Times(-1)}, false, fail},
      // One refusal: the client moves on to the next host of hosts.toml (here the same proxy,
      // listed as host and as server) without waiting 10 minutes.
      {"429-retry-after-600-x1", {Fault::Status(429, "600")}, true, ok},
      {"429-retry-after-600-all", {Fault::Status(429, "600").Times(-1)}, false, fail},
      {"404-x1", {Fault::Status(404)}, true, ok},
      {"404-all", {Fault::Status(404).Times(-1)}, false, fail},
      {"corrupt-at-1000-x1", {Fault::CorruptAt(1000)}, false, fail},
      {"corrupt-at-200k-all", {Fault::CorruptAt(200 << 10, 0x80).Times(-1)}, false, fail},
      {"throttle-2MiBps", {Fault::Throttle(2 << 20).Times(-1)}, true, ok},
  };
}

class FaultPullTest : public FaultCriTest {
 protected:
  FaultPullTest()
      : FaultCriTest("chaos-fault-pull-", "[engine]\nchunk_size = \"256KiB\"\n") {}

  struct CaseImage {
    std::string ref;
    testkit::BuiltImage image;
    std::vector<ExpectedFile> big_files;  // of layer 1, with etc/case as its marker
  };

  // One image per case: busybox, random bytes and etc/case (the case's name) in the big
  // layer; etc/hello.txt (the name again) in the small one.
  void PushImages() override {
    auto busybox = ReadFileToString(it::kBusybox, 64 << 20);
    ASSERT_TRUE(busybox.ok());
    const std::string busybox_sha(Sha256Of(*busybox).hex());
    std::mt19937_64 rng(9);
    for (const PullCase& c : Cases()) {
      const std::string big = tmp_->Join("big-" + c.name);
      ASSERT_TRUE(MakeDirs(big + "/bin").ok());
      ASSERT_TRUE(MakeDirs(big + "/data").ok());
      ASSERT_TRUE(MakeDirs(big + "/etc").ok());
      ASSERT_TRUE(WriteFileAtomic(big + "/bin/busybox", *busybox, 0755).ok());
      std::string random(kRandomBytes, '\0');
      for (char& ch : random) ch = static_cast<char>(rng() & 0xff);
      ASSERT_TRUE(WriteFileAtomic(big + "/data/random", random).ok());
      ASSERT_TRUE(WriteFileAtomic(big + "/etc/case", c.name).ok());
      const std::string small = tmp_->Join("small-" + c.name);
      ASSERT_TRUE(MakeDirs(small + "/etc").ok());
      ASSERT_TRUE(WriteFileAtomic(small + "/etc/hello.txt", c.name).ok());

      CaseImage ci;
      ci.ref = absl::StrCat(registry_->host(), "/chaos/fault-", absl::AsciiStrToLower(c.name),
                            ":1");
      ci.image = Push({big, small}, {}, {"/bin/sh"}, ci.ref, tmp_->Join("layout-" + c.name));
      ASSERT_EQ(ci.image.layers.size(), 2u);
      ci.big_files = {{"bin/busybox", busybox_sha},
                      {"data/random", std::string(Sha256Of(random).hex())},
                      {"etc/case", std::string(Sha256Of(c.name).hex())}};
      images_.push_back(std::move(ci));
    }
    ASSERT_NO_FATAL_FAILURE(RouteThroughProxy());
  }

  // The chainIDs of `ci`'s two layers.
  static std::vector<std::string> Chains(const CaseImage& ci) {
    std::vector<Digest> diff_ids;
    for (const testkit::BuiltLayer& l : ci.image.layers) diff_ids.push_back(l.diff_id);
    std::vector<std::string> out;
    for (const Digest& d : plugin::ChainIds(diff_ids)) out.push_back(d.str());
    return out;
  }

  // Whatever of `ci` is committed is whole and right: a committed chainID has exactly one
  // snapshot dir with the case's files, all hashing right; none has a dir otherwise.
  // `want_committed`: both layers must be committed. (LookUntilAgreed: containerd's garbage
  // collector may still be removing some.)
  void ExpectCommittedSnapshotsWhole(const PullCase& c, const CaseImage& ci,
                                     bool want_committed) {
    const std::vector<std::string> chains = Chains(ci);
    std::string listed;
    bool big_committed = false, small_committed = false;
    std::vector<std::string> big_dirs, small_dirs;
    LookUntilAgreed([&] {
      listed = Snapshots();
      big_committed = absl::StrContains(listed, chains[0]);
      small_committed = absl::StrContains(listed, chains[1]);
      big_dirs = SnapshotsWithMarker(slip_root_, "etc/case", c.name);
      small_dirs = SnapshotsWithMarker(slip_root_, "etc/hello.txt", c.name);
      return big_dirs.size() == (big_committed ? 1u : 0u) &&
             small_dirs.size() == (small_committed ? 1u : 0u);
    });
    if (want_committed) {
      EXPECT_TRUE(big_committed && small_committed) << listed;
    }
    EXPECT_EQ(big_dirs.size(), big_committed ? 1u : 0u) << "big layer snapshot dirs";
    EXPECT_EQ(small_dirs.size(), small_committed ? 1u : 0u) << "small layer snapshot dirs";
    for (const std::string& fs : big_dirs) EXPECT_EQ(CheckFiles(fs, ci.big_files), 0);
    // The small layer alone is committed only on top of its parent.
    EXPECT_FALSE(small_committed && !big_committed) << listed;
  }

  std::vector<CaseImage> images_;
};

TEST_F(FaultPullTest, EveryFaultEndsInRetryOrCleanError) {
  const std::vector<PullCase> cases = Cases();
  ASSERT_EQ(cases.size(), images_.size());
  std::string table;
  for (size_t i = 0; i < cases.size(); ++i) {
    const PullCase& c = cases[i];
    const CaseImage& ci = images_[i];
    SCOPED_TRACE(c.name);
    const Digest& blob = ci.image.layers[0].descriptor.digest;
    std::vector<testkit::FaultId> ids;
    for (Fault f : c.faults) ids.push_back(proxy_->Add(f.On("GET", "/blobs/" + blob.str())));

    const absl::Time start = absl::Now();
    SubprocessResult pull = Cli({"pull", ci.ref});
    const absl::Duration took = absl::Now() - start;
    int hits = 0;
    for (testkit::FaultId id : ids) hits += proxy_->hits(id);
    proxy_->ClearFaults();

    EXPECT_GT(hits, 0) << "the fault never applied";
    EXPECT_LT(took, c.bound);
    if (c.succeeds) {
      EXPECT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
    } else {
      EXPECT_NE(pull.exit_code, 0) << pull.stdout_data;
      // The error containerd reports names the layer blob slipstreamd could not get.
      EXPECT_THAT(pull.stderr_data, HasSubstr(blob.Short())) << pull.stderr_data;
    }
    ExpectCommittedSnapshotsWhole(c, ci, /*want_committed=*/c.succeeds);
    ExpectTempSpaceReclaimed(slipstreamd_->pid(), slip_root_);
    absl::StrAppend(&table, c.name, "\t", pull.exit_code == 0 ? "ok" : "error", "\t",
                    absl::FormatDuration(took), "\thits=", hits, "\n");

    // Without faults the same pull succeeds and every file is right.
    if (pull.exit_code != 0) {
      SubprocessResult again = Cli({"pull", ci.ref});
      EXPECT_EQ(again.exit_code, 0) << again.stdout_data << again.stderr_data;
      ExpectCommittedSnapshotsWhole(c, ci, /*want_committed=*/true);
      ExpectTempSpaceReclaimed(slipstreamd_->pid(), slip_root_);
    }
    if (HasFailure()) std::cerr << "case " << c.name << ": " << pull.stderr_data << "\n";
  }
  std::cout << "case\toutcome\ttime\tfault hits\n" << table;
}

}  // namespace
}  // namespace slipstream::chaos
