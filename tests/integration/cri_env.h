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
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "fuse/durable_mount.h"
#include "gtest/gtest.h"
#include "plugin/remote_pull_provider.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "nlohmann/json.hpp"
#include "testkit/image_builder.h"
#include "testkit/net_fetch.h"
#include "testkit/prometheus_text.h"
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

// The containerd releases the CRI tests run: bookworm's 1.6 from /usr/bin, and the Debian
// .debs of 1.7 (trixie) and 2.1 (sid) that scripts/fetch-containerd.sh unpacks under
// /opt/slipstream-compat (or $SLIPSTREAM_COMPAT_DIR).
enum class ContainerdVersion {
  k1_6,
  k1_7,
  k2_1,          // CRI pulls through the transfer service (deploy config as shipped)
  k2_1LocalPull  // 2.1 with disable_snapshot_annotations = false: CRI's own pull path, as 2.0
};

// Where a release's binaries are and which deploy/containerd file configures it.
struct ContainerdRelease {
  std::string name;      // "1.6", "2.1 (local pull)": for messages and test names
  std::string bin_dir;   // holds containerd, ctr and containerd-shim-runc-v2
  std::string config;    // the template, relative to deploy/containerd/
  bool config_v3 = false;
};

inline ContainerdRelease ReleaseOf(ContainerdVersion v) {
  const char* env = getenv("SLIPSTREAM_COMPAT_DIR");
  const std::string compat = env != nullptr ? env : "/opt/slipstream-compat";
  switch (v) {
    case ContainerdVersion::k1_6:
      return {"1.6", "/usr/bin", "config-1.6.toml", false};
    case ContainerdVersion::k1_7:
      return {"1.7", compat + "/containerd-1.7/usr/bin", "config-1.7.toml", false};
    case ContainerdVersion::k2_1:
      return {"2.1", compat + "/containerd-2.1/usr/bin", "config-2.x.toml", true};
    case ContainerdVersion::k2_1LocalPull:
      return {"2.1 (local pull)", compat + "/containerd-2.1/usr/bin", "config-2.x.toml", true};
  }
  return {};
}

// The test's replacements for what the deploy configs point at on a node.
struct ContainerdTestPaths {
  std::string root, state, grpc_socket, ttrpc_socket, opt_dir;
  std::string slipstream_socket;  // replaces /run/slipstream/slipstream.sock
  std::string hosts_dir;          // replaces /etc/containerd/certs.d
  std::string cni_conf_dir;
  std::string sandbox_image;
};

// Puts `lines` at the top of TOML table `table` (its name as written in a header, without
// brackets): after the table's header when `text` has one, else in a new table at the end
// (valid TOML even when sub-tables of it come earlier).
inline std::string AddToTable(const std::string& text, const std::string& table,
                              const std::string& lines) {
  const std::string header = absl::StrCat("[", table, "]\n");
  size_t at = text.starts_with(header) ? 0 : text.find("\n" + header);
  if (at == std::string::npos) return absl::StrCat(text, "\n", header, lines);
  at = text.find('\n', at + (at == 0 ? 0 : 1)) + 1;
  return absl::StrCat(text.substr(0, at), lines, text.substr(at));
}

// Renders deploy/containerd/<release.config> (`template_text`) for a test: the production
// paths become `p`'s, and what only a test needs is added (its own root, state and sockets,
// the sandbox image, CNI dirs, restrict_oom_score_adj, a stream server on port 0, NRI off so
// that no fixed socket is shared). InvalidArgument when a production path survives, so a test
// never touches the node's containerd or slipstreamd.
inline absl::StatusOr<std::string> RenderContainerdConfig(ContainerdVersion v,
                                                          const std::string& template_text,
                                                          const ContainerdTestPaths& p) {
  const ContainerdRelease release = ReleaseOf(v);
  std::string text =
      absl::StrReplaceAll(template_text, {{"/run/slipstream/slipstream.sock", p.slipstream_socket},
                                          {"/etc/containerd/certs.d", p.hosts_dir}});
  if (v == ContainerdVersion::k2_1LocalPull) {
    const std::string commented = "  # disable_snapshot_annotations = false\n";
    size_t at = text.find(commented);
    if (at == std::string::npos) {
      return absl::InvalidArgumentError(
          "config-2.x.toml lost its commented disable_snapshot_annotations line");
    }
    text.replace(at, commented.size(), "  disable_snapshot_annotations = false\n");
  }
  // A value (a quoted string) starting at a node path; comments may name them.
  for (const char* production : {"/run/slipstream", "/etc/containerd", "/var/lib/containerd",
                                 "/run/containerd"}) {
    if (absl::StrContains(text, absl::StrCat("\"", production))) {
      return absl::InvalidArgumentError(absl::StrCat(
          release.config, " has a path under ", production, " the test does not replace"));
    }
  }
  // Top-level keys go first: before any table.
  text = absl::StrCat("root = \"", p.root, "\"\nstate = \"", p.state, "\"\n", text);
  text = AddToTable(text, "grpc", absl::StrCat("  address = \"", p.grpc_socket, "\"\n"));
  text = AddToTable(text, "ttrpc", absl::StrCat("  address = \"", p.ttrpc_socket, "\"\n"));
  text = AddToTable(text, "plugins.\"io.containerd.internal.v1.opt\"",
                    absl::StrCat("  path = \"", p.opt_dir, "\"\n"));
  const std::string cri = "plugins.\"io.containerd.grpc.v1.cri\"";
  // Port 0: no fixed port, so several containerds can run at once.
  const std::string stream =
      "  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n";
  if (!release.config_v3) {
    text = AddToTable(text, cri,
                      absl::StrCat("  sandbox_image = \"", p.sandbox_image, "\"\n",
                                   "  restrict_oom_score_adj = true\n", stream));
    text = AddToTable(text, cri + ".cni",
                      absl::StrCat("  bin_dir = \"/usr/lib/cni\"\n  conf_dir = \"", p.cni_conf_dir,
                                   "\"\n"));
  } else {
    const std::string runtime = "plugins.\"io.containerd.cri.v1.runtime\"";
    text = AddToTable(text, cri, stream);
    text = AddToTable(text, "plugins.\"io.containerd.cri.v1.images\".pinned_images",
                      absl::StrCat("  sandbox = \"", p.sandbox_image, "\"\n"));
    text = AddToTable(text, runtime, "  restrict_oom_score_adj = true\n");
    // 2.1 deprecates bin_dir for a list.
    text = AddToTable(text, runtime + ".cni",
                      absl::StrCat("  bin_dirs = [\"/usr/lib/cni\"]\n  conf_dir = \"",
                                   p.cni_conf_dir, "\"\n"));
    text = AddToTable(text, "plugins.\"io.containerd.nri.v1.nri\"", "  disable = true\n");
  }
  return text;
}

class CriIntegrationTest : public ::testing::Test {
 protected:
  // `tmp_prefix` names the test's temp dir; `slipstreamd_config` is TOML put before the
  // [registry] table of slipstreamd's config (e.g. `default_mode = "lazy"`).
  // `version` chooses containerd's binaries and deploy config (bookworm's 1.6 by default).
  CriIntegrationTest(std::string tmp_prefix, std::string slipstreamd_config,
                     ContainerdVersion version = ContainerdVersion::k1_6)
      : tmp_prefix_(std::move(tmp_prefix)),
        slipstreamd_config_(std::move(slipstreamd_config)),
        version_(version),
        release_(ReleaseOf(version)),
        ctr_(release_.bin_dir + "/ctr") {}

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
    // Lazy mode leaves its FUSE mount to slipstream-fuse-holder on exit: take both down.
    if (tmp_) {
      (void)fuse::TearDownKeptMount(slip_root_ + "/fuse", slip_root_ + "/fuse-holder.sock");
    }
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
    pause_image_ =
        Push({pause}, {"/bin/sleep", "2147483647"}, {}, pause_ref_, tmp_->Join("pause-layout"));
    ASSERT_EQ(pause_image_.layers.size(), 1u);
  }

  // The two-layer image most tests pull: busybox with `applets` linked, then /etc/hello.txt
  // ("from layer two\n") that only the second layer has. Sets ref_ and image_.
  void PushHelloImage(const std::string& name, const std::vector<std::string>& applets) {
    std::string l2 = tmp_->Join("l2");
    ASSERT_TRUE(MakeDirs(l2 + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(l2 + "/etc/hello.txt", "from layer two\n").ok());
    ref_ = absl::StrCat(registry_->host(), "/slipstream/", name);
    image_ = Push({BusyboxLayer("l1", applets), l2}, {}, {"/bin/sh"}, ref_, tmp_->Join("layout"));
    ASSERT_EQ(image_.layers.size(), 2u);
  }

  // containerd's content store has the config of image_ but none of its layer blobs: the
  // layers came down through slipstream, not containerd's fetch.
  void ExpectNoLayerBlobsInContentStore() {
    std::string content = Ctr({"content", "ls", "-q"});
    EXPECT_TRUE(absl::StrContains(content, image_.config_digest.str())) << content;
    for (const testkit::BuiltLayer& layer : image_.layers) {
      EXPECT_FALSE(absl::StrContains(content, layer.descriptor.digest.str()))
          << "containerd downloaded layer " << layer.descriptor.digest.str();
    }
  }

  // `slipstream index push REF --v1` (64 KiB spans; layers from `min_layer_size` bytes get a
  // zTOC) with an empty hosts dir (plain HTTP to 127.0.0.1) and `docker_config` (a file only
  // this command reads; "" = none). The image's manifest digest stays what containerd
  // resolves; the index is found through the referrers fallback tag.
  void PushSociIndex(const std::string& ref, int64_t min_layer_size,
                     const std::string& docker_config = "") {
    std::vector<std::string> argv = {
        SLIPSTREAM_CLI_PATH, "index", "push", ref, "--v1", "--span-size", "65536",
        "--min-layer-size", absl::StrCat(min_layer_size), "--hosts-dir", tmp_->Join("cli-hosts"),
        "--docker-config",
        docker_config.empty() ? tmp_->Join("cli-docker/config.json") : docker_config};
    auto r = RunSubprocess(argv, {.timeout = absl::Seconds(120)});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->exit_code, 0) << absl::StrJoin(argv, " ") << "\n"
                               << r->stdout_data << r->stderr_data;
    ASSERT_TRUE(absl::StrContains(r->stdout_data, "pushed SOCI index")) << r->stdout_data;
  }

  // `slipstream status` against slipstreamd (text form).
  SubprocessResult RunStatus() {
    auto r = RunSubprocess({SLIPSTREAM_CLI_PATH, "status", "--address", slip_socket_},
                           {.timeout = absl::Seconds(30)});
    EXPECT_TRUE(r.ok() && r->exit_code == 0)
        << (r.ok() ? r->stderr_data : r.status().ToString());
    return r.ok() ? *r : SubprocessResult{};
  }

  // Scrapes slipstreamd's /metrics (its address from `slipstream status --json`) and parses
  // it strictly; fails the test when either step fails.
  testkit::PrometheusScrape Scrape() {
    auto status = RunSubprocess({SLIPSTREAM_CLI_PATH, "status", "--address", slip_socket_,
                                 "--json"},
                                {.timeout = absl::Seconds(30)});
    EXPECT_TRUE(status.ok() && status->exit_code == 0)
        << (status.ok() ? status->stderr_data : status.status().ToString());
    if (!status.ok()) return {};
    auto doc = nlohmann::json::parse(status->stdout_data, nullptr, /*allow_exceptions=*/false);
    EXPECT_TRUE(doc.is_object() && doc.contains("metricsAddress")) << status->stdout_data;
    if (!doc.is_object() || !doc.contains("metricsAddress")) return {};
    auto got = testkit::Fetch(absl::StrCat("http://", doc["metricsAddress"].get<std::string>(),
                                           "/metrics"));
    EXPECT_TRUE(got.ok() && got->ok() && got->status == 200);
    if (!got.ok()) return {};
    auto scrape = testkit::ParsePrometheusText(got->body);
    EXPECT_TRUE(scrape.ok()) << scrape.status() << "\n" << got->body;
    return scrape.ok() ? *std::move(scrape) : testkit::PrometheusScrape{};
  }

  void StartSlipstreamd() {
    std::string config = tmp_->Join("slipstreamd.toml");
    // Every CRI test's slipstreamd serves /metrics on a free port (see Scrape()).
    ASSERT_TRUE(WriteFileAtomic(config, absl::StrCat(slipstreamd_config_,
                                                     "[metrics]\naddress = \"127.0.0.1:0\"\n",
                                                     "[registry]\nhosts_dir = \"", hosts_dir_,
                                                     "\"\n", slipstreamd_registry_config_))
                    .ok());
    auto child = ChildProcess::Start({SLIPSTREAMD_PATH, "--config", config, "--root", slip_root_,
                                      "--address", slip_socket_, "--log-level", "debug"},
                                     tmp_->Join("slipstreamd.log"), slipstreamd_env_);
    ASSERT_TRUE(child.ok()) << child.status();
    slipstreamd_ = std::make_unique<ChildProcess>(std::move(*child));
    absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!Exists(slip_socket_)) {
      ASSERT_TRUE(slipstreamd_->Running()) << "slipstreamd exited";
      ASSERT_LT(absl::Now(), deadline) << "slipstreamd socket never appeared";
      absl::SleepFor(absl::Milliseconds(20));
    }
  }

  // Stops and starts slipstreamd, then waits until containerd's proxy connection is back.
  void RestartSlipstreamd() {
    slipstreamd_->Stop();
    slipstreamd_.reset();
    ASSERT_NO_FATAL_FAILURE(StartSlipstreamd());
    ASSERT_NO_FATAL_FAILURE(WaitForContainerd());
  }

  // containerd redials a restarted snapshotter with gRPC backoff (about a second), and a call
  // made before that fails with "connection refused" although the new daemon is serving:
  // waits until containerd answers snapshot listings again and its proxy client is connected
  // to the new slipstreamd (WaitForRedial; a listing alone is answered from containerd's own
  // metadata and passes before the redial).
  void WaitForContainerd() {
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      auto r = RunSubprocess({ctr_, "-a", containerd_socket_, "-n", "k8s.io", "snapshots",
                              "--snapshotter", "slipstream", "ls"},
                             {.timeout = absl::Seconds(30)});
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->exit_code == 0) break;
      ASSERT_LT(absl::Now(), deadline) << "containerd never reconnected:\n" << r->stderr_data;
      absl::SleepFor(absl::Milliseconds(200));
    }
    ASSERT_NO_FATAL_FAILURE(WaitForRedial());
  }

  // Waits until some client is connected to the running slipstreamd: a connected unix socket
  // bound to slipstreamd's path (the daemon's end of an accepted connection) in
  // /proc/net/unix. Right after a (re)start only containerd connects. The daemon binds in a
  // private directory next to the socket and renames the socket into place
  // (plugin/service_server.cc); the kernel keeps the bound name.
  void WaitForRedial() {
    const std::string bind_prefix =
        absl::StrCat(slip_socket_.substr(0, slip_socket_.rfind('/')), "/.bind-");
    absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (true) {
      auto table = ReadFileToString("/proc/net/unix", 64 << 20);
      ASSERT_TRUE(table.ok()) << table.status();
      for (absl::string_view line : absl::StrSplit(*table, '\n')) {
        // "Num RefCount Protocol Flags Type St Inode Path"; St 03 = connected.
        std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
        if (f.size() == 8 && f[5] == "03" &&
            (f[7] == slip_socket_ || absl::StartsWith(f[7], bind_prefix))) {
          return;
        }
      }
      ASSERT_LT(absl::Now(), deadline) << "containerd never redialed " << slip_socket_;
      absl::SleepFor(absl::Milliseconds(50));
    }
  }

  // Starts the release's containerd on deploy/containerd/<its config>, rendered with the
  // test's paths (RenderContainerdConfig), and waits until its CRI plugin answers.
  void StartContainerd() {
    const std::string binary = release_.bin_dir + "/containerd";
    ASSERT_TRUE(Exists(binary)) << "containerd " << release_.name << " is missing (" << binary
                                << "): run scripts/setup.sh";
    std::string cni_conf = tmp_->Join("cni");
    ASSERT_TRUE(MakeDirs(cni_conf).ok());
    auto template_text = ReadFileToString(
        absl::StrCat(SLIPSTREAM_SOURCE_DIR, "/deploy/containerd/", release_.config), 1 << 20);
    ASSERT_TRUE(template_text.ok()) << template_text.status();
    auto text = RenderContainerdConfig(
        version_, *template_text,
        {.root = tmp_->Join("containerd-root"),
         .state = tmp_->Join("containerd-state"),
         .grpc_socket = containerd_socket_,
         .ttrpc_socket = tmp_->Join("run/containerd.sock.ttrpc"),
         .opt_dir = tmp_->Join("containerd-opt"),
         .slipstream_socket = slip_socket_,
         .hosts_dir = hosts_dir_,
         .cni_conf_dir = cni_conf,
         .sandbox_image = pause_ref_});
    ASSERT_TRUE(text.ok()) << text.status();
    std::string config = tmp_->Join("containerd.toml");
    ASSERT_TRUE(WriteFileAtomic(config, *text).ok());
    // The release's own shim (containerd-shim-runc-v2) is found through PATH.
    const char* path = getenv("PATH");
    auto child = ChildProcess::Start(
        {binary, "--config", config, "--log-level", "debug"}, tmp_->Join("containerd.log"),
        {{"PATH", absl::StrCat(release_.bin_dir, ":", path != nullptr ? path : "/usr/bin:/bin")}});
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
    std::vector<std::string> argv = {ctr_, "-a", containerd_socket_, "-n", "k8s.io"};
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
  std::string slipstreamd_config_;  // TOML lines before [registry]; PushImages() may add to it
  std::string slipstreamd_registry_config_;  // TOML lines added to slipstreamd's [registry]
  // Extra environment of the next slipstreamd started (e.g. SLIPSTREAM_CRASH_AT).
  std::map<std::string, std::string> slipstreamd_env_;
  const ContainerdVersion version_;
  const ContainerdRelease release_;
  const std::string ctr_;  // the release's own ctr
  std::unique_ptr<TempDir> tmp_;
  std::string slip_root_, slip_socket_, containerd_socket_, hosts_dir_, ref_, pause_ref_;
  testkit::BuiltImage image_;
  testkit::BuiltImage pause_image_;  // the sandbox image at pause_ref_
  std::unique_ptr<testkit::RegistryFixture> registry_;
  std::unique_ptr<ChildProcess> slipstreamd_;
  std::unique_ptr<ChildProcess> containerd_;
};

}  // namespace slipstream::it
