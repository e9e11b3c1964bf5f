// SPDX-License-Identifier: Apache-2.0
// The files in deploy/ are what operators install: they must parse, hold the defaults they
// claim, and pass `slipstream doctor`'s containerd config checks.
#include <string>
#include <vector>

#include "cmd/cli/doctor.h"
#include "cmd/daemon/config.h"
#include "common/fd.h"
#include "gtest/gtest.h"

namespace slipstream {
namespace {

std::string Deploy(const std::string& name) {
  auto text = ReadFileToString(std::string(SLIPSTREAM_SOURCE_DIR) + "/deploy/" + name, 1 << 20);
  EXPECT_TRUE(text.ok()) << text.status();
  return text.ok() ? *text : "";
}

TEST(DeployTest, DaemonConfigIsTheDefaults) {
  auto parsed = daemon::ParseConfig(Deploy("config.toml"), "deploy/config.toml");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  const daemon::DaemonConfig defaults;
  EXPECT_EQ(parsed->root, defaults.root);
  EXPECT_EQ(parsed->address, defaults.address);
  EXPECT_EQ(parsed->default_mode, defaults.default_mode);
  EXPECT_EQ(parsed->engine.max_connections, defaults.engine.max_connections);
  EXPECT_EQ(parsed->engine.chunk_size, defaults.engine.chunk_size);
  EXPECT_EQ(parsed->engine.on_failure, defaults.engine.on_failure);
  EXPECT_EQ(parsed->engine.use_soci_index, defaults.engine.use_soci_index);
  EXPECT_EQ(parsed->cache_size, defaults.cache_size);
  EXPECT_EQ(parsed->hosts_dir, defaults.hosts_dir);
  EXPECT_EQ(parsed->registry_max_attempts, defaults.registry_max_attempts);
  EXPECT_EQ(parsed->registry_retry_max_total, defaults.registry_retry_max_total);
  EXPECT_EQ(parsed->registry_stall_timeout, defaults.registry_stall_timeout);
  EXPECT_EQ(parsed->lazy_background_threads, defaults.lazy_background_threads);
  EXPECT_EQ(parsed->lazy_read_ahead_spans, defaults.lazy_read_ahead_spans);
  EXPECT_EQ(parsed->lazy_read_ahead_threads, defaults.lazy_read_ahead_threads);
  EXPECT_EQ(parsed->lazy_kernel_read_ahead, defaults.lazy_kernel_read_ahead);
  EXPECT_EQ(parsed->lazy_mount_dir, defaults.lazy_mount_dir);
  EXPECT_EQ(parsed->lazy_keep_mounts_on_exit, defaults.lazy_keep_mounts_on_exit);
  EXPECT_EQ(parsed->lazy_holder_socket, defaults.lazy_holder_socket);
  EXPECT_EQ(parsed->metrics_address, defaults.metrics_address);
}

TEST(DeployTest, ContainerdSnippetsPassTheDoctor) {
  const cli::DoctorOptions o;  // default socket path, as the snippets use
  struct Case {
    std::string file;
    cli::ContainerdVersion version;
  };
  for (const Case& c : {Case{"containerd/config-1.6.toml", {1, 6}},
                        Case{"containerd/config-1.7.toml", {1, 7}},
                        Case{"containerd/config-2.x.toml", {2, 1}},
                        Case{"containerd/config-2.x.toml", {2, 2}}}) {
    SCOPED_TRACE(c.file);
    auto results = cli::CheckContainerdConfig(Deploy(c.file), o, c.version);
    ASSERT_GE(results.size(), 4u);
    for (const cli::CheckResult& r : results) {
      EXPECT_EQ(r.level, cli::CheckLevel::kOk) << r.name << ": " << r.detail;
    }
  }
}

// config-2.x.toml targets 2.1+'s transfer-service pulls; 2.0 needs its commented-out
// disable_snapshot_annotations line, as the file says.
TEST(DeployTest, Containerd20NeedsTheCommentedAnnotationsLine) {
  std::string text = Deploy("containerd/config-2.x.toml");
  auto annotations = [](const std::vector<cli::CheckResult>& results) {
    for (const cli::CheckResult& r : results) {
      if (r.name == "containerd config: snapshot annotations") return r.level;
    }
    return cli::CheckLevel::kWarn;
  };
  EXPECT_EQ(annotations(cli::CheckContainerdConfig(text, {}, {2, 0})), cli::CheckLevel::kFail);
  const std::string commented = "# disable_snapshot_annotations = false";
  const size_t at = text.find(commented);
  ASSERT_NE(at, std::string::npos);
  text.replace(at, commented.size(), "disable_snapshot_annotations = false");
  for (cli::ContainerdVersion v : {cli::ContainerdVersion{2, 0}, cli::ContainerdVersion{2, 1}}) {
    auto results = cli::CheckContainerdConfig(text, {}, v);
    for (const cli::CheckResult& r : results) {
      EXPECT_EQ(r.level, cli::CheckLevel::kOk) << v.minor << " " << r.name << ": " << r.detail;
    }
  }
}

TEST(DeployTest, SystemdUnitKeepsHelpersAliveAcrossRestarts) {
  const std::string unit = Deploy("slipstreamd.service");
  EXPECT_NE(unit.find("KillMode=process"), std::string::npos);
  EXPECT_NE(unit.find("ExecStart=/usr/bin/slipstreamd --config /etc/slipstream/config.toml"),
            std::string::npos);
  EXPECT_NE(unit.find("LimitNOFILE=20000"), std::string::npos);
}

}  // namespace
}  // namespace slipstream
