// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon/config.h"

#include <sys/stat.h>

#include "cmd/daemon/daemon.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"

namespace slipstream::daemon {
namespace {

TEST(DaemonConfigTest, EmptyFileGivesDefaults) {
  auto c = ParseConfig("", "empty.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/var/lib/slipstream");
  EXPECT_EQ(c->address, "/run/slipstream/slipstream.sock");
  EXPECT_EQ(c->default_mode, "parallel");
  EXPECT_EQ(c->engine.on_failure, "fail");
  EXPECT_FALSE(c->engine.use_soci_index);
}

TEST(DaemonConfigTest, EveryKeyParses) {
  auto c = ParseConfig(R"(
root = "/r"
address = "/s.sock"
log_level = "debug"
default_mode = "lazy"
[engine]
max_connections = 32
chunk_size = "4MiB"
unpack_workers = 3
on_failure = "fallback"
use_soci_index = true
[cache]
size = 1048576
[registry]
hosts_dir = "/h"
docker_config = "/d.json"
max_attempts = 2
retry_max_total = "5s"
stall_timeout = "1500ms"
[lazy]
background_threads = 0
read_ahead_spans = 8
read_ahead_threads = 3
kernel_read_ahead = "8MiB"
)",
                       "full.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->root, "/r");
  EXPECT_EQ(c->address, "/s.sock");
  EXPECT_EQ(c->log_level, log::Level::kDebug);
  EXPECT_EQ(c->default_mode, "lazy");
  EXPECT_EQ(c->engine.max_connections, 32);
  EXPECT_EQ(c->engine.chunk_size, 4 << 20);
  EXPECT_EQ(c->engine.unpack_workers, 3);
  EXPECT_EQ(c->engine.on_failure, "fallback");
  EXPECT_TRUE(c->engine.use_soci_index);
  EXPECT_EQ(c->cache_size, 1 << 20);
  EXPECT_EQ(c->hosts_dir, "/h");
  EXPECT_EQ(c->docker_config, "/d.json");
  EXPECT_EQ(c->registry_max_attempts, 2);
  EXPECT_EQ(c->registry_retry_max_total, absl::Seconds(5));
  EXPECT_EQ(c->registry_stall_timeout, absl::Milliseconds(1500));
  EXPECT_EQ(c->lazy_background_threads, 0);
  EXPECT_EQ(c->lazy_read_ahead_spans, 8);
  EXPECT_EQ(c->lazy_read_ahead_threads, 3);
  EXPECT_EQ(c->lazy_kernel_read_ahead, 8 << 20);
}

TEST(DaemonConfigTest, ErrorsNameTheKey) {
  struct Case {
    const char* text;
    const char* needle;
  };
  for (const Case& c : std::vector<Case>{
           {"root = 5", "key root"},
           {"[engine]\nchunk_size = \"lots\"", "key engine.chunk_size"},
           {"[engine]\nmax_connections = 0", "key engine.max_connections"},
           {"[engine]\non_failure = \"retry\"", "key engine.on_failure"},
           {"[engine]\nuse_soci_index = 1", "key engine.use_soci_index"},
           {"default_mode = \"fast\"", "key default_mode"},
           {"[cache]\nsise = 5", "unknown key cache.sise"},
           {"[registry]\nmax_attempts = 0", "key registry.max_attempts"},
           {"[registry]\nstall_timeout = \"0s\"", "key registry.stall_timeout"},
           {"[lazy]\nbackground_threads = -1", "key lazy.background_threads"},
           {"[lazy]\nread_ahead_threads = 0", "key lazy.read_ahead_threads"},
           {"[lazy]\nkernel_read_ahead = \"big\"", "key lazy.kernel_read_ahead"},
           {"log_level = \"loud\"", "key log_level"},
           {"root = ", "bad.toml:1"},
       }) {
    auto parsed = ParseConfig(c.text, "bad.toml");
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_TRUE(absl::IsInvalidArgument(parsed.status()));
    EXPECT_NE(parsed.status().message().find(c.needle), absl::string_view::npos)
        << parsed.status();
  }
  EXPECT_TRUE(absl::IsNotFound(LoadConfigFile("/nonexistent/slipstream.toml").status()));
}

TEST(DaemonConfigTest, ByteSizes) {
  EXPECT_EQ(*ParseByteSize("10GiB"), int64_t{10} << 30);
  EXPECT_EQ(*ParseByteSize("512k"), 512 << 10);
  EXPECT_EQ(*ParseByteSize("77"), 77);
  EXPECT_FALSE(ParseByteSize("-1").ok());
  EXPECT_FALSE(ParseByteSize("MiB").ok());
}

TEST(DaemonTest, ServesOnSocketAndRemovesItOnShutdown) {
  auto tmp = TempDir::Create();
  ASSERT_TRUE(tmp.ok());
  DaemonConfig config;
  config.root = tmp->Join("root");
  config.address = tmp->Join("run/slipstream.sock");
  auto d = Daemon::Start(config);
  ASSERT_TRUE(d.ok()) << d.status();
  struct stat st;
  ASSERT_EQ(::stat(config.address.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_TRUE((*d)->snapshotter().Prepare("k", "", {}).ok());
  (*d)->Shutdown();
  EXPECT_NE(::stat(config.address.c_str(), &st), 0);
  // A second daemon on the same root sees the snapshot (restart keeps state).
  auto again = Daemon::Start(config);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE((*again)->snapshotter().Stat("k").ok());
}

}  // namespace
}  // namespace slipstream::daemon
