// SPDX-License-Identifier: Apache-2.0
// Registry faults during lazy reads: containerd 1.6's CRI plugin pulls an image with a SOCI
// index through slipstreamd (default_mode = "lazy", background completion off, so that only
// reads fetch), which mounts its big layer through FUSE. Then files of the mounted layer are
// read while a FaultProxy in front of the registry drops, stalls, truncates, refuses,
// corrupts or throttles the layer's Range GETs. Each case reads a file of its own, 2 MiB of
// compressed layer away from the others' (more than a chunk-cache chunk plus readahead), so
// that its read reaches the registry. Outcome per case, asserted: the read returns the right
// bytes after retries, or fails with EIO within a time bound; never a wrong byte. After each
// case the faults go and the same file reads right.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "testkit/fault_proxy.h"
#include "tests/chaos/fault_env.h"

namespace slipstream::chaos {
namespace {

using testkit::Fault;

constexpr int kFileSize = 128 << 10;  // incompressible: ~128 KiB of compressed layer each
constexpr int kFilesPerCase = 16;     // 2 MiB of compressed layer between two cases' files
// Between the busybox layer's compressed size (~1 MiB) and the big layer's: only the big
// layer gets a zTOC.
constexpr int64_t kMinLayerSize = 3 << 20;

struct LazyCase {
  std::string name;
  std::vector<Fault> faults;  // On("GET", <big layer blob path>) is added by the test
  enum Outcome { kOk, kEio, kOkOrEio } outcome;
  absl::Duration bound;
};

std::vector<LazyCase> Cases() {
  const absl::Duration ok = absl::Seconds(20);
  const absl::Duration fail = absl::Seconds(20);
  return {
      {"drop-at-0-x1", {Fault::DropAfter(0)}, LazyCase::kOk, ok},
      {"drop-mid-x2", {Fault::DropAfter(40 << 10).Times(2)}, LazyCase::kOk, ok},
      {"truncate-mid-x1", {Fault::TruncateAfter(10 << 10)}, LazyCase::kOk, ok},
      {"stall-1s-x1", {Fault::StallAfter(16 << 10, absl::Seconds(1))}, LazyCase::kOk, ok},
      {"stall-forever-x1", {Fault::StallAfter(16 << 10)}, LazyCase::kOk, ok},
      {"503-x3", {Fault::Status(503).Times(3)}, LazyCase::kOk, ok},
      {"429-retry-after-1", {Fault::Status(429, "1")}, LazyCase::kOk, ok},
      {"throttle-1MiBps", {Fault::Throttle(1 << 20).Times(-1)}, LazyCase::kOk, ok},
      {"503-all", {Fault::Status(503).Times(-1)}, LazyCase::kEio, fail},
      {"drop-at-0-all", {Fault::DropAfter(0).Times(-1)}, LazyCase::kEio, fail},
      // Every fetch the read needs (a span run and readahead) gives up after its own budget.
      {"stall-forever-all", {Fault::StallAfter(0).Times(-1)}, LazyCase::kEio,
       absl::Seconds(40)},
      // One corrupted byte in a chunk-cache chunk: EIO when it lies in a span the read decodes,
      // success when only a neighbouring span (of another file) holds it. Never wrong bytes.
      {"corrupt-x1", {Fault::CorruptAt(5000)}, LazyCase::kOkOrEio, fail},
      {"corrupt-all", {Fault::CorruptAt(70000, 0x40).Times(-1)}, LazyCase::kEio, fail},
  };
}

// Reads the whole file at `path`; on failure returns the errno of the failing call.
struct ReadResult {
  std::string data;
  int error = 0;
};
ReadResult ReadAll(const std::string& path) {
  ReadResult r;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    r.error = errno;
    return r;
  }
  char buf[64 << 10];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      r.error = errno;
      break;
    }
    if (n == 0) break;
    r.data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return r;
}

class FaultLazyTest : public FaultCriTest {
 protected:
  FaultLazyTest()
      : FaultCriTest("chaos-fault-lazy-",
                     "default_mode = \"lazy\"\n[lazy]\nbackground_threads = 0\n") {}

  // Busybox, then the big layer of kFilesPerCase files per case (and as many again at the
  // end), then its SOCI index (64 KiB spans) pushed by the real `slipstream index push`.
  void PushImages() override {
    const std::string l1 = BusyboxLayer("l1", {"sh", "cat"});
    const std::string big = tmp_->Join("big");
    ASSERT_TRUE(MakeDirs(big + "/big").ok());
    std::mt19937_64 rng(17);
    const int files = static_cast<int>(Cases().size() + 1) * kFilesPerCase;
    for (int i = 0; i < files; ++i) {
      std::string bytes(kFileSize, '\0');
      for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
      sha256_.push_back(std::string(Sha256Of(bytes).hex()));
      ASSERT_TRUE(WriteFileAtomic(absl::StrFormat("%s/big/r%03d", big, i), bytes).ok());
    }
    ref_ = absl::StrCat(registry_->host(), "/chaos/lazy:1");
    image_ = Push({l1, big}, {}, {"/bin/sh"}, ref_, tmp_->Join("layout"));
    ASSERT_EQ(image_.layers.size(), 2u);
    ASSERT_GT(image_.layers[1].descriptor.size, kMinLayerSize);
    ASSERT_NO_FATAL_FAILURE(PushSociIndex(ref_, kMinLayerSize));
    ASSERT_NO_FATAL_FAILURE(RouteThroughProxy());
  }

  std::vector<std::string> sha256_;  // hex sha256 of /big/r<i>
};

TEST_F(FaultLazyTest, ReadsRetryOrFailWithEioNeverWrongBytes) {
  SubprocessResult pull = Cli({"pull", ref_});
  ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
  const std::vector<std::string> chains = ChainIds();
  ASSERT_EQ(chains.size(), 2u);
  const std::string info = Ctr({"snapshots", "--snapshotter", "slipstream", "info", chains[1]});
  ASSERT_TRUE(absl::StrContains(info, "\"slipstream.io/mode\": \"lazy\"")) << info;
  const std::string layer_root =
      absl::StrCat(slip_root_, "/fuse/", chains[1].substr(chains[1].find(':') + 1), "/big");
  const Digest& blob = image_.layers[1].descriptor.digest;

  const std::vector<LazyCase> cases = Cases();
  std::string table;
  for (size_t i = 0; i < cases.size(); ++i) {
    const LazyCase& c = cases[i];
    SCOPED_TRACE(c.name);
    const int file = static_cast<int>(i) * kFilesPerCase + kFilesPerCase / 2;
    const std::string path = absl::StrFormat("%s/r%03d", layer_root, file);
    std::vector<testkit::FaultId> ids;
    for (Fault f : c.faults) ids.push_back(proxy_->Add(f.On("GET", "/blobs/" + blob.str())));

    const absl::Time start = absl::Now();
    ReadResult got = ReadAll(path);
    const absl::Duration took = absl::Now() - start;
    int hits = 0;
    for (testkit::FaultId id : ids) hits += proxy_->hits(id);
    proxy_->ClearFaults();

    EXPECT_GT(hits, 0) << "the read never reached the faulty registry";
    EXPECT_LT(took, c.bound);
    if (got.error == 0) {
      // Never a wrong byte, whatever the case expected.
      EXPECT_EQ(std::string(Sha256Of(got.data).hex()), sha256_[file]) << "WRONG BYTES SERVED";
    }
    if (c.outcome == LazyCase::kOk) {
      EXPECT_EQ(got.error, 0) << strerror(got.error);
    } else if (c.outcome == LazyCase::kEio) {
      EXPECT_EQ(got.error, EIO) << (got.error == 0 ? "read succeeded" : strerror(got.error));
    } else {
      EXPECT_TRUE(got.error == 0 || got.error == EIO) << strerror(got.error);
    }
    absl::StrAppend(&table, c.name, "\t", got.error == 0 ? "ok" : strerror(got.error), "\t",
                    absl::FormatDuration(took), "\thits=", hits, "\n");

    // Without faults the same file reads right (no failure or bad bytes remembered).
    ReadResult again = ReadAll(path);
    EXPECT_EQ(again.error, 0) << "after the faults: " << strerror(again.error);
    EXPECT_EQ(std::string(Sha256Of(again.data).hex()), sha256_[file]);
  }
  std::cout << "case\toutcome\ttime\tfault hits\n" << table;

  // The daemon's log names the blob for the failed reads.
  EXPECT_TRUE(absl::StrContains(it::Tail(tmp_->Join("slipstreamd.log")), blob.Short()));
}

}  // namespace
}  // namespace slipstream::chaos
