// SPDX-License-Identifier: Apache-2.0
// Lazy mode through the whole CRI path: the real containerd 1.6 with slipstreamd (configured
// with `default_mode = "lazy"`) as its proxy snapshotter and the CRI plugin on
// `snapshotter = "slipstream"` with snapshot annotations. The image has a small busybox layer
// and a big gzip layer with a v1 SOCI index built and pushed by the real `slipstream index
// push`. `slipstream cri pull` mounts the big layer through FUSE (snapshot labelled
// slipstream.io/mode=lazy, no layer blob in containerd's content store), `slipstream cri run`
// reads files of it, a restarted slipstreamd keeps serving it, and `slipstream cri rmi` lets
// containerd's GC remove the snapshots. Every image comes from a local registry on 127.0.0.1
// over plain HTTP.
//
// Not asserted: how many bytes the registry served. Background completion fetches the rest of
// the lazy layer right after it is mounted (and is not configurable from the TOML file), so a
// byte count would race with it.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/remote_pull_provider.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"

namespace slipstream {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBusybox[] = "/bin/busybox";  // from busybox-static: runs in an empty rootfs
// The big layer: kRandomFiles incompressible files and kTextFiles text files, ~9 MiB in all.
constexpr int kRandomFiles = 48;
constexpr int kRandomFileSize = 128 << 10;
constexpr int kTextFiles = 64;
constexpr int kTextLines = 2000;
// Between the busybox layer's compressed size (~1 MiB) and the big layer's (~6 MiB): only the
// big layer gets a zTOC.
constexpr int64_t kMinLayerSize = 3 << 20;

std::string Tail(const std::string& path) {
  auto text = ReadFileToString(path, 64 << 20);
  if (!text.ok()) return "<no log>";
  return text->size() > 20000 ? text->substr(text->size() - 20000) : *text;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

std::string RandomBytes(std::mt19937_64& rng, int size) {
  std::string out(static_cast<size_t>(size), '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

std::string TextFile(int n) {
  std::string out;
  for (int line = 0; line < kTextLines; ++line) {
    absl::StrAppend(&out, "file ", n, " line ", line, ": the quick brown fox jumps\n");
  }
  return out;
}

class LazyCriTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Exists(kBusybox)) << "install busybox-static (scripts/setup.sh)";
    auto tmp = TempDir::Create("lazy-cri-it-");
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
    ASSERT_NO_FATAL_FAILURE(PushImages());
    ASSERT_NO_FATAL_FAILURE(PushSociIndex());
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

  // The image under test: busybox with its applets, then the big layer under /big. The pause
  // image is busybox sleeping forever, in a layer of its own content.
  void PushImages() {
    auto data = ReadFileToString(kBusybox, 64 << 20);
    ASSERT_TRUE(data.ok());
    std::string l1 = tmp_->Join("l1");
    ASSERT_TRUE(MakeDirs(l1 + "/bin").ok());
    ASSERT_TRUE(WriteFileAtomic(l1 + "/bin/busybox", *data, 0755).ok());
    for (const char* applet : {"sh", "cat", "sha256sum"}) {
      ASSERT_EQ(::symlink("busybox", (l1 + "/bin/" + applet).c_str()), 0);
    }
    std::string big = tmp_->Join("big");
    ASSERT_TRUE(MakeDirs(big + "/big/bin").ok());
    ASSERT_TRUE(MakeDirs(big + "/big/text").ok());
    std::mt19937_64 rng(42);
    for (int i = 0; i < kRandomFiles; ++i) {
      std::string bytes = RandomBytes(rng, kRandomFileSize);
      random_sha256_.push_back(std::string(Sha256Of(bytes).hex()));
      ASSERT_TRUE(WriteFileAtomic(absl::StrCat(big, "/big/bin/r", i), bytes).ok());
    }
    for (int i = 0; i < kTextFiles; ++i) {
      ASSERT_TRUE(WriteFileAtomic(absl::StrCat(big, "/big/text/t", i), TextFile(i)).ok());
    }
    ref_ = absl::StrCat(registry_->host(), "/slipstream/lazy:1");
    image_ = Push({l1, big}, {}, {"/bin/sh"}, ref_, tmp_->Join("layout"));
    ASSERT_EQ(image_.layers.size(), 2u);
    ASSERT_LT(image_.layers[0].descriptor.size, kMinLayerSize);
    ASSERT_GT(image_.layers[1].descriptor.size, kMinLayerSize);

    std::string pause = tmp_->Join("pause");
    ASSERT_TRUE(MakeDirs(pause + "/bin").ok());
    ASSERT_TRUE(MakeDirs(pause + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(pause + "/bin/busybox", *data, 0755).ok());
    ASSERT_EQ(::symlink("busybox", (pause + "/bin/sleep").c_str()), 0);
    ASSERT_TRUE(WriteFileAtomic(pause + "/etc/pause", "pause image\n").ok());
    pause_ref_ = absl::StrCat(registry_->host(), "/slipstream/pause:1");
    testkit::BuiltImage built =
        Push({pause}, {"/bin/sleep", "2147483647"}, {}, pause_ref_, tmp_->Join("pause-layout"));
    ASSERT_EQ(built.layers.size(), 1u);
  }

  // `slipstream index push IMAGE --v1`: the image's manifest digest stays what containerd
  // resolves, the index is found through the referrers fallback tag. An empty hosts dir: the
  // CLI talks plain HTTP to 127.0.0.1 by default.
  void PushSociIndex() {
    std::vector<std::string> argv = {
        SLIPSTREAM_CLI_PATH, "index", "push", ref_, "--v1", "--span-size", "65536",
        "--min-layer-size", absl::StrCat(kMinLayerSize), "--hosts-dir", tmp_->Join("cli-hosts"),
        "--docker-config", tmp_->Join("docker/config.json")};
    auto r = RunSubprocess(argv, {.timeout = absl::Seconds(120)});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << absl::StrJoin(argv, " ") << "\n"
                               << r->stdout_data << r->stderr_data;
    EXPECT_THAT(r->stdout_data, HasSubstr("pushed SOCI index")) << r->stdout_data;
  }

  void StartSlipstreamd() {
    std::string config = tmp_->Join("slipstreamd.toml");
    ASSERT_TRUE(WriteFileAtomic(config, absl::StrCat("default_mode = \"lazy\"\n[registry]\n"
                                                     "hosts_dir = \"", hosts_dir_, "\"\n"))
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
        "  stream_server_address = \"127.0.0.1\"\n",
        "  stream_server_port = \"0\"\n",
        cri, ".containerd]\n",
        "    snapshotter = \"slipstream\"\n",
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

  // `cat /big/text/t<n>` inside a new container of the image; checks the whole text (a
  // mismatch reports sizes, not 100 KB of text).
  void ExpectText(int n) {
    SubprocessResult run = Cli({"run", ref_}, {"/bin/cat", absl::StrCat("/big/text/t", n)});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
    const std::string want = TextFile(n);
    EXPECT_TRUE(run.stdout_data == want)
        << "t" << n << ": got " << run.stdout_data.size() << " bytes, want " << want.size();
  }

  // `sha256sum FILE` inside a new container of the image; checks it against `want`.
  void ExpectSha256(const std::string& file, const std::string& want) {
    SubprocessResult run = Cli({"run", ref_}, {"/bin/sha256sum", file});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
    EXPECT_EQ(run.stdout_data, absl::StrCat(want, "  ", file, "\n"));
  }

  std::unique_ptr<TempDir> tmp_;
  std::string slip_root_, slip_socket_, containerd_socket_, hosts_dir_, ref_, pause_ref_;
  testkit::BuiltImage image_;
  std::vector<std::string> random_sha256_;  // hex sha256 of /big/bin/r<i>
  std::unique_ptr<testkit::RegistryFixture> registry_;
  std::unique_ptr<ChildProcess> slipstreamd_;
  std::unique_ptr<ChildProcess> containerd_;
};

TEST_F(LazyCriTest, PullRunRestartAndRemove) {
  // 1. CRI PullImage: the big layer is mounted lazily, the busybox layer pulled.
  SubprocessResult pull = Cli({"pull", ref_});
  ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
  EXPECT_THAT(pull.stdout_data, HasSubstr(absl::StrCat("Pulled ", ref_, " as sha256:")));

  const std::vector<std::string> chains = ChainIds();
  ASSERT_EQ(chains.size(), 2u);
  std::string small_info = Ctr({"snapshots", "--snapshotter", "slipstream", "info", chains[0]});
  EXPECT_THAT(small_info, Not(HasSubstr("\"slipstream.io/mode\": \"lazy\""))) << small_info;
  std::string big_info = Ctr({"snapshots", "--snapshotter", "slipstream", "info", chains[1]});
  EXPECT_THAT(big_info, HasSubstr("\"slipstream.io/mode\": \"lazy\"")) << big_info;
  EXPECT_THAT(big_info, HasSubstr("Committed")) << big_info;

  // containerd fetched the config (and manifest) but not a single layer blob.
  std::vector<std::string> blobs = absl::StrSplit(Ctr({"content", "ls", "-q"}), '\n');
  EXPECT_THAT(blobs, Contains(image_.config_digest.str()));
  for (const testkit::BuiltLayer& layer : image_.layers) {
    EXPECT_THAT(blobs, Not(Contains(layer.descriptor.digest.str())))
        << "containerd downloaded layer " << layer.descriptor.digest.str();
  }
  std::string log = Tail(tmp_->Join("slipstreamd.log"));
  EXPECT_THAT(log, HasSubstr("lazy pull: SOCI index found"));
  EXPECT_THAT(log, HasSubstr("lazy layer mounted"));

  // 2. Containers read files of the lazy layer: text and incompressible data.
  ExpectText(7);
  ExpectSha256("/big/bin/r13", random_sha256_[13]);

  // 3. A restarted slipstreamd serves the lazy layer again to a new pod.
  slipstreamd_->Stop();
  slipstreamd_.reset();
  ASSERT_NO_FATAL_FAILURE(StartSlipstreamd());
  EXPECT_THAT(Tail(tmp_->Join("slipstreamd.log")),
              HasSubstr("msg=\"lazy layers restored\" layers=1"));
  ExpectSha256(absl::StrCat("/big/bin/r", kRandomFiles - 1), random_sha256_[kRandomFiles - 1]);
  ExpectText(50);

  // 4. Removing the image lets containerd's GC remove its snapshots through slipstreamd;
  // only the pause image's layer stays.
  SubprocessResult rmi = Cli({"rmi", ref_});
  EXPECT_EQ(rmi.exit_code, 0) << rmi.stderr_data;
  EXPECT_THAT(Cli({"images"}).stdout_data, Not(HasSubstr(ref_)));
  absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (true) {
    std::string snapshots = Snapshots();
    bool any = false;
    for (const std::string& chain_id : chains) any |= absl::StrContains(snapshots, chain_id);
    if (!any && SnapshotDirs() == 1) break;
    ASSERT_LT(absl::Now(), deadline) << "snapshots not garbage-collected:\n" << snapshots;
    absl::SleepFor(absl::Milliseconds(200));
  }
}

}  // namespace
}  // namespace slipstream
