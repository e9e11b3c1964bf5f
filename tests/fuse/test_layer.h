// SPDX-License-Identifier: Apache-2.0
// Generated layers and an in-memory blob reader for the lazy filesystem tests.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/digest.h"
#include "index/ztoc.h"
#include "remote/blob_reader.h"
#include "testkit/tar_writer.h"

namespace slipstream::fuse::testing {

// Span size of the test layers: small, so a 1.5 MB file crosses ~25 spans.
inline constexpr int64_t kTestSpanSize = 64 << 10;

// A layer blob in memory with what tests need to watch and break reads: a ReadAt counter,
// an injected error, corrupted bytes and a gate that holds ReadAt calls until opened.
// Shared between the test and the FakeBlobReader that LayerFs owns. Thread-safe.
class FakeBlob {
 public:
  explicit FakeBlob(std::string data) : data_(std::move(data)), digest_(Sha256Of(data_)) {}

  const std::string& data() const { return data_; }
  const Digest& digest() const { return digest_; }
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length);

  int64_t reads() const { return reads_.load(); }
  // Every later ReadAt fails with `status` (OK: no failure).
  void FailWith(absl::Status status);
  // Flips the bits of the byte at `offset` in what later reads return.
  void Corrupt(int64_t offset);
  // While closed, ReadAt calls block (counted by blocked()) until OpenGate().
  void CloseGate();
  void OpenGate();
  int64_t blocked() const { return blocked_.load(); }

 private:
  std::string data_;
  const Digest digest_;
  std::atomic<int64_t> reads_{0};
  std::atomic<int64_t> blocked_{0};
  absl::Mutex mu_;
  absl::Status failure_ ABSL_GUARDED_BY(mu_);
  bool gate_closed_ ABSL_GUARDED_BY(mu_) = false;
  std::map<int64_t, bool> corrupt_ ABSL_GUARDED_BY(mu_);
};

// The BlobReader over a FakeBlob.
class FakeBlobReader : public remote::BlobReader {
 public:
  explicit FakeBlobReader(std::shared_ptr<FakeBlob> blob) : blob_(std::move(blob)) {}
  const Digest& digest() const override { return blob_->digest(); }
  int64_t size() const override { return static_cast<int64_t>(blob_->data().size()); }
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override {
    return blob_->ReadAt(offset, length);
  }

 private:
  std::shared_ptr<FakeBlob> blob_;
};

// Deterministic, moderately compressible text (deflate emits many blocks, so spans stay
// close to the span size).
std::string PseudoText(size_t size, uint64_t seed);

// A built layer: the tar, its gzip blob and zTOC, and the content of every regular file by
// cleaned path (hardlinks included, later entries of a name winning).
struct TestLayer {
  std::string tar;
  std::shared_ptr<FakeBlob> blob;
  std::shared_ptr<const index::Ztoc> ztoc;
  std::map<std::string, std::string> files;

  std::unique_ptr<remote::BlobReader> NewReader() const {
    return std::make_unique<FakeBlobReader>(blob);
  }
};

// Writes entries with `fill`, gzips the stream and builds its zTOC with kTestSpanSize.
// `files` is filled from what `fill` records through the map it is given.
absl::StatusOr<TestLayer> BuildLayer(
    const std::function<absl::Status(testkit::TarWriter&, std::map<std::string, std::string>&)>&
        fill,
    testkit::LongNameStyle style = testkit::LongNameStyle::kPax);

// The layer with every entry type the tests check (see test_layer.cc for the list), built
// once per test binary. Tests must not break its blob; copy it with Fresh() for that.
const TestLayer& RichLayer();
// A copy of `layer` with its own FakeBlob (counters, faults and gate of its own).
TestLayer Fresh(const TestLayer& layer);

// Names in RichLayer that tests look at.
inline constexpr char kBigFile[] = "big.bin";         // ~1.5 MB, many spans
inline constexpr char kBigLink[] = "big-link";        // hardlink to big.bin
inline constexpr char kHosts[] = "etc/hosts";
inline constexpr char kWhiteout[] = "etc/motd";       // from etc/.wh.motd
inline constexpr char kOpaqueDir[] = "opaque";        // has .wh..wh..opq
inline constexpr char kCapsFile[] = "caps";           // PAX xattrs
inline constexpr char kNanoFile[] = "nano";           // mtime with nanoseconds
inline constexpr int64_t kNanoMtimeSec = 1700000000;
inline constexpr int32_t kNanoMtimeNsec = 123456789;

}  // namespace slipstream::fuse::testing
