// SPDX-License-Identifier: Apache-2.0
// A full disk under slipstreamd: its root is a tmpfs of its own (64 MiB), filled by another
// file until less is free than the image unpacks to. A parallel-mode CRI pull through
// containerd 1.6 must fail with an error that names ENOSPC, leave nothing half-committed
// (containerd's snapshot list and the snapshot dirs agree, a committed layer is whole) and
// give back the space it took (no staging dir, no temp file held open, the file system as
// full as before but for whole committed layers). Once the filler file is gone the same pull
// succeeds and every file hashes right.
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/chaos/fault_env.h"

namespace slipstream::chaos {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;

constexpr int kBigFiles = 12;          // the big layer: 12 MiB of incompressible files
constexpr int kBigFileSize = 1 << 20;
constexpr int64_t kFreeWhenFull = 6 << 20;  // free bytes left by the filler file

int64_t UsedBytes(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_blocks - st.f_bfree) * static_cast<int64_t>(st.f_frsize);
}

int64_t FreeBytes(const std::string& path) {
  struct statvfs st;
  if (::statvfs(path.c_str(), &st) != 0) return -1;
  return static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
}

class DiskFullTest : public it::CriIntegrationTest {
 protected:
  DiskFullTest() : CriIntegrationTest("chaos-disk-full-", "") {}

  // Layer 1: busybox and etc/hello.txt (~2 MiB unpacked: fits); layer 2: kBigFiles random
  // files (does not fit). Then slipstreamd's root becomes a 64 MiB tmpfs.
  void PushImages() override {
    const std::string l1 = BusyboxLayer("l1", {"sh"});
    ASSERT_TRUE(MakeDirs(l1 + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(l1 + "/etc/hello.txt", "disk full\n").ok());
    auto busybox = ReadFileToString(it::kBusybox, 64 << 20);
    ASSERT_TRUE(busybox.ok());
    small_files_ = {{"bin/busybox", std::string(Sha256Of(*busybox).hex())},
                    {"etc/hello.txt", std::string(Sha256Of("disk full\n").hex())}};
    const std::string big = tmp_->Join("big");
    ASSERT_TRUE(MakeDirs(big + "/data").ok());
    std::mt19937_64 rng(5);
    for (int i = 0; i < kBigFiles; ++i) {
      std::string bytes(kBigFileSize, '\0');
      for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
      const std::string name = absl::StrCat("data/f", i);
      big_files_.push_back({name, std::string(Sha256Of(bytes).hex())});
      ASSERT_TRUE(WriteFileAtomic(big + "/" + name, bytes).ok());
    }
    ref_ = absl::StrCat(registry_->host(), "/chaos/disk-full:1");
    image_ = Push({l1, big}, {}, {"/bin/sh"}, ref_, tmp_->Join("layout"));
    ASSERT_EQ(image_.layers.size(), 2u);

    ASSERT_TRUE(MakeDirs(slip_root_).ok());
    ASSERT_EQ(::mount("tmpfs", slip_root_.c_str(), "tmpfs", 0, "size=64m,mode=0700"), 0)
        << strerror(errno);
    mounted_ = true;
  }

  void TearDown() override {
    CriIntegrationTest::TearDown();
    if (mounted_) {
      EXPECT_EQ(::umount2(slip_root_.c_str(), MNT_DETACH), 0) << strerror(errno);
    }
  }

  // Whatever of the image is committed is whole: containerd lists a layer's chainID exactly
  // when one snapshot dir holds its files, all hashing right. Returns whether both are.
  // (LookUntilAgreed: containerd's garbage collector may still be removing some.)
  bool ExpectNothingHalfCommitted() {
    const std::vector<std::string> chains = ChainIds();
    std::string listed;
    bool small = false, big = false;
    std::vector<std::string> small_dirs, big_dirs;
    LookUntilAgreed([&] {
      listed = Snapshots();
      small = absl::StrContains(listed, chains[0]);
      big = absl::StrContains(listed, chains[1]);
      small_dirs = SnapshotsWithMarker(slip_root_, "etc/hello.txt", "disk full\n");
      big_dirs.clear();
      for (const std::string& id : ListDir(slip_root_ + "/snapshots")) {
        const std::string fs = absl::StrCat(slip_root_, "/snapshots/", id, "/fs");
        if (it::Exists(fs + "/data")) big_dirs.push_back(fs);
      }
      return small_dirs.size() == (small ? 1u : 0u) && big_dirs.size() == (big ? 1u : 0u);
    });
    EXPECT_FALSE(big && !small) << listed;
    EXPECT_EQ(small_dirs.size(), small ? 1u : 0u) << listed;
    for (const std::string& fs : small_dirs) EXPECT_EQ(CheckFiles(fs, small_files_), 0);
    EXPECT_EQ(big_dirs.size(), big ? 1u : 0u) << listed;
    for (const std::string& fs : big_dirs) EXPECT_EQ(CheckFiles(fs, big_files_), 0);
    return small && big;
  }

  bool mounted_ = false;
  std::vector<ExpectedFile> small_files_, big_files_;
};

TEST_F(DiskFullTest, PullFailsCleanlyThenSucceedsWhenSpaceReturns) {
  // Another tenant of the file system leaves kFreeWhenFull free: less than the big layer.
  const std::string filler = tmp_->Join("slipstream/filler");
  const int64_t fill = FreeBytes(slip_root_) - kFreeWhenFull;
  ASSERT_GT(fill, 0);
  {
    std::string chunk(1 << 20, 'x');
    std::string data;
    data.reserve(static_cast<size_t>(fill));
    while (static_cast<int64_t>(data.size()) < fill) {
      data.append(chunk, 0, std::min<size_t>(chunk.size(), fill - data.size()));
    }
    ASSERT_TRUE(WriteFileAtomic(filler, data).ok());
  }
  const int64_t used_before = UsedBytes(slip_root_);

  const absl::Time start = absl::Now();
  SubprocessResult pull = Cli({"pull", ref_});
  const absl::Duration took = absl::Now() - start;
  EXPECT_NE(pull.exit_code, 0) << pull.stdout_data;
  EXPECT_LT(took, absl::Seconds(60));
  // The error containerd reports says why.
  EXPECT_THAT(pull.stderr_data,
              AnyOf(HasSubstr("No space left on device"), HasSubstr("ENOSPC")))
      << pull.stderr_data;
  std::cout << "disk full pull: " << absl::FormatDuration(took) << "\n" << pull.stderr_data;

  ExpectTempSpaceReclaimed(slipstreamd_->pid(), slip_root_);
  EXPECT_FALSE(ExpectNothingHalfCommitted()) << "the big layer cannot have fit";
  // The space the failed pull took is back, but for a whole committed small layer (busybox
  // is ~2 MiB unpacked) and the metadata.
  EXPECT_LT(UsedBytes(slip_root_) - used_before, 4 << 20)
      << "used before " << used_before << ", after " << UsedBytes(slip_root_);

  // Space returns: the same pull succeeds and every file is right.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  SubprocessResult again = Cli({"pull", ref_});
  EXPECT_EQ(again.exit_code, 0) << again.stdout_data << again.stderr_data;
  EXPECT_TRUE(ExpectNothingHalfCommitted());
  ExpectTempSpaceReclaimed(slipstreamd_->pid(), slip_root_);
}

}  // namespace
}  // namespace slipstream::chaos
