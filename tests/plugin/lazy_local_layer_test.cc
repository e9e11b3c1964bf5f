// SPDX-License-Identifier: Apache-2.0
// LocalLayerBuilder and the recovery of a lazy snapshot's directory, with an in-memory blob
// behind a real LayerReader: the local copy equals the parallel-mode unpack of the same blob,
// it only appears once verified, errors and crashes leave nothing used, and `fs` switches
// atomically.
#include "plugin/lazy_local_layer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/temp_dir.h"
#include "fuse/read_ahead_pool.h"
#include "fuse/span_cache.h"
#include "testkit/tar_writer.h"
#include "tests/fuse/test_layer.h"
#include "tests/unpack/tree_snapshot.h"
#include "unpack/layer_unpacker.h"

namespace slipstream::plugin {
namespace {

using fuse::testing::TestLayer;

constexpr char kGzipMediaType[] = "application/vnd.oci.image.layer.v1.tar+gzip";
// Where the `fs` symlink of a lazy snapshot points before the switch (never followed here).
constexpr char kFuseTarget[] = "/nonexistent/fuse/layer";
constexpr char kOpaque[] = "opaque";

// Every entry type the local copy must reproduce (what fuse::testing::RichLayer has, minus
// its trusted.overlay.* xattr, which the unpacker refuses), with a file crossing ~25 spans.
absl::Status FillLayer(testkit::TarWriter& w, std::map<std::string, std::string>& files) {
  auto file = [&](const std::string& name, const std::string& content,
                  testkit::TarEntryOptions o = {}) {
    files[name] = content;
    return w.AddFile(name, content, o);
  };
  SS_RETURN_IF_ERROR(w.AddDir(".", {.mode = 0755}));
  SS_RETURN_IF_ERROR(w.AddDir("etc", {}));
  SS_RETURN_IF_ERROR(file("etc/hosts", "127.0.0.1 localhost\n"));
  SS_RETURN_IF_ERROR(w.AddSymlink("etc/localtime", "/usr/share/zoneinfo/Etc/UTC"));
  SS_RETURN_IF_ERROR(w.AddWhiteout("etc", "motd"));
  SS_RETURN_IF_ERROR(w.AddDir("bin", {}));
  SS_RETURN_IF_ERROR(file("bin/tool", "#!/bin/sh\necho tool\n", {.mode = 04755}));
  SS_RETURN_IF_ERROR(w.AddDir("tmp", {.mode = 01777}));
  SS_RETURN_IF_ERROR(w.AddDir("shared", {.mode = 02775, .uid = 1000, .gid = 2000}));
  SS_RETURN_IF_ERROR(file("shared/empty", ""));
  SS_RETURN_IF_ERROR(file("big.bin", fuse::testing::PseudoText(1536 * 1024 + 77, 1)));
  SS_RETURN_IF_ERROR(w.AddHardlink("big-link", "big.bin"));
  SS_RETURN_IF_ERROR(w.AddDir("dev", {}));
  SS_RETURN_IF_ERROR(w.AddCharDevice("dev/null", 1, 3, {.mode = 0666}));
  SS_RETURN_IF_ERROR(w.AddFifo("dev/fifo", {}));
  testkit::TarEntryOptions caps;
  caps.xattrs = {{"trusted.app", std::string("\x01\x00\x02", 3)}, {"user.comment", "hello xattr"}};
  SS_RETURN_IF_ERROR(file("caps", "capable\n", caps));
  testkit::TarEntryOptions nano;
  nano.mtime = absl::FromUnixNanos(int64_t{1700000000} * 1000000000 + 123456789);
  nano.uid = 65534;
  nano.gid = 65534;
  SS_RETURN_IF_ERROR(file("nano", "nanoseconds\n", nano));
  SS_RETURN_IF_ERROR(w.AddDir(kOpaque, {}));
  SS_RETURN_IF_ERROR(w.AddOpaqueWhiteout(kOpaque));
  SS_RETURN_IF_ERROR(file(absl::StrCat(kOpaque, "/kept"), "kept\n"));
  SS_RETURN_IF_ERROR(w.AddFile("dup", "first\n"));
  SS_RETURN_IF_ERROR(file("dup", "second and last\n"));
  SS_RETURN_IF_ERROR(w.AddDir("many", {}));
  for (int i = 0; i < 40; ++i) {
    SS_RETURN_IF_ERROR(
        file(absl::StrCat("many/f", i), fuse::testing::PseudoText(100 + 997 * i, 10 + i)));
  }
  return absl::OkStatus();
}

const TestLayer& Layer() {
  static const TestLayer* layer = [] {
    absl::StatusOr<TestLayer> built = fuse::testing::BuildLayer(FillLayer);
    if (!built.ok()) {
      std::fprintf(stderr, "building the test layer: %s\n", built.status().ToString().c_str());
      std::abort();
    }
    return new TestLayer(*std::move(built));
  }();
  return *layer;
}


bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

std::string LinkTarget(const std::string& path) {
  char buf[4096];
  const ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf));
  return n < 0 ? "" : std::string(buf, static_cast<size_t>(n));
}

class LocalLayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "unpacking layers writes owners and devices: need root";
    auto t = TempDir::Create("lazy-local-");
    ASSERT_TRUE(t.ok()) << t.status();
    tmp_.emplace(*std::move(t));
    dir_ = tmp_->Join("snapshot");
    ASSERT_TRUE(MakeDirs(dir_).ok());
    ASSERT_EQ(::symlink(kFuseTarget, (dir_ + "/fs").c_str()), 0);
  }

  std::shared_ptr<fuse::LayerReader> Reader(const TestLayer& layer) {
    return fuse::LayerReader::Create(layer.ztoc, layer.NewReader(), &cache_, nullptr);
  }

  // Steps `builder` to the end of the stream in steps of `step` bytes; returns the steps.
  int StepAll(LocalLayerBuilder& builder, fuse::LayerReader& reader, int64_t step) {
    int steps = 0;
    for (;;) {
      absl::StatusOr<bool> done = builder.Step(reader, step);
      EXPECT_TRUE(done.ok()) << done.status();
      ++steps;
      if (!done.ok() || *done || steps > 10000) return steps;
    }
  }

  std::optional<TempDir> tmp_;
  std::string dir_;
  fuse::SpanCache cache_{int64_t{64} << 20};
};

TEST_F(LocalLayerTest, BuildsTheParallelUnpackOfTheLayerAndSwitchesFs) {
  const TestLayer& layer = Layer();
  const Digest diff_id = Sha256Of(layer.tar);
  auto reader = Reader(layer);
  auto builder = LocalLayerBuilder::Create(dir_, diff_id, /*parent_chain=*/"");
  ASSERT_TRUE(builder.ok()) << builder.status();
  const int steps = StepAll(**builder, *reader, 200 << 10);
  EXPECT_GT(steps, 2) << "a step reads at most ~200 KiB of the stream";
  EXPECT_EQ((*builder)->offset(), layer.ztoc->uncompressed_archive_size);
  // Nothing is named `local` and `fs` is unchanged until the stream is verified.
  EXPECT_FALSE(Exists(dir_ + "/local"));
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), kFuseTarget);
  auto finished = (*builder)->Finish();
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(*finished, diff_id);
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), "local");
  EXPECT_FALSE(Exists(dir_ + "/local.new"));
  // Reading the whole stream completed the layer.
  EXPECT_TRUE(reader->Progress().complete());

  // The parallel engine's unpack of the same blob: same tree, owners, modes, xattrs
  // (opaque dir, capabilities), whiteout devices, hardlinks and mtimes.
  const std::string reference = tmp_->Join("reference");
  fuse::testing::FakeBlobReader blob(layer.blob);
  auto unpacked = unpack::UnpackLayer(blob, kGzipMediaType, diff_id, reference);
  ASSERT_TRUE(unpacked.ok()) << unpacked.status();
  const auto want = unpack::testing::Snapshot(reference);
  const auto got = unpack::testing::Snapshot(dir_ + "/local");
  EXPECT_GT(want.size(), 5u);
  EXPECT_EQ(unpack::testing::DiffSnapshots(want, got), "");
  ASSERT_TRUE(got.contains(kOpaque));
  EXPECT_EQ(got.at(kOpaque).xattrs.count("trusted.overlay.opaque"), 1u);

  // A second builder for the same snapshot is refused: `local` is final.
  EXPECT_TRUE(absl::IsAlreadyExists(LocalLayerBuilder::Create(dir_, diff_id, "").status()));
  auto place = RecoverLocalLayer(dir_);
  ASSERT_TRUE(place.ok()) << place.status();
  EXPECT_EQ(*place, LazyLayerPlace::kLocal);
}

TEST_F(LocalLayerTest, ChainOnTopOfAParentIsChecked) {
  const TestLayer& layer = Layer();
  const Digest diff_id = Sha256Of(layer.tar);
  const std::string parent = Sha256Of("parent layer").str();
  const Digest chain = Sha256Of(absl::StrCat(parent, " ", diff_id.str()));
  auto reader = Reader(layer);
  auto builder = LocalLayerBuilder::Create(dir_, chain, parent);
  ASSERT_TRUE(builder.ok()) << builder.status();
  StepAll(**builder, *reader, 1 << 20);
  auto finished = (*builder)->Finish();
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), "local");
}

TEST_F(LocalLayerTest, AStreamThatDoesNotGiveTheChainIdIsNeverUsed) {
  const TestLayer& layer = Layer();
  auto reader = Reader(layer);
  // The diffID itself, but claimed on top of a parent: the chain cannot match.
  auto builder =
      LocalLayerBuilder::Create(dir_, Sha256Of(layer.tar), Sha256Of("some parent").str());
  ASSERT_TRUE(builder.ok()) << builder.status();
  StepAll(**builder, *reader, 1 << 20);
  auto finished = (*builder)->Finish();
  EXPECT_TRUE(absl::IsDataLoss(finished.status())) << finished.status();
  builder->reset();
  EXPECT_FALSE(Exists(dir_ + "/local"));
  EXPECT_FALSE(Exists(dir_ + "/local.new"));
  EXPECT_EQ(unpack::testing::CountEntriesWithPrefix(dir_, "local"), 0);
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), kFuseTarget);
}

TEST_F(LocalLayerTest, RegistryErrorsAndCorruptSpansStopTheBuilderAndLeaveNothing) {
  for (bool corrupt : {false, true}) {
    SCOPED_TRACE(corrupt ? "corrupt span" : "registry error");
    TestLayer layer = fuse::testing::Fresh(Layer());
    auto reader = Reader(layer);
    auto builder = LocalLayerBuilder::Create(dir_, Sha256Of(layer.tar), "");
    ASSERT_TRUE(builder.ok()) << builder.status();
    // The first step works, then the blob goes bad.
    ASSERT_TRUE((*builder)->Step(*reader, 64 << 10).ok());
    if (corrupt) {
      layer.blob->Corrupt(static_cast<int64_t>(layer.blob->data().size()) - 100);
    } else {
      layer.blob->FailWith(absl::UnavailableError("registry down"));
    }
    absl::Status status;
    for (int i = 0; i < 10000 && status.ok(); ++i) {
      absl::StatusOr<bool> done = (*builder)->Step(*reader, 64 << 10);
      status = done.status();
      if (done.ok() && *done) break;
    }
    if (corrupt) {
      EXPECT_TRUE(absl::IsDataLoss(status)) << status;
    } else {
      EXPECT_TRUE(absl::IsUnavailable(status)) << status;
    }
    EXPECT_FALSE((*builder)->Step(*reader, 64 << 10).ok()) << "unusable after an error";
    builder->reset();
    EXPECT_EQ(unpack::testing::CountEntriesWithPrefix(dir_, "local"), 0);
    EXPECT_EQ(LinkTarget(dir_ + "/fs"), kFuseTarget);
  }
}

TEST_F(LocalLayerTest, RecoveryRemovesLeftoversOfACrashMidWay) {
  // What a SIGKILL during an unpack leaves: the unpacker's temp dir, an unchecked
  // local.new and a symlink never renamed.
  ASSERT_TRUE(MakeDirs(dir_ + "/local.new.partial-Ab12Cd/usr/bin").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/local.new.partial-Ab12Cd/usr/bin/sh", "half").ok());
  ASSERT_TRUE(MakeDirs(dir_ + "/local.new/etc").ok());
  ASSERT_EQ(::symlink("local", (dir_ + "/fs.swap").c_str()), 0);
  ASSERT_TRUE(MakeDirs(dir_ + "/work").ok());
  auto place = RecoverLocalLayer(dir_);
  ASSERT_TRUE(place.ok()) << place.status();
  EXPECT_EQ(*place, LazyLayerPlace::kFuse);
  EXPECT_EQ(unpack::testing::CountEntriesWithPrefix(dir_, "local"), 0);
  EXPECT_FALSE(Exists(dir_ + "/fs.swap"));
  EXPECT_TRUE(Exists(dir_ + "/work"));
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), kFuseTarget);
}

TEST_F(LocalLayerTest, RecoveryFinishesASwitchACrashInterrupted) {
  // Killed after `local` was put in place (it only is once verified), before the switch.
  ASSERT_TRUE(MakeDirs(dir_ + "/local/etc").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/local/etc/hostname", "node\n").ok());
  auto place = RecoverLocalLayer(dir_);
  ASSERT_TRUE(place.ok()) << place.status();
  EXPECT_EQ(*place, LazyLayerPlace::kLocal);
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), "local");
  auto data = ReadFileToString(dir_ + "/fs/etc/hostname");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, "node\n");
  // Idempotent.
  place = RecoverLocalLayer(dir_);
  ASSERT_TRUE(place.ok());
  EXPECT_EQ(*place, LazyLayerPlace::kLocal);
}

TEST_F(LocalLayerTest, SwitchNeedsALocalDirectory) {
  EXPECT_TRUE(absl::IsFailedPrecondition(SwitchToLocal(dir_)));
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), kFuseTarget);
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/local", "not a dir").ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(SwitchToLocal(dir_)));
  EXPECT_EQ(LinkTarget(dir_ + "/fs"), kFuseTarget);
}

TEST_F(LocalLayerTest, FuseReleasedMarker) {
  EXPECT_FALSE(FuseReleased(dir_));
  ASSERT_TRUE(MarkFuseReleased(dir_).ok());
  EXPECT_TRUE(FuseReleased(dir_));
  ASSERT_TRUE(MarkFuseReleased(dir_).ok());
  EXPECT_TRUE(FuseReleased(dir_));
}

}  // namespace
}  // namespace slipstream::plugin
