// SPDX-License-Identifier: Apache-2.0
// The CRI integration tests' shared bench: a local registry (plain HTTP through a hosts.toml
// that containerd's CRI and slipstreamd both read), a pause image (busybox sleeping forever),
// slipstreamd and containerd 1.6 with the CRI plugin on `snapshotter = "slipstream"`
// (snapshot annotations on), and the `slipstream cri` / `ctr` calls the tests make.
// A test derives from CriIntegrationTest and pushes its image in PushImages().
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "plugin/remote_pull_provider.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"

namespace slipstream::it {

inline constexpr char kBusybox[] = "/bin/busybox";  // from busybox-static: runs in an empty rootfs

inline std::string Tail(const std::string& path) {
  auto text = ReadFileToString(path, 64 << 20);
  if (!text.ok()) return "<no log>";
  return text->size() > 20000 ? text->substr(text->size() - 20000) : *text;
}

inline bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

class CriIntegrationTest : public ::testing::Test {
 protected:
  // `tmp_prefix` names the test's temp dir; `slipstreamd_config` is TOML put before the
  // [registry] table of slipstreamd's config (e.g. `default_mode = "lazy"`).
  CriIntegrationTest(std::string tmp_prefix, std::string slipstreamd_config)
      : tmp_prefix_(std::move(tmp_prefix)), slipstreamd_config_(std::move(slipstreamd_config)) {}

  // Pushes the image under test (sets ref_ and image_), before the daemons start.
  virtual void PushImages() = 0;

 protected:
  void SetUp() override {
    ASSERT_TRUE(Exists(kBusybox)) << "install busybox-static (scripts/setup.sh)";
    auto tmp = TempDir::Create(tmp_prefix_);
    ASSERT_TRUE(tmp.ok());
    tmp_ = std::make_unique<TempDir>(std::move(*tmp));
    slip_root_ = tmp_->Join("slipstream");
    slip_socket_ = tmp_->Join("run/slipstream.sock");
    containerd_socket_ = tmp_->Join("run/containerd.sock");
    hosts_dir_ = tmp_->Join("certs.d");

    auto reg = testkit::RegistryFixture::Start();
    ASSERT_TRUE(reg.ok()) << reg.status();
    registry_ = std::move(*reg);
    ASSERT_NO_FATAL_FAILURE(WriteHostsToml());
    ASSERT_NO_FATAL_FAILURE(PushPause());
    ASSERT_NO_FATAL_FAILURE(PushImages());
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

  // containerd's CRI and slipstreamd read the same hosts.toml: plain HTTP to the registry.
  void WriteHostsToml() {
    std::string dir = absl::StrCat(hosts_dir_, "/", registry_->host());
    ASSERT_TRUE(MakeDirs(dir).ok());
    std::string url = absl::StrCat("http://", registry_->host());
    ASSERT_TRUE(WriteFileAtomic(dir + "/hosts.toml",
                                absl::StrCat("server = \"", url, "\"\n\n[host.\"", url,
                                             "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"))
                    .ok());
  }

  // Pushes `layers` (directories) as an image with `entrypoint` and `cmd` under `name`;
  // returns the built image.
  testkit::BuiltImage Push(const std::vector<std::string>& layers,
                           const std::vector<std::string>& entrypoint,
                           const std::vector<std::string>& cmd, const std::string& name,
                           const std::string& work) {
    testkit::ImageSpec spec;
    for (const std::string& dir : layers) {
      spec.layers.push_back({.source_dir = dir, .tree = {.uid = 0, .gid = 0}});
    }
    spec.entrypoint = entrypoint;
    spec.cmd = cmd;
    spec.env = {"PATH=/bin"};
    auto built = testkit::BuildImage(spec, work);
    EXPECT_TRUE(built.ok()) << built.status();
    if (!built.ok()) return {};
    auto client = remote::RegistryClient::Create({});
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return {};
    auto ref = remote::Reference::Parse(name);
    EXPECT_TRUE(ref.ok());
    auto pushed = testkit::PushImage(**client, *built, *ref);
    EXPECT_TRUE(pushed.ok()) << pushed.status();
    return *built;
  }

  // The image under test has two layers (busybox and its applet links; a file only the second
  // layer has). The pause image is busybox sleeping forever, in a layer of its own content so

  // A layer directory with busybox and links for `applets` under bin/.
  std::string BusyboxLayer(const std::string& name, const std::vector<std::string>& applets) {
    auto data = ReadFileToString(kBusybox, 64 << 20);
    EXPECT_TRUE(data.ok());
    std::string dir = tmp_->Join(name);
    EXPECT_TRUE(MakeDirs(dir + "/bin").ok());
    EXPECT_TRUE(WriteFileAtomic(dir + "/bin/busybox", data.ok() ? *data : "", 0755).ok());
    for (const std::string& applet : applets) {
      EXPECT_EQ(::symlink("busybox", (dir + "/bin/" + applet).c_str()), 0);
    }
    return dir;
  }

  // The sandbox image: busybox sleeping forever, in a layer of its own content (an /etc/pause
  // file) so that its snapshot is told apart from the image's.
  void PushPause() {
    std::string pause = BusyboxLayer("pause", {"sleep"});
    ASSERT_TRUE(MakeDirs(pause + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(pause + "/etc/pause", "pause image\n").ok());
    pause_ref_ = absl::StrCat(registry_->host(), "/slipstream/pause:1");
    testkit::BuiltImage built =
        Push({pause}, {"/bin/sleep", "2147483647"}, {}, pause_ref_, tmp_->Join("pause-layout"));
    ASSERT_EQ(built.layers.size(), 1u);
  }

  void StartSlipstreamd() {
    std::string config = tmp_->Join("slipstreamd.toml");
    ASSERT_TRUE(WriteFileAtomic(config, absl::StrCat(slipstreamd_config_, "[registry]\nhosts_dir = \"",
                                                     hosts_dir_, "\"\n"))
                    .ok());
    auto child = ChildProcess::Start({SLIPSTREAMD_PATH, "--config", config, "--root", slip_root_,
                                      "--address", slip_socket_, "--log-level", "debug"},
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

  // Stops and starts slipstreamd, then waits until containerd's proxy connection is back:
  // containerd redials a restarted snapshotter with gRPC backoff (a few seconds), and a call
  // made before that fails with "connection refused" although the new daemon is serving.
  void RestartSlipstreamd() {
    slipstreamd_->Stop();
    slipstreamd_.reset();
    ASSERT_NO_FATAL_FAILURE(StartSlipstreamd());
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      auto r = RunSubprocess({"ctr", "-a", containerd_socket_, "-n", "k8s.io", "snapshots",
                              "--snapshotter", "slipstream", "ls"},
                             {.timeout = absl::Seconds(30)});
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->exit_code == 0) return;
      ASSERT_LT(absl::Now(), deadline) << "containerd never reconnected:\n" << r->stderr_data;
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  void StartContainerd() {
    std::string cni_conf = tmp_->Join("cni");
    ASSERT_TRUE(MakeDirs(cni_conf).ok());
    std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
    std::string text = absl::StrCat(
        "version = 2\n",
        "root = \"", tmp_->Join("containerd-root"), "\"\n",
        "state = \"", tmp_->Join("containerd-state"), "\"\n",
        "[grpc]\n  address = \"", containerd_socket_, "\"\n",
        "[ttrpc]\n  address = \"", tmp_->Join("run/containerd.sock.ttrpc"), "\"\n",
        "[proxy_plugins]\n  [proxy_plugins.slipstream]\n    type = \"snapshot\"\n",
        "    address = \"", slip_socket_, "\"\n",
        cri, "]\n",
        "  sandbox_image = \"", pause_ref_, "\"\n",
        "  restrict_oom_score_adj = true\n",
        // Port 0: no fixed port, so several containerds can run at once.
        "  stream_server_address = \"127.0.0.1\"\n",
        "  stream_server_port = \"0\"\n",
        cri, ".containerd]\n",
        "    snapshotter = \"slipstream\"\n",
        // In 1.6 this key lives in the .containerd table (ignored silently elsewhere).
        "    disable_snapshot_annotations = false\n",
        cri, ".cni]\n",
        "    bin_dir = \"/usr/lib/cni\"\n",
        "    conf_dir = \"", cni_conf, "\"\n",
        cri, ".registry]\n",
        "    config_path = \"", hosts_dir_, "\"\n");
    std::string config = tmp_->Join("containerd.toml");
    ASSERT_TRUE(WriteFileAtomic(config, text).ok());
    auto child = ChildProcess::Start({"containerd", "--config", config, "--log-level", "debug"},
                                     tmp_->Join("containerd.log"));
    ASSERT_TRUE(child.ok()) << child.status();
    containerd_ = std::make_unique<ChildProcess>(std::move(*child));
    // Ready when the CRI plugin answers, not just containerd's own API.
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (true) {
      auto r = RunSubprocess({SLIPSTREAM_CLI_PATH, "cri", "images", "--endpoint",
                              containerd_socket_},
                             {.timeout = absl::Seconds(10)});
      if (r.ok() && r->exit_code == 0) break;
      ASSERT_TRUE(containerd_->Running()) << "containerd exited";
      ASSERT_LT(absl::Now(), deadline) << "containerd's CRI never answered: "
                                       << (r.ok() ? r->stderr_data : r.status().ToString());
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  // Runs `slipstream cri ARGS... --endpoint SOCK [-- AFTER...]`.
  SubprocessResult Cli(std::vector<std::string> args, const std::vector<std::string>& after = {}) {
    std::vector<std::string> argv = {SLIPSTREAM_CLI_PATH, "cri"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--endpoint");
    argv.push_back(containerd_socket_);
    if (!after.empty()) {
      argv.push_back("--");
      argv.insert(argv.end(), after.begin(), after.end());
    }
    auto r = RunSubprocess(argv, {.timeout = absl::Seconds(240)});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : SubprocessResult{};
  }

  // Runs `ctr -a SOCK -n k8s.io ARGS...`; returns stdout, failing the test on a non-zero exit.
  std::string Ctr(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"ctr", "-a", containerd_socket_, "-n", "k8s.io"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = RunSubprocess(argv, {.timeout = absl::Seconds(180)});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->exit_code, 0) << absl::StrJoin(argv, " ") << "\n"
                               << r->stdout_data << r->stderr_data;
    return r->stdout_data;
  }

  // containerd's view of slipstream's snapshots in k8s.io: one line per snapshot.
  std::string Snapshots() { return Ctr({"snapshots", "--snapshotter", "slipstream", "ls"}); }

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

  // The chainIDs of the image under test: containerd's names of its committed snapshots.
  std::vector<std::string> ChainIds() {
    std::vector<Digest> diff_ids;
    for (const testkit::BuiltLayer& l : image_.layers) diff_ids.push_back(l.diff_id);
    std::vector<std::string> out;
    for (const Digest& d : plugin::ChainIds(diff_ids)) out.push_back(d.str());
    return out;
  }

  const std::string tmp_prefix_;
  const std::string slipstreamd_config_;  // TOML lines before [registry]
  std::unique_ptr<TempDir> tmp_;
  std::string slip_root_, slip_socket_, containerd_socket_, hosts_dir_, ref_, pause_ref_;
  testkit::BuiltImage image_;
  std::unique_ptr<testkit::RegistryFixture> registry_;
  std::unique_ptr<ChildProcess> slipstreamd_;
  std::unique_ptr<ChildProcess> containerd_;
};

}  // namespace slipstream::it
