// SPDX-License-Identifier: Apache-2.0
// What the kill tests check after every SIGKILL of slipstreamd, on top of the shared CRI
// fixture (tests/integration/cri_env.h):
//   - every committed snapshot of a pulled image holds exactly its layer's files: the layer
//     blob is extracted with GNU tar (not slipstream's unpacker) and both trees are compared
//     entry by entry (type, permission bits, owner, sha256 of content or link target);
//   - no temp space is left under slipstreamd's root (the names are in LeftoverTemps);
//   - slipstreamd really died at the armed crash point (its log line), and recovered.
#pragma once

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "gtest/gtest.h"
#include "tests/integration/cri_env.h"

namespace slipstream::chaos {

// path (relative, "" for the root) -> "type mode uid:gid sha256-or-target".
using TreeFingerprint = std::map<std::string, std::string>;

// Walks `root` (following it if it is a symlink, as overlayfs does with a lower dir, but no
// link below it) and fingerprints every entry. The root's own mode is left out: tar does not
// carry it for a layer's root.
inline void FingerprintInto(const std::string& root, const std::string& rel,
                            TreeFingerprint* out) {
  const std::string path = rel.empty() ? root : absl::StrCat(root, "/", rel);
  struct stat st;
  int rc = rel.empty() ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st);
  ASSERT_EQ(rc, 0) << "stat " << path << ": " << strerror(errno);
  std::string desc;
  if (S_ISDIR(st.st_mode)) {
    desc = "dir";
  } else if (S_ISREG(st.st_mode)) {
    auto data = ReadFileToString(path, 256 << 20);
    ASSERT_TRUE(data.ok()) << data.status();
    desc = absl::StrCat("file ", AV(Sha256Of(*data).hex()));
  } else if (S_ISLNK(st.st_mode)) {
    char target[4096];
    ssize_t n = ::readlink(path.c_str(), target, sizeof(target));
    ASSERT_GT(n, 0) << "readlink " << path;
    desc = absl::StrCat("symlink ", std::string(target, static_cast<size_t>(n)));
  } else {
    desc = absl::StrCat("special ", st.st_mode & S_IFMT, " ", st.st_rdev);
  }
  if (!rel.empty()) {
    absl::StrAppend(&desc, " mode=", st.st_mode & 07777, " owner=", st.st_uid, ":", st.st_gid);
  }
  (*out)[rel] = desc;
  if (!S_ISDIR(st.st_mode)) return;
  DIR* dir = ::opendir(path.c_str());
  ASSERT_NE(dir, nullptr) << "opendir " << path;
  std::vector<std::string> names;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(dir);
  for (const std::string& name : names) {
    ASSERT_NO_FATAL_FAILURE(
        FingerprintInto(root, rel.empty() ? name : absl::StrCat(rel, "/", name), out));
  }
}

inline TreeFingerprint Fingerprint(const std::string& root) {
  TreeFingerprint out;
  FingerprintInto(root, "", &out);
  return out;
}

// The differences of two fingerprints, at most `max` lines ("" when equal).
inline std::string Diff(const TreeFingerprint& want, const TreeFingerprint& got, int max = 10) {
  std::string out;
  int n = 0;
  for (const auto& [path, desc] : want) {
    auto it = got.find(path);
    if (it == got.end()) {
      if (n++ < max) absl::StrAppend(&out, "  missing /", path, " (", desc, ")\n");
    } else if (it->second != desc) {
      if (n++ < max) absl::StrAppend(&out, "  /", path, ": want ", desc, ", got ", it->second, "\n");
    }
  }
  for (const auto& [path, desc] : got) {
    if (!want.contains(path) && n++ < max) absl::StrAppend(&out, "  extra /", path, " (", desc, ")\n");
  }
  if (n > max) absl::StrAppend(&out, "  ... ", n - max, " more\n");
  return out;
}

// The expected fingerprint of a built layer: its blob extracted by GNU tar into `scratch`.
inline TreeFingerprint ExpectedLayer(const testkit::BuiltLayer& layer, const std::string& scratch) {
  EXPECT_TRUE(MakeDirs(scratch).ok());
  auto r = RunSubprocess({"tar", "-xzf", layer.path, "-C", scratch, "--same-owner",
                          "--same-permissions", "--numeric-owner"},
                         {.timeout = absl::Seconds(60)});
  EXPECT_TRUE(r.ok() && r->exit_code == 0)
      << (r.ok() ? r->stderr_data : r.status().ToString());
  return Fingerprint(scratch);
}

// Temp space slipstreamd may leave behind, relative to its root: staging and removal dirs
// (snapshots/new-*, snapshots/rm-*), numeric snapshot dirs no snapshot names are not visible
// here (see the fingerprint check), unpacker output (*.partial-*), pull temp files
// (.slipstream-pull-*, normally unlinked at once) and chunk cache temp files (cache/tmp/*)
// of a process other than `live_pid`. The FUSE mount (fuse/) is not walked.
inline void FindTemps(const std::string& root, const std::string& rel, pid_t live_pid,
                      std::vector<std::string>* out) {
  const std::string path = rel.empty() ? root : absl::StrCat(root, "/", rel);
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return;
  std::vector<std::pair<std::string, bool>> entries;
  while (struct dirent* e = ::readdir(dir)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") entries.emplace_back(name, e->d_type == DT_DIR);
  }
  ::closedir(dir);
  for (const auto& [name, is_dir] : entries) {
    const std::string child = rel.empty() ? name : absl::StrCat(rel, "/", name);
    if (child == "fuse") continue;
    bool temp = absl::StrContains(name, ".slipstream-pull-") || absl::StrContains(name, ".partial-");
    if (rel == "snapshots" && (absl::StartsWith(name, "new-") || absl::StartsWith(name, "rm-"))) {
      temp = true;
    }
    if (rel == "cache/tmp" && !absl::StartsWith(name, absl::StrCat(live_pid, "-"))) temp = true;
    if (temp) {
      out->push_back(child);
      continue;
    }
    if (is_dir) FindTemps(root, child, live_pid, out);
  }
}

inline std::vector<std::string> LeftoverTemps(const std::string& root, pid_t live_pid) {
  std::vector<std::string> out;
  FindTemps(root, "", live_pid, &out);
  return out;
}

// Descriptors of process `pid` that point at pull temp files (unlinked or not).
inline std::vector<std::string> TempFds(pid_t pid) {
  std::vector<std::string> out;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    char target[4096];
    ssize_t n = ::readlink(absl::StrCat(dir, "/", e->d_name).c_str(), target, sizeof(target));
    if (n <= 0) continue;
    std::string t(target, static_cast<size_t>(n));
    if (absl::StrContains(t, ".slipstream-pull-") || absl::StrContains(t, ".partial-")) {
      out.push_back(t);
    }
  }
  ::closedir(d);
  return out;
}

// The seed of a randomized test: $SLIPSTREAM_CHAOS_SEED, else the clock. Printed, so a
// failing run can be repeated.
inline uint64_t ChaosSeed(const char* test) {
  uint64_t seed = 0;
  const char* env = getenv("SLIPSTREAM_CHAOS_SEED");
  if (env == nullptr || !absl::SimpleAtoi(env, &seed)) {
    seed = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  }
  std::cout << "[chaos] " << test << " seed=" << seed
            << " (repeat with SLIPSTREAM_CHAOS_SEED=" << seed << ")" << std::endl;
  return seed;
}

// SLIPSTREAM_CHAOS_LONG=1: more random kills per test (a documented long run, not CI's).
inline bool LongRun() {
  const char* env = getenv("SLIPSTREAM_CHAOS_LONG");
  return env != nullptr && std::string(env) == "1";
}

}  // namespace slipstream::chaos
