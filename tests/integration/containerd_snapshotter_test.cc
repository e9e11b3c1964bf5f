// SPDX-License-Identifier: Apache-2.0
// The real containerd 1.6 (Debian) with slipstreamd as its proxy snapshotter: `ctr image pull
// --snapshotter slipstream` (no CRI labels: plain overlay behaviour), `ctr run` prints what
// the image's busybox echoes, a slipstreamd restart keeps the snapshots usable, and removing
// the image garbage-collects its snapshots.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "tests/integration/cri_env.h"

namespace slipstream {
namespace {

using it::Exists;
using it::kBusybox;
using it::Tail;

class ContainerdSnapshotterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Exists(kBusybox)) << "install busybox-static (scripts/setup.sh)";
    auto tmp = TempDir::Create("containerd-it-");
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    slip_root_ = tmp_->Join("slipstream");
    slip_socket_ = tmp_->Join("run/slipstream.sock");
    containerd_socket_ = tmp_->Join("run/containerd.sock");

    auto reg = testkit::RegistryFixture::Start();
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = std::move(*reg);
    ASSERT_NO_FATAL_FAILURE(PushImage());
    ASSERT_NO_FATAL_FAILURE(StartSlipstreamd());
    ASSERT_NO_FATAL_FAILURE(StartContainerd());
  }

  void TearDown() override {
    if (containerd_) containerd_->Stop();
    if (slipstreamd_) slipstreamd_->Stop();
    // SLIPSTREAM_IT_LOGS=1 shows the daemons' logs of a passing run too.
    if (HasFailure() || getenv("SLIPSTREAM_IT_LOGS") != nullptr) {
      std::cerr << "--- slipstreamd log\n" << Tail(tmp_->Join("slipstreamd.log"))
                << "\n--- containerd log\n" << Tail(tmp_->Join("containerd.log")) << "\n";
    }
  }

  // Two layers: busybox with the applet links, then a file that only the second layer has.
  void PushImage() {
    std::string l1 = tmp_->Join("l1");
    ASSERT_TRUE(MakeDirs(l1 + "/bin").ok());
    auto data = ReadFileToString(kBusybox, 64 << 20);
    ASSERT_TRUE(data.ok());
    ASSERT_TRUE(WriteFileAtomic(l1 + "/bin/busybox", *data, 0755).ok());
    for (const char* applet : {"sh", "echo", "cat", "ls"}) {
      ASSERT_EQ(::symlink("busybox", (l1 + "/bin/" + applet).c_str()), 0);
    }
    std::string l2 = tmp_->Join("l2");
    ASSERT_TRUE(MakeDirs(l2 + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(l2 + "/etc/hello.txt", "from layer two\n").ok());

    testkit::ImageSpec spec;
    spec.layers.push_back({.source_dir = l1, .tree = {.uid = 0, .gid = 0}});
    spec.layers.push_back({.source_dir = l2, .tree = {.uid = 0, .gid = 0}});
    spec.cmd = {"/bin/sh"};
    spec.env = {"PATH=/bin"};
    auto built = testkit::BuildImage(spec, tmp_->Join("layout"));
    ASSERT_TRUE(built.ok()) << built.status();
    auto client = remote::RegistryClient::Create({});
    ASSERT_TRUE(client.ok()) << client.status();
    ref_ = absl::StrCat(registry_->host(), "/slipstream/busybox:1");
    auto ref = remote::Reference::Parse(ref_);
    ASSERT_TRUE(ref.ok());
    auto pushed = testkit::PushImage(**client, *built, *ref);
    ASSERT_TRUE(pushed.ok()) << pushed.status();
  }

  void StartSlipstreamd() {
    auto child = ChildProcess::Start({SLIPSTREAMD_PATH, "--root", slip_root_, "--address",
                                      slip_socket_, "--log-level", "debug"},
                                     tmp_->Join("slipstreamd.log"));
    ASSERT_TRUE(child.ok()) << child.status();
    slipstreamd_ = std::make_unique<ChildProcess>(std::move(*child));
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!Exists(slip_socket_)) {
      ASSERT_TRUE(slipstreamd_->Running()) << "slipstreamd exited";
      ASSERT_LT(absl::Now(), deadline) << "slipstreamd socket never appeared";
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  void StartContainerd() {
    std::string config = tmp_->Join("containerd.toml");
    std::string text = absl::StrCat(
        "version = 2\n",
        "root = \"", tmp_->Join("containerd-root"), "\"\n",
        "state = \"", tmp_->Join("containerd-state"), "\"\n",
        "[grpc]\n  address = \"", containerd_socket_, "\"\n",
        "[ttrpc]\n  address = \"", tmp_->Join("run/containerd.sock.ttrpc"), "\"\n",
        "[proxy_plugins]\n  [proxy_plugins.slipstream]\n    type = \"snapshot\"\n",
        "    address = \"", slip_socket_, "\"\n",
        "[plugins.\"io.containerd.grpc.v1.cri\"]\n",
        "  restrict_oom_score_adj = true\n",
        "  [plugins.\"io.containerd.grpc.v1.cri\".containerd]\n",
        "    snapshotter = \"slipstream\"\n",
        "    disable_snapshot_annotations = false\n");
    ASSERT_TRUE(WriteFileAtomic(config, text).ok());
    auto child = ChildProcess::Start({"containerd", "--config", config, "--log-level", "debug"},
                                     tmp_->Join("containerd.log"));
    ASSERT_TRUE(child.ok()) << child.status();
    containerd_ = std::make_unique<ChildProcess>(std::move(*child));
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (true) {
      auto r = RunSubprocess({"ctr", "-a", containerd_socket_, "version"},
                             {.timeout = absl::Seconds(10)});
      if (r.ok() && r->exit_code == 0) break;
      ASSERT_TRUE(containerd_->Running()) << "containerd exited";
      ASSERT_LT(absl::Now(), deadline) << "containerd never answered";
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  // Runs `ctr -a SOCK -n test ARGS...`; returns stdout, failing the test on a non-zero exit.
  std::string Ctr(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ctr", "-a", containerd_socket_, "-n", "test"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunSubprocess(argv, {.timeout = absl::Seconds(180)});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->exit_code, 0) << absl::StrJoin(argv, " ") << "\n"
                               << r->stdout_data << r->stderr_data;
    return r->stdout_data;
  }

  // Names of the snapshots containerd has in namespace test on slipstream.
  std::vector<std::string> SnapshotLines() {
    std::string out = Ctr({"snapshots", "--snapshotter", "slipstream", "ls"});
    std::vector<std::string> lines;
    size_t start = 0;
    while (start < out.size()) {
      size_t end = out.find('\n', start);
      if (end == std::string::npos) end = out.size();
      std::string line = out.substr(start, end - start);
      if (!line.empty() && !line.starts_with("KEY")) lines.push_back(line);
      start = end + 1;
    }
    return lines;
  }

  int SnapshotDirs() {
    int n = 0;
    std::string dir = slip_root_ + "/snapshots";
    if (DIR* d = ::opendir(dir.c_str())) {
      while (struct dirent* e = ::readdir(d)) {
        if (e->d_name[0] != '.') ++n;
      }
      ::closedir(d);
    }
    return n;
  }

  std::unique_ptr<TempDir> tmp_;
  std::string slip_root_, slip_socket_, containerd_socket_, ref_;
  std::unique_ptr<testkit::RegistryFixture> registry_;
  std::unique_ptr<ChildProcess> slipstreamd_;
  std::unique_ptr<ChildProcess> containerd_;
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
  slipstreamd_->Stop();
  slipstreamd_.reset();
  ASSERT_NO_FATAL_FAILURE(StartSlipstreamd());
  out = Ctr({"run", "--snapshotter", "slipstream", "--rm", ref_, "c3", "/bin/echo", "again"});
  EXPECT_EQ(out, "again\n");

  // Removing the image lets containerd's GC remove every snapshot through slipstreamd.
  Ctr({"image", "rm", "--sync", ref_});
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!SnapshotLines().empty() || SnapshotDirs() != 0) {
    ASSERT_LT(absl::Now(), deadline) << "snapshots not garbage-collected: "
                                     << absl::StrJoin(SnapshotLines(), "; ");
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace
}  // namespace slipstream
