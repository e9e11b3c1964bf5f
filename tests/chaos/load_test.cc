// SPDX-License-Identifier: Apache-2.0
// Concurrent CRI load on one slipstreamd (parallel mode, containerd 1.6 CRI): 8 `slipstream
// cri pull`s at once of 4 images that share a base of 2 layers and have 1 or 2 layers of
// their own (each image pulled twice at the same time), 3 rounds, every image removed (and
// its snapshots garbage-collected) between rounds. slipstreamd reaches the registry through
// a FaultProxy (no faults) whose request log gives the bytes asked for per blob, Range
// requests included. Asserted: every pull succeeds; every layer blob, shared ones included,
// is fetched exactly once per round (bytes asked for == blob size); slipstreamd's RSS and
// open descriptors, sampled every 50 ms, stay under bounds (peaks printed as
// `[chaos] peak rss=... fds=...`).
#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testkit/fault_proxy.h"
#include "tests/integration/cri_env.h"

namespace slipstream::chaos {
namespace {

constexpr int kImages = 4;
constexpr int kPullsPerImage = 2;
constexpr int kRounds = 3;
// Bounds with margin: measured peaks are in docs/reliability.md ("Crashes and load").
constexpr int64_t kMaxRssKiB = 256 << 10;
constexpr int kMaxFds = 256;

// VmRSS of `pid` in KiB, or -1.
int64_t RssKiB(pid_t pid) {
  auto status = ReadFileToString(absl::StrCat("/proc/", pid, "/status"), 1 << 20);
  if (!status.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (!absl::ConsumePrefix(&line, "VmRSS:")) continue;
    int64_t kib = -1;
    line = absl::StripAsciiWhitespace(line);
    (void)absl::SimpleAtoi(line.substr(0, line.find(' ')), &kib);
    return kib;
  }
  return -1;
}

int FdCount(pid_t pid) {
  DIR* d = ::opendir(absl::StrCat("/proc/", pid, "/fd").c_str());
  if (d == nullptr) return -1;
  int n = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n;
}

// Samples a process's RSS and descriptor count every 50 ms until destroyed; keeps the peaks.
class PeakSampler {
 public:
  explicit PeakSampler(pid_t pid) : pid_(pid), thread_([this] { Run(); }) {}
  ~PeakSampler() {
    stop_.store(true);
    thread_.join();
  }
  int64_t peak_rss_kib() const { return peak_rss_.load(); }
  int peak_fds() const { return peak_fds_.load(); }
  int samples() const { return samples_.load(); }

 private:
  void Run() {
    while (!stop_.load()) {
      int64_t rss = RssKiB(pid_);
      int fds = FdCount(pid_);
      if (rss > peak_rss_.load()) peak_rss_.store(rss);
      if (fds > peak_fds_.load()) peak_fds_.store(fds);
      samples_.fetch_add(1);
      absl::SleepFor(absl::Milliseconds(50));  // the sampling period
    }
  }

  const pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> peak_rss_{0};
  std::atomic<int> peak_fds_{0};
  std::atomic<int> samples_{0};
  std::thread thread_;
};

// Bytes of blob `digest` asked for by successful GETs in `requests`: the Range lengths, or
// `size` for a GET without Range.
int64_t BytesAsked(const std::vector<testkit::ProxiedRequest>& requests, const Digest& digest,
                   int64_t size) {
  int64_t total = 0;
  for (const testkit::ProxiedRequest& r : requests) {
    if (r.method != "GET" || (r.status != 200 && r.status != 206)) continue;
    if (!absl::StrContains(r.target, absl::StrCat("/blobs/", digest.str()))) continue;
    absl::string_view range = r.range;
    int64_t first = 0, last = 0;
    if (range.empty()) {
      total += size;
    } else if (absl::ConsumePrefix(&range, "bytes=") && range.find('-') != absl::string_view::npos &&
               absl::SimpleAtoi(range.substr(0, range.find('-')), &first)) {
      absl::string_view end = range.substr(range.find('-') + 1);
      if (end.empty() || !absl::SimpleAtoi(end, &last) || last >= size) last = size - 1;
      total += last - first + 1;
    } else {
      ADD_FAILURE() << "unparsed Range: " << r.range;
    }
  }
  return total;
}

class LoadTest : public it::CriIntegrationTest {
 protected:
  LoadTest() : CriIntegrationTest("chaos-load-", "") {}

  void PushImages() override {
    std::string base1 = BusyboxLayer("base1", {"sh", "cat"});
    std::string base2 = tmp_->Join("base2");
    ASSERT_TRUE(MakeDirs(base2 + "/opt/base").ok());
    std::mt19937_64 rng(7);
    auto random = [&](int n) {
      std::string out(static_cast<size_t>(n), '\0');
      for (char& c : out) c = static_cast<char>(rng() & 0xff);
      return out;
    };
    ASSERT_TRUE(WriteFileAtomic(base2 + "/opt/base/data", random(2 << 20)).ok());
    for (int i = 0; i < kImages; ++i) {
      std::vector<std::string> layers = {base1, base2};
      // Images 0 and 1 have one layer of their own, 2 and 3 two.
      for (int own = 0; own < 1 + i / 2; ++own) {
        std::string dir = tmp_->Join(absl::StrCat("own-", i, "-", own));
        ASSERT_TRUE(MakeDirs(dir + "/etc").ok());
        ASSERT_TRUE(WriteFileAtomic(absl::StrCat(dir, "/etc/own", own), random(1 << 20)).ok());
        ASSERT_TRUE(WriteFileAtomic(dir + "/etc/hello.txt", absl::StrCat("image ", i, "\n")).ok());
        layers.push_back(dir);
      }
      refs_.push_back(absl::StrCat(registry_->host(), "/chaos/load", i, ":1"));
      images_.push_back(Push(layers, {}, {"/bin/sh"}, refs_.back(),
                             tmp_->Join(absl::StrCat("layout-", i))));
      ASSERT_EQ(images_.back().layers.size(), layers.size());
    }
    // From here on containerd and slipstreamd reach the registry through the proxy.
    auto proxy = testkit::FaultProxy::Start(registry_->host());
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
    std::string url = proxy_->url();
    ASSERT_TRUE(WriteFileAtomic(absl::StrCat(hosts_dir_, "/", registry_->host(), "/hosts.toml"),
                                absl::StrCat("server = \"", url, "\"\n\n[host.\"", url,
                                             "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"))
                    .ok());
  }

  void TearDown() override {
    CriIntegrationTest::TearDown();
    if (proxy_) proxy_->Stop();
  }

  // Removes every image and waits until containerd's GC removed their snapshots.
  void RemoveAll() {
    for (const std::string& ref : refs_) {
      SubprocessResult rmi = Cli({"rmi", ref});
      EXPECT_EQ(rmi.exit_code, 0) << rmi.stderr_data;
    }
    absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (SnapshotDirs() != 0) {
      ASSERT_LT(absl::Now(), deadline) << "snapshots not garbage-collected:\n" << Snapshots();
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  std::vector<std::string> refs_;
  std::vector<testkit::BuiltImage> images_;
  std::unique_ptr<testkit::FaultProxy> proxy_;
};

TEST_F(LoadTest, ConcurrentPullsOfImagesSharingLayers) {
  // Every distinct layer blob of the four images, with its size.
  std::map<std::string, std::pair<Digest, int64_t>> blobs;
  for (const testkit::BuiltImage& image : images_) {
    for (const testkit::BuiltLayer& l : image.layers) {
      blobs[l.descriptor.digest.str()] = {l.descriptor.digest, l.descriptor.size};
    }
  }
  ASSERT_EQ(blobs.size(), 2u + 1 + 1 + 2 + 2);

  PeakSampler sampler(slipstreamd_->pid());
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const size_t seen_before = proxy_->requests().size();
    std::vector<SubprocessResult> results(kImages * kPullsPerImage);
    std::vector<std::thread> pulls;
    absl::Time start = absl::Now();
    for (int p = 0; p < kImages * kPullsPerImage; ++p) {
      pulls.emplace_back([&, p] { results[p] = Cli({"pull", refs_[p % kImages]}); });
    }
    for (std::thread& t : pulls) t.join();
    const absl::Duration took = absl::Now() - start;
    for (int p = 0; p < kImages * kPullsPerImage; ++p) {
      EXPECT_EQ(results[p].exit_code, 0)
          << refs_[p % kImages] << "\n" << results[p].stdout_data << results[p].stderr_data;
    }
    std::vector<testkit::ProxiedRequest> all = proxy_->requests();
    std::vector<testkit::ProxiedRequest> requests(all.begin() + seen_before, all.end());
    int64_t total = 0;
    for (const auto& [name, blob] : blobs) {
      const int64_t asked = BytesAsked(requests, blob.first, blob.second);
      EXPECT_EQ(asked, blob.second) << "blob " << name << " fetched " << asked << " bytes of "
                                    << blob.second;
      total += asked;
    }
    // Every layer came down through slipstream: containerd's content store has none.
    const std::string content = Ctr({"content", "ls", "-q"});
    for (const auto& [name, blob] : blobs) {
      EXPECT_FALSE(absl::StrContains(content, name)) << "containerd fetched layer " << name;
    }
    // A container of each image reads its own layer's file.
    for (int i = 0; i < kImages; ++i) {
      EXPECT_EQ(Ctr({"run", "--rm", "--snapshotter", "slipstream", refs_[i],
                     absl::StrCat("load-", round, "-", i), "/bin/cat", "/etc/hello.txt"}),
                absl::StrCat("image ", i, "\n"));
    }
    std::cout << "[chaos] load round " << round << ": " << kImages * kPullsPerImage
              << " concurrent pulls in " << absl::FormatDuration(took) << ", " << total
              << " layer bytes fetched for " << blobs.size() << " blobs" << std::endl;
    ASSERT_NO_FATAL_FAILURE(RemoveAll());
  }
  std::cout << "[chaos] peak rss=" << sampler.peak_rss_kib() << " KiB fds="
            << sampler.peak_fds() << " (" << sampler.samples() << " samples every 50 ms)"
            << std::endl;
  EXPECT_GT(sampler.samples(), 10);
  EXPECT_GT(sampler.peak_rss_kib(), 0);
  EXPECT_LT(sampler.peak_rss_kib(), kMaxRssKiB);
  EXPECT_GT(sampler.peak_fds(), 0);
  EXPECT_LT(sampler.peak_fds(), kMaxFds);
}

}  // namespace
}  // namespace slipstream::chaos
