// SPDX-License-Identifier: Apache-2.0
// Lazy mounts survive a slipstreamd crash or restart. containerd 1.6's CRI pulls an image
// whose big layer slipstreamd (default_mode = "lazy") mounts through FUSE; the test opens a
// file of that layer inside the FUSE mount and reads part of it. Then slipstreamd dies
// (SIGKILL, or SIGTERM with lazy.keep_mounts_on_exit at its default): the FUSE mount stays,
// its /dev/fuse descriptor kept by slipstream-fuse-holder, which the first slipstreamd started.
// While no daemon runs, a read of another file waits in the kernel. A new slipstreamd serves
// the same connection again: the waiting read completes, the file opened before reads on
// (every byte compared), new lookups work and a new container reads the layer through
// overlayfs. No read may fail (ENOTCONN or EIO would show as a mismatch).
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <future>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "fuse/fd_holder_client.h"
#include "fuse/mountinfo.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/lazy_pull_provider.h"
#include "tests/fuse/background_read.h"
#include "tests/integration/cri_env.h"

namespace slipstream {
namespace {

using fuse::testing::BackgroundRead;
using it::Tail;
using ::testing::Contains;
using ::testing::HasSubstr;

// The big layer: kFiles incompressible files under /big (~6 MiB), above the index's minimum
// layer size; the busybox layer (~1 MiB compressed) stays below it.
constexpr int kFiles = 24;
constexpr int kFileSize = 256 << 10;
constexpr int64_t kMinLayerSize = 3 << 20;

std::string ReadAt(int fd, off_t offset, size_t size) {
  std::string out(size, '\0');
  ssize_t n = ::pread(fd, out.data(), size, offset);
  if (n < 0) return absl::StrCat("<pread: ", std::strerror(errno), ">");
  out.resize(static_cast<size_t>(n));
  return out;
}

class FuseRestartTest : public it::CriIntegrationTest {
 protected:
  FuseRestartTest() : CriIntegrationTest("fuse-restart-it-", "default_mode = \"lazy\"\n") {}

  void PushImages() override {
    std::string l1 = BusyboxLayer("l1", {"sh", "cat", "sha256sum"});
    std::string big = tmp_->Join("big");
    ASSERT_TRUE(MakeDirs(big + "/big").ok());
    std::mt19937_64 rng(7);
    for (int i = 0; i < kFiles; ++i) {
      std::string bytes(kFileSize, '\0');
      for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
      ASSERT_TRUE(WriteFileAtomic(absl::StrCat(big, "/big/r", i), bytes).ok());
      files_.push_back(std::move(bytes));
    }
    ref_ = absl::StrCat(registry_->host(), "/slipstream/restart:1");
    image_ = Push({l1, big}, {}, {"/bin/sh"}, ref_, tmp_->Join("layout"));
    ASSERT_EQ(image_.layers.size(), 2u);
    ASSERT_GT(image_.layers[1].descriptor.size, kMinLayerSize);
    ASSERT_NO_FATAL_FAILURE(PushSociIndex(ref_, kMinLayerSize));
  }

  std::string Mount() const { return slip_root_ + "/fuse"; }
  std::string HolderSocket() const { return slip_root_ + "/fuse-holder.sock"; }
  // The big layer's file i inside the FUSE mount (not through an overlay).
  std::string LayerFile(int i) {
    return absl::StrCat(Mount(), "/", plugin::LazyLayerName(ChainIds()[1]), "/big/r", i);
  }

  // The whole scenario; `signal` ends the first slipstreamd.
  void RestartWhileReading(int signal) {
    SubprocessResult pull = Cli({"pull", ref_});
    ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
    auto canonical = fuse::CanonicalMountpoint(Mount());
    ASSERT_TRUE(canonical.ok());
    const std::string mount = *canonical;
    EXPECT_THAT(Tail(tmp_->Join("slipstreamd.log")), HasSubstr("msg=\"FUSE mounted\""));

    // A reader inside the FUSE mount is half way through a file.
    UniqueFd fd(::open(LayerFile(0).c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid()) << LayerFile(0) << ": " << std::strerror(errno);
    const std::string& want = files_[0];
    const size_t half = want.size() / 2;
    ASSERT_TRUE(ReadAt(fd.get(), 0, half) == want.substr(0, half));

    // slipstreamd dies; the mount and the holder's descriptor stay.
    slipstreamd_->Stop(signal);
    slipstreamd_.reset();
    if (signal == SIGTERM) {
      EXPECT_THAT(Tail(tmp_->Join("slipstreamd.log")),
                  HasSubstr("FUSE mount kept for the next slipstreamd"));
    }
    auto type = fuse::CurrentMountTypeAt(mount);
    ASSERT_TRUE(type.ok());
    EXPECT_EQ(*type, "fuse.slipstream");
    auto holder = fuse::FdHolderClient::Connect(HolderSocket());
    ASSERT_TRUE(holder.ok()) << holder.status();
    EXPECT_THAT(*holder->List(), Contains(mount));

    // Meanwhile a new lookup and read wait in the kernel instead of failing.
    ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
    BackgroundRead& during_gap = gap_read_.emplace([path = LayerFile(1)] {
      auto data = ReadFileToString(path);
      return data.ok() ? *data : absl::StrCat("<", data.status().ToString(), ">");
    });
    ASSERT_NO_FATAL_FAILURE(during_gap.WaitBlocked());

    // A new slipstreamd serves the same connection.
    ASSERT_NO_FATAL_FAILURE(StartSlipstreamd());
    ASSERT_TRUE(during_gap.Done(std::chrono::seconds(60))) << "the waiting read never ended";
    const std::string got = during_gap.Get();
    EXPECT_TRUE(got == files_[1]) << "r1: got " << got.size() << " bytes: " << got.substr(0, 120);
    const std::string log = Tail(tmp_->Join("slipstreamd.log"));
    EXPECT_THAT(log, HasSubstr("FUSE connection resumed from the holder"));
    EXPECT_THAT(log, HasSubstr("msg=\"lazy layers restored\" layers=1"));

    // The file opened before the restart reads on, from the new daemon.
    const std::string rest = ReadAt(fd.get(), static_cast<off_t>(half), want.size() - half);
    EXPECT_TRUE(rest == want.substr(half)) << "rest of r0: " << rest.substr(0, 120);
    EXPECT_TRUE(ReadAt(fd.get(), 0, 4096) == want.substr(0, 4096));
    // New lookups and a whole file.
    auto r2 = ReadFileToString(LayerFile(2));
    ASSERT_TRUE(r2.ok()) << r2.status();
    EXPECT_TRUE(*r2 == files_[2]);

    // A new container reads the layer through containerd's overlay of the same mount.
    ASSERT_NO_FATAL_FAILURE(WaitForContainerd());
    SubprocessResult run = Cli({"run", ref_}, {"/bin/sha256sum", "/big/r3"});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
    const std::string r3_sha256(Sha256Of(files_[3]).hex());
    EXPECT_EQ(run.stdout_data, absl::StrCat(r3_sha256, "  /big/r3\n"));
  }

  std::vector<std::string> files_;  // content of /big/r<i>
  // Destroyed after TearDown, whose unmount ends a read still waiting when a check failed.
  std::optional<BackgroundRead> gap_read_;
};

TEST_F(FuseRestartTest, SigkilledDaemonIsReplacedWithoutBreakingReads) {
  RestartWhileReading(SIGKILL);
}

TEST_F(FuseRestartTest, SigtermRestartKeepsTheMountAndReadsGoOn) { RestartWhileReading(SIGTERM); }

}  // namespace
}  // namespace slipstream
