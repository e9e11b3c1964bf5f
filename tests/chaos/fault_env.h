// SPDX-License-Identifier: Apache-2.0
// What the chaos suite's registry-fault and disk-full tests share: a CRI bench
// (it::CriIntegrationTest) whose containerd and slipstreamd reach the registry through a
// testkit::FaultProxy, short retry and stall bounds for slipstreamd's registry client, and the
// checks every case ends with (no staging dir left, no temp file held open, a committed
// snapshot holds exactly the layer's files).
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "gtest/gtest.h"
#include "testkit/fault_proxy.h"
#include "tests/integration/cri_env.h"

namespace slipstream::chaos {

// slipstreamd's registry client in the fault tests: at most 4 tries of a request, all of them
// within 5 s, and a transfer without a byte for 2 s is aborted. A fault outlasting that
// budget must turn into an error within ~10 s, not the production minutes.
inline constexpr char kShortRetryToml[] =
    "max_attempts = 4\nretry_max_total = \"5s\"\nstall_timeout = \"2s\"\n";

// Names of the entries of `dir` (without "." and ".."); empty when it cannot be read.
inline std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
  }
  return out;
}

// Staging dirs of slipstream's snapshotter (<root>/snapshots/new-*): a layer being unpacked.
inline int StagingDirs(const std::string& slip_root) {
  int n = 0;
  for (const std::string& name : ListDir(slip_root + "/snapshots")) {
    if (absl::StartsWith(name, "new-")) ++n;
  }
  return n;
}

// Files `pid` holds open whose name says they are a pull's temp file (unlinked at creation:
// only an open fd keeps their blocks allocated).
inline int OpenPullTempFiles(pid_t pid) {
  int n = 0;
  const std::string fd_dir = absl::StrCat("/proc/", pid, "/fd");
  for (const std::string& fd : ListDir(fd_dir)) {
    char target[4096];
    ssize_t len = ::readlink((fd_dir + "/" + fd).c_str(), target, sizeof(target) - 1);
    if (len <= 0) continue;
    if (absl::StrContains(std::string(target, static_cast<size_t>(len)), ".slipstream-pull-")) {
      ++n;
    }
  }
  return n;
}

// Waits (at most `limit`) until slipstreamd `pid` holds no pull temp file and its root no
// staging dir; a failed pull may still be winding down its other layers when containerd
// gives up. Fails the test when they remain.
inline void ExpectTempSpaceReclaimed(pid_t pid, const std::string& slip_root,
                                     absl::Duration limit = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + limit;
  while (OpenPullTempFiles(pid) != 0 || StagingDirs(slip_root) != 0) {
    if (absl::Now() > deadline) {
      ADD_FAILURE() << "temp space not reclaimed: " << OpenPullTempFiles(pid)
                    << " pull temp files open, " << StagingDirs(slip_root) << " staging dirs";
      return;
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
}

// Calls `look` (which takes a fresh look at containerd's snapshot list and slipstreamd's
// snapshot dirs and says whether they agree) until it returns true, for at most `limit`.
// containerd drops a failed pull's snapshots from its list at once but removes them from
// slipstreamd in its garbage collector a moment later: the caller checks the last look.
inline void LookUntilAgreed(const std::function<bool()>& look,
                            absl::Duration limit = absl::Seconds(20)) {
  const absl::Time deadline = absl::Now() + limit;
  while (!look() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(100));
}

// One file of a layer and the sha256 it must have.
struct ExpectedFile {
  std::string path;  // relative to the layer root
  std::string sha256_hex;
};

// The snapshot dirs (<root>/snapshots/<id>/fs) whose `marker` file holds `marker_text`.
inline std::vector<std::string> SnapshotsWithMarker(const std::string& slip_root,
                                                    const std::string& marker,
                                                    const std::string& marker_text) {
  std::vector<std::string> out;
  for (const std::string& id : ListDir(slip_root + "/snapshots")) {
    if (absl::StartsWith(id, "new-")) continue;  // staging: counted by StagingDirs
    const std::string fs = absl::StrCat(slip_root, "/snapshots/", id, "/fs");
    auto text = ReadFileToString(fs + "/" + marker, 1 << 20);
    if (text.ok() && *text == marker_text) out.push_back(fs);
  }
  return out;
}

// Every file of `files` under `fs` hashes right. Returns how many did not (and fails).
inline int CheckFiles(const std::string& fs, const std::vector<ExpectedFile>& files) {
  int wrong = 0;
  for (const ExpectedFile& f : files) {
    auto data = ReadFileToString(fs + "/" + f.path, 256 << 20);
    if (!data.ok()) {
      ADD_FAILURE() << fs << "/" << f.path << ": " << data.status();
      ++wrong;
      continue;
    }
    std::string got(Sha256Of(*data).hex());
    if (got != f.sha256_hex) {
      ADD_FAILURE() << fs << "/" << f.path << ": sha256 " << got << ", want " << f.sha256_hex;
      ++wrong;
    }
  }
  return wrong;
}

// A CRI bench whose registry traffic (containerd's and slipstreamd's) goes through a
// FaultProxy: the hosts.toml both read names the proxy as the registry's server. Images are
// pushed straight to the registry. Derived tests push in PushImages() and call
// RouteThroughProxy() at its end.
class FaultCriTest : public it::CriIntegrationTest {
 protected:
  FaultCriTest(std::string tmp_prefix, std::string slipstreamd_config)
      : CriIntegrationTest(std::move(tmp_prefix), std::move(slipstreamd_config)) {
    slipstreamd_registry_config_ = kShortRetryToml;
  }

  void TearDown() override {
    CriIntegrationTest::TearDown();
    if (proxy_) proxy_->Stop();
  }

  // Starts the proxy and points hosts.toml at it (before the daemons start).
  void RouteThroughProxy() {
    auto p = testkit::FaultProxy::Start(registry_->host());
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = *std::move(p);
    const std::string dir = absl::StrCat(hosts_dir_, "/", registry_->host());
    ASSERT_TRUE(WriteFileAtomic(dir + "/hosts.toml",
                                absl::StrCat("server = \"", proxy_->url(), "\"\n\n[host.\"",
                                             proxy_->url(),
                                             "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"))
                    .ok());
  }

  std::unique_ptr<testkit::FaultProxy> proxy_;
};

}  // namespace slipstream::chaos
