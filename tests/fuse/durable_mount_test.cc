// SPDX-License-Identifier: Apache-2.0
// Restart survival through the kernel: DurableMount with the real slipstream-fuse-holder
// (started detached by ConnectOrStartHolder), and FuseServer's handover of a connection
// whose previous server was "killed" while it was answering a read (FUSE_NOTIFY_RESEND).
// Layers are in memory (FakeBlob). Needs root and /dev/fuse; without them the tests fail.
#include "fuse/durable_mount.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <future>
#include <optional>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "fuse/fd_holder_client.h"
#include "fuse/fd_holder_spawn.h"
#include "fuse/fuse_mount.h"
#include "fuse/mountinfo.h"
#include "gmock/gmock.h"
#include "tests/fuse/background_read.h"
#include "tests/fuse/test_layer.h"

namespace slipstream::fuse {
namespace {

using ::testing::ElementsAre;
using testing::Fresh;
using ::testing::IsEmpty;
using testing::RichLayer;
using testing::BackgroundRead;
using testing::TestLayer;

constexpr uint32_t kLayerId = 7;

std::string ReadAt(int fd, off_t offset, size_t size) {
  std::string out(size, '\0');
  ssize_t n = ::pread(fd, out.data(), size, offset);
  if (n < 0) return absl::StrCat("<error: ", std::strerror(errno), ">");
  out.resize(static_cast<size_t>(n));
  return out;
}

std::optional<std::string> MountType(const std::string& path) {
  auto t = CurrentMountTypeAt(path);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : std::nullopt;
}

// A BackgroundRead body: `size` bytes at `offset` of `path` (open + pread).
std::function<std::string()> ReadOp(std::string path, off_t offset, size_t size) {
  return [path = std::move(path), offset, size] {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return absl::StrCat("<open: ", std::strerror(errno), ">");
    return ReadAt(fd.get(), offset, size);
  };
}

class DurableMountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "FUSE mount tests need root";
    ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0) << "/dev/fuse: " << std::strerror(errno);
    auto tmp = TempDir::Create("durable-mount-");
    ASSERT_TRUE(tmp.ok()) << tmp.status();
    tmp_.emplace(*std::move(tmp));
    auto canonical = CanonicalMountpoint(tmp_->Join("fuse"));
    ASSERT_TRUE(canonical.ok());
    mnt_ = *canonical;
    socket_ = tmp_->Join("fuse-holder.sock");
    layer_ = &RichLayer();
    big_ = layer_->files.at(testing::kBigFile);
    ASSERT_GT(big_.size(), size_t{1} << 20);
  }

  void TearDown() override {
    // What an operator does to tear everything down: unmount, then stop the holder.
    EXPECT_TRUE(TearDownKeptMount(mnt_, socket_).ok());
  }

  DurableMountOptions Options(bool keep = true) {
    DurableMountOptions o;
    o.mountpoint = mnt_;
    o.holder = {.socket_path = socket_,
                .binary = SLIPSTREAM_FUSE_HOLDER_PATH,
                .log_path = tmp_->Join("fuse-holder.log")};
    o.keep_mount_on_exit = keep;
    return o;
  }

  // A LayerFs as a restarted daemon builds it: the same layer under the same id.
  std::unique_ptr<LayerFs> NewFs(const TestLayer& layer) {
    auto fs = std::make_unique<LayerFs>();
    EXPECT_TRUE(fs->AddLayer("layer", kLayerId, layer.ztoc, layer.NewReader()).ok());
    return fs;
  }

  std::vector<std::string> HolderKeys() {
    auto holder = FdHolderClient::Connect(socket_);
    EXPECT_TRUE(holder.ok()) << holder.status();
    if (!holder.ok()) return {"<no holder>"};
    auto keys = holder->List();
    EXPECT_TRUE(keys.ok()) << keys.status();
    return keys.ok() ? *keys : std::vector<std::string>{"<error>"};
  }

  std::optional<TempDir> tmp_;
  std::string mnt_, socket_;
  const TestLayer* layer_ = nullptr;
  std::string big_;
  // Destroyed after TearDown, whose unmount ends a read still waiting when a check failed.
  std::optional<BackgroundRead> read_;
};

// The mount's read_ahead_kb in sysfs, "" when unreadable.
std::string KernelReadAheadKib(const std::string& mountpoint) {
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) return "";
  auto kb = ReadFileToString(absl::StrCat("/sys/class/bdi/", major(st.st_dev), ":",
                                          minor(st.st_dev), "/read_ahead_kb"));
  return kb.ok() ? std::string(absl::StripAsciiWhitespace(*kb)) : "";
}

TEST_F(DurableMountTest, KeptMountIsResumedAndOpenFilesReadOn) {
  auto fs1 = NewFs(*layer_);
  DurableMountOptions options = Options();
  options.kernel_read_ahead = 4 << 20;
  auto first = DurableMount::Open(fs1.get(), options);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE((*first)->resumed());
  EXPECT_EQ(KernelReadAheadKib(mnt_), "4096");
  EXPECT_TRUE((*first)->held());
  EXPECT_THAT(HolderKeys(), ElementsAre(mnt_));
  const std::string path = mnt_ + "/layer/" + testing::kBigFile;
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << std::strerror(errno);
  EXPECT_TRUE(ReadAt(fd.get(), 0, 65536) == big_.substr(0, 65536));

  // The daemon goes away (clean exit): the mount and the holder's descriptor stay.
  (*first)->Close();
  first->reset();
  fs1.reset();
  EXPECT_EQ(MountType(mnt_), "fuse.slipstream");
  EXPECT_THAT(HolderKeys(), ElementsAre(mnt_));

  // Nobody serves: a read of bytes not in the page cache waits in the kernel.
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
  BackgroundRead& during_gap = read_.emplace(ReadOp(path, 1 << 20, 100000));
  ASSERT_NO_FATAL_FAILURE(during_gap.WaitBlocked());

  // The next daemon resumes the same connection; the waiting read is answered.
  auto fs2 = NewFs(*layer_);
  options = Options(/*keep=*/false);
  options.kernel_read_ahead = (2 << 20) - 100;  // rounded up to whole KiB
  auto second = DurableMount::Open(fs2.get(), options);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE((*second)->resumed());
  EXPECT_EQ(KernelReadAheadKib(mnt_), "2048");
  ASSERT_TRUE(during_gap.Done(std::chrono::seconds(30)));
  EXPECT_TRUE(during_gap.Get() == big_.substr(1 << 20, 100000));
  // The file opened before the restart reads on; new lookups work.
  const off_t tail = static_cast<off_t>(big_.size()) - 5000;
  EXPECT_TRUE(ReadAt(fd.get(), tail, 5000) == big_.substr(tail));
  EXPECT_TRUE(ReadAt(fd.get(), 65536, 65536) == big_.substr(65536, 65536));
  auto hosts = ReadFileToString(mnt_ + "/layer/" + testing::kHosts);
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ(*hosts, layer_->files.at(testing::kHosts));
  EXPECT_GE(fs2->OpenFiles(), 1);  // the old handle was adopted

  // keep_mount_on_exit = false: Close unmounts and the holder forgets the connection.
  fd.Reset();
  (*second)->Close();
  EXPECT_EQ(MountType(mnt_), std::nullopt);
  EXPECT_THAT(HolderKeys(), IsEmpty());
}

TEST_F(DurableMountTest, InFlightReadOfAKilledServerIsResentToTheNext) {
  // Server A's blob never answers while the gate is closed: A's thread takes the read and
  // hangs in it, as a daemon does that is SIGKILLed during a registry fetch.
  TestLayer gated = Fresh(*layer_);
  auto fs_a = NewFs(gated);
  auto fs_b = NewFs(*layer_);
  ASSERT_TRUE(MakeDirs(mnt_).ok());
  auto connection = MountFuse(mnt_);
  ASSERT_TRUE(connection.ok()) << connection.status();
  UniqueFd for_b(::fcntl(connection->get(), F_DUPFD_CLOEXEC, 0));
  ASSERT_TRUE(for_b.valid());
  // One thread, stuck in the read: a killed server has no other thread left to take the
  // resent request either.
  FuseServerOptions one_thread;
  one_thread.threads = 1;
  auto a = FuseServer::Serve(fs_a.get(), *std::move(connection), "", one_thread);
  ASSERT_TRUE(a.ok()) << a.status();

  const std::string path = mnt_ + "/layer/" + testing::kBigFile;
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << std::strerror(errno);  // metadata: no blob
  gated.blob->CloseGate();
  BackgroundRead& read = read_.emplace(ReadOp(path, 300000, 70000));
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (gated.blob->blocked() == 0) {  // A read the request and is stuck answering it
    ASSERT_LT(absl::Now(), deadline) << "server A never fetched";
    absl::SleepFor(absl::Milliseconds(5));
  }

  // B takes over the connection while A still holds its request: the kernel resends it.
  auto b = FuseServer::Serve(fs_b.get(), std::move(for_b), "", {}, /*initialized=*/true);
  ASSERT_TRUE(b.ok()) << b.status();
  const bool answered = read.Done(std::chrono::seconds(30));
  gated.blob->OpenGate();  // A's late answer names a request the kernel no longer has
  ASSERT_TRUE(answered) << "the read stayed with the stuck server (no FUSE_NOTIFY_RESEND?)";
  EXPECT_TRUE(read.Get() == big_.substr(300000, 70000));
  EXPECT_GT(fs_b->Status("layer")->counters.fetches, 0);
  // A stops without unmounting; B serves on.
  (void)(*a)->Detach();
  auto hosts = ReadFileToString(mnt_ + "/layer/" + testing::kHosts);
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ(*hosts, layer_->files.at(testing::kHosts));
  (*b)->Stop();
}

TEST_F(DurableMountTest, AStaleHeldConnectionGivesWayToAFreshMount) {
  auto fs1 = NewFs(*layer_);
  auto first = DurableMount::Open(fs1.get(), Options());
  ASSERT_TRUE(first.ok()) << first.status();
  (*first)->Close();
  first->reset();
  // Someone unmounted it meanwhile; the connection ends with the mount.
  ASSERT_EQ(::umount2(mnt_.c_str(), MNT_DETACH), 0) << std::strerror(errno);
  auto second = DurableMount::Open(fs1.get(), Options());
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE((*second)->resumed());
  EXPECT_TRUE((*second)->held());
  auto hosts = ReadFileToString(mnt_ + "/layer/" + testing::kHosts);
  ASSERT_TRUE(hosts.ok()) << hosts.status();
  EXPECT_EQ(*hosts, layer_->files.at(testing::kHosts));
  EXPECT_THAT(HolderKeys(), ElementsAre(mnt_));
  (*second)->Close();
  EXPECT_EQ(MountType(mnt_), "fuse.slipstream");
}

TEST_F(DurableMountTest, WithoutAHolderTheMountEndsWithClose) {
  auto fs = NewFs(*layer_);
  DurableMountOptions o = Options();
  o.holder.binary = tmp_->Join("no-such-holder");
  auto mount = DurableMount::Open(fs.get(), o);
  ASSERT_TRUE(mount.ok()) << mount.status();
  EXPECT_FALSE((*mount)->held());
  EXPECT_EQ(MountType(mnt_), "fuse.slipstream");
  (*mount)->Close();  // keep_mount_on_exit cannot keep what nobody holds
  EXPECT_EQ(MountType(mnt_), std::nullopt);
}

// ---- starting the real holder ----------------------------------------------------------

// /proc/<pid>/stat after the command: ppid, process group, session.
struct ProcStat {
  pid_t ppid = 0, pgrp = 0, session = 0;
};
std::optional<ProcStat> ReadStat(pid_t pid) {
  auto text = ReadFileToString(absl::StrCat("/proc/", pid, "/stat"));
  if (!text.ok()) return std::nullopt;
  ProcStat s;
  char state;
  const size_t paren = text->rfind(')');
  if (paren == std::string::npos || std::sscanf(text->c_str() + paren + 1, " %c %d %d %d", &state,
                                                &s.ppid, &s.pgrp, &s.session) != 4) {
    return std::nullopt;
  }
  return s;
}

TEST_F(DurableMountTest, HolderIsStartedDetachedOnceAndStopsOnQuit) {
  HolderStartOptions o = Options().holder;
  auto client = ConnectOrStartHolder(o);
  ASSERT_TRUE(client.ok()) << client.status();
  // Who answers: the holder's pid from the socket's peer credentials.
  UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, socket_.data(), socket_.size());
  ASSERT_EQ(::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ucred cred{};
  socklen_t len = sizeof(cred);
  ASSERT_EQ(::getsockopt(probe.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len), 0);
  std::optional<ProcStat> holder = ReadStat(cred.pid), self = ReadStat(::getpid());
  ASSERT_TRUE(holder.has_value() && self.has_value());
  // Not our child, not in our session or process group: a signal to the daemon's group or
  // a hangup of its terminal does not reach it.
  EXPECT_NE(holder->ppid, ::getpid());
  EXPECT_NE(holder->session, self->session);
  EXPECT_NE(holder->pgrp, self->pgrp);

  // A second caller finds the running holder instead of starting another.
  UniqueFd fd(::eventfd(0, EFD_CLOEXEC));
  ASSERT_TRUE(client->Put("/m", fd.get()).ok());
  auto again = ConnectOrStartHolder(o);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_THAT(*again->List(), ElementsAre("/m"));
  ASSERT_TRUE(again->Quit().ok());
  // It exits and removes its socket (bounded wait: it is not our child to wait for).
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (::access(socket_.c_str(), F_OK) == 0) {
    ASSERT_LT(absl::Now(), deadline) << "the holder did not exit";
    absl::SleepFor(absl::Milliseconds(10));
  }
  auto log = ReadFileToString(o.log_path);
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("fuse holder serving"), std::string::npos) << *log;

  o.binary = tmp_->Join("no-such-holder");
  EXPECT_TRUE(absl::IsNotFound(ConnectOrStartHolder(o).status()));
}

}  // namespace
}  // namespace slipstream::fuse
