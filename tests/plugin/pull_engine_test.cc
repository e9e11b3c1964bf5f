// SPDX-License-Identifier: Apache-2.0
#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/temp_dir.h"
#include "tests/plugin/pull_test_util.h"
#include "plugin/pull_engine.h"
#include "plugin/pull_rootfs.h"
#include "remote/media_types.h"
#include "testkit/compress.h"
#include "testkit/tar_writer.h"
#include "tests/plugin/fake_range_source.h"

namespace slipstream::plugin {
namespace {

using testing::FakeBlob;
using testing::FakeRangeSource;

// A compressed layer and what the engine needs to know about it.
struct TestLayer {
  remote::Descriptor blob;
  Digest diff_id;
  std::string bytes;
};

using testing::Pseudo;
using testing::List;

TestLayer MakeLayer(remote::Compression compression, const std::string& tar) {
  auto compressed = testkit::CompressString(compression, tar);
  EXPECT_TRUE(compressed.ok()) << compressed.status();
  TestLayer l;
  l.bytes = *compressed;
  l.blob.media_type = std::string(testkit::LayerMediaType(compression));
  l.blob.digest = Sha256Of(l.bytes);
  l.blob.size = static_cast<int64_t>(l.bytes.size());
  l.diff_id = Sha256Of(tar);
  return l;
}

// A tar with a directory, a big incompressible file (so the blob spans many chunks) and a
// symlink.
std::string SampleTar(const std::string& dir, size_t big, uint32_t seed) {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  EXPECT_TRUE(w.AddDir(dir, {.mode = 0750, .uid = 7, .gid = 8}).ok());
  EXPECT_TRUE(w.AddFile(dir + "/big", Pseudo(big, seed), {.mode = 0640}).ok());
  EXPECT_TRUE(w.AddSymlink(dir + "/link", "big").ok());
  EXPECT_TRUE(w.Finish().ok());
  return tar;
}

class PullEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::Create("pull-engine-test-");
    ASSERT_TRUE(t.ok()) << t.status();
    tmp_.emplace(*std::move(t));
  }
  LayerRequest Request(const TestLayer& l, const std::string& name) {
    return {l.blob, l.diff_id, tmp_->Join(name)};
  }
  std::optional<TempDir> tmp_;
  FakeRangeSource source_;
};

// Observations in the engine's per-job histogram with `outcome` (the family is registered
// by the engine; registering it again returns it).
int64_t PullsRecorded(const std::string& outcome) {
  return metrics::Global()
      .AddHistogramFamily("slipstream_parallel_pull_seconds", "", {"outcome"}, {})
      .With({outcome})
      .Read()
      .count;
}

int64_t BytesRecorded(const std::string& kind) {
  return metrics::Global()
      .AddCounterFamily("slipstream_parallel_bytes_total", "", {"kind"})
      .With({kind})
      .value();
}

TEST_F(PullEngineTest, OutOfOrderChunksUnpackEveryCompression) {
  std::vector<TestLayer> layers = {
      MakeLayer(remote::Compression::kGzip, SampleTar("g", 300000, 1)),
      MakeLayer(remote::Compression::kZstd, SampleTar("z", 200000, 2)),
      MakeLayer(remote::Compression::kNone, SampleTar("n", 100000, 3)),
  };
  std::vector<LayerRequest> requests;
  for (size_t i = 0; i < layers.size(); ++i) {
    source_.Add(layers[i].blob.digest, {.bytes = layers[i].bytes, .first_chunk_last = true});
    requests.push_back(Request(layers[i], "layer" + std::to_string(i)));
  }
  const int64_t pulls_ok = PullsRecorded("ok");
  const int64_t compressed = BytesRecorded("compressed");
  PullEngine engine(&source_);
  PullOptions opts;
  opts.tuning = {.chunk_size = 16384, .requests = 4, .unpackers = 2};
  std::atomic<int> callbacks{0};
  opts.on_layer_done = [&](size_t, const absl::StatusOr<LayerResult>& r) {
    EXPECT_TRUE(r.ok()) << r.status();
    ++callbacks;
  };
  auto job = engine.Start(requests, opts);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ((*job)->plan().chunk_size, 16384);
  for (size_t i = 0; i < layers.size(); ++i) {
    absl::StatusOr<LayerResult> r = (*job)->WaitLayer(i);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->unpack.digest, layers[i].blob.digest);
    EXPECT_EQ(r->unpack.diff_id, layers[i].diff_id);
    EXPECT_EQ(r->unpack.entries, 3);
    const LayerProgress& p = (*job)->progress(i);
    EXPECT_EQ(p.bytes_fetched.load(), layers[i].blob.size);
    EXPECT_EQ(p.bytes_unpacked.load(), layers[i].blob.size);
    EXPECT_EQ(p.files_written.load(), 3);
    EXPECT_EQ(p.state.load(), static_cast<int>(LayerState::kDone));
  }
  EXPECT_TRUE((*job)->Wait().ok());
  EXPECT_EQ(callbacks.load(), 3);
  EXPECT_EQ(PullsRecorded("ok") - pulls_ok, 1);
  EXPECT_EQ(BytesRecorded("compressed") - compressed,
            layers[0].blob.size + layers[1].blob.size + layers[2].blob.size);

  // The first chunk of each layer was delivered after a later one.
  std::vector<int64_t> order = source_.order();
  ASSERT_FALSE(order.empty());
  EXPECT_NE(order.front(), 0);

  auto big = ReadFileToString(tmp_->Join("layer0/g/big"));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(*big, Pseudo(300000, 1));
  struct stat st;
  ASSERT_EQ(::lstat(tmp_->Join("layer0/g").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0750u);
  EXPECT_EQ(st.st_uid, 7u);
  ASSERT_EQ(::lstat(tmp_->Join("layer1/z/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // Only the layer directories: no temp files, no partial directories.
  EXPECT_EQ(List(tmp_->path()), (std::set<std::string>{"layer0", "layer1", "layer2"}));
}

TEST_F(PullEngineTest, UnpackStartsBeforeTheDownloadEnds) {
  TestLayer layer = MakeLayer(remote::Compression::kGzip, SampleTar("p", 400000, 4));
  std::atomic<const LayerProgress*> progress{nullptr};
  // The last chunk is only served once the unpacker has consumed earlier bytes.
  source_.Add(layer.blob.digest, {.bytes = layer.bytes, .release_last = [&] {
                                    const LayerProgress* p = progress.load();
                                    return p != nullptr && p->bytes_unpacked.load() > 0;
                                  }});
  PullEngine engine(&source_);
  PullOptions opts;
  opts.tuning = {.chunk_size = 32768, .requests = 2};
  auto job = engine.Start({Request(layer, "l")}, opts);
  ASSERT_TRUE(job.ok()) << job.status();
  progress.store(&(*job)->progress(0));
  EXPECT_TRUE((*job)->Wait().ok());
  EXPECT_TRUE((*job)->WaitLayer(0).ok());
}

TEST_F(PullEngineTest, ErrorInOneLayerCancelsTheOthersAndCleansUp) {
  TestLayer bad = MakeLayer(remote::Compression::kGzip, SampleTar("b", 200000, 5));
  TestLayer slow = MakeLayer(remote::Compression::kGzip, SampleTar("s", 200000, 6));
  source_.Add(bad.blob.digest, {.bytes = bad.bytes, .fail_at = 50000,
                                .error = absl::UnavailableError("registry 503")});
  source_.Add(slow.blob.digest, {.bytes = slow.bytes, .hang = true});
  PullEngine engine(&source_);
  PullOptions opts;
  opts.tuning = {.chunk_size = 16384, .requests = 4, .unpackers = 2};
  const int64_t pulls_failed = PullsRecorded("error");
  auto job = engine.Start({Request(bad, "bad"), Request(slow, "slow")}, opts);
  ASSERT_TRUE(job.ok()) << job.status();
  absl::Status st = (*job)->Wait();
  EXPECT_EQ(PullsRecorded("error") - pulls_failed, 1);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_NE(st.message().find("registry 503"), absl::string_view::npos) << st;
  EXPECT_EQ((*job)->WaitLayer(0).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ((*job)->WaitLayer(1).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ((*job)->progress(1).state.load(), static_cast<int>(LayerState::kFailed));
  job->reset();
  EXPECT_TRUE(List(tmp_->path()).empty());
}

TEST_F(PullEngineTest, CancelFromAnotherThreadStopsEverything) {
  std::vector<LayerRequest> requests;
  for (int i = 0; i < 3; ++i) {
    TestLayer l = MakeLayer(remote::Compression::kZstd, SampleTar("c", 100000, 10 + i));
    source_.Add(l.blob.digest, {.bytes = l.bytes, .hang = true});
    requests.push_back(Request(l, "c" + std::to_string(i)));
  }
  PullEngine engine(&source_);
  PullOptions opts;
  opts.tuning = {.chunk_size = 8192, .requests = 4, .unpackers = 1};
  auto job = engine.Start(requests, opts);
  ASSERT_TRUE(job.ok()) << job.status();
  std::thread canceller([&] { (*job)->Cancel(); });
  absl::Status st = (*job)->Wait();
  canceller.join();
  EXPECT_EQ(st.code(), absl::StatusCode::kCancelled) << st;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*job)->WaitLayer(i).status().code(), absl::StatusCode::kCancelled);
  }
  EXPECT_TRUE(List(tmp_->path()).empty());
}

TEST_F(PullEngineTest, CorruptBlobIsDataLossAndLeavesNothing) {
  TestLayer l = MakeLayer(remote::Compression::kNone, SampleTar("x", 50000, 20));
  source_.Add(l.blob.digest, {.bytes = l.bytes, .corrupt_at = 30000});  // inside file content
  PullEngine engine(&source_);
  auto job = engine.Start({Request(l, "x")}, {.tuning = {.chunk_size = 8192}});
  ASSERT_TRUE(job.ok()) << job.status();
  absl::Status st = (*job)->Wait();
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_TRUE(List(tmp_->path()).empty());
}

TEST_F(PullEngineTest, StartRefusesBadRequestsBeforeFetching) {
  TestLayer l = MakeLayer(remote::Compression::kGzip, SampleTar("r", 1000, 30));
  source_.Add(l.blob.digest, {.bytes = l.bytes});
  PullEngine engine(&source_);
  ASSERT_TRUE(MakeDirs(tmp_->Join("exists")).ok());
  EXPECT_EQ(engine.Start({Request(l, "exists")}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(engine.Start({Request(l, "a"), Request(l, "a")}).status().code(),
            absl::StatusCode::kInvalidArgument);
  LayerRequest weird = Request(l, "w");
  weird.blob.media_type = "application/x-unknown";
  EXPECT_EQ(engine.Start({weird}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(List(tmp_->path()), (std::set<std::string>{"exists"}));
  EXPECT_EQ(source_.order().size(), 0u);
}

TEST_F(PullEngineTest, WaitLayerOutOfRange) {
  PullEngine engine(&source_);
  auto job = engine.Start({});
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_TRUE((*job)->Wait().ok());
  EXPECT_EQ((*job)->WaitLayer(0).status().code(), absl::StatusCode::kOutOfRange);
}

// A SpanInflater that takes over every layer and reads it backwards through the view.
class BackwardsInflater : public SpanInflater {
 public:
  bool CanInflate(const LayerRequest&) override { return true; }
  absl::StatusOr<unpack::LayerUnpackResult> Unpack(const LayerRequest& layer, LayerBlobView& blob,
                                                   LayerProgress&,
                                                   const std::atomic<bool>&) override {
    std::string all;
    for (int64_t end = blob.size(); end > 0;) {
      const int64_t start = std::max<int64_t>(0, end - 7000);
      SS_ASSIGN_OR_RETURN(std::string piece, blob.ReadAt(start, end - start));
      all.insert(0, piece);
      end = start;
    }
    return Finish(layer, all);
  }

 private:
  static absl::StatusOr<unpack::LayerUnpackResult> Finish(const LayerRequest& layer,
                                                          const std::string& all) {
    SS_ASSIGN_OR_RETURN(auto u, unpack::LayerUnpacker::Create(layer.blob.media_type,
                                                             layer.blob.digest, layer.diff_id,
                                                             layer.dest));
    SS_RETURN_IF_ERROR(u->Write(all));
    return u->Finish();
  }
};

TEST_F(PullEngineTest, SpanInflaterGetsRandomAccessToTheDownload) {
  TestLayer l = MakeLayer(remote::Compression::kGzip, SampleTar("i", 100000, 40));
  source_.Add(l.blob.digest, {.bytes = l.bytes, .first_chunk_last = true});
  BackwardsInflater inflater;
  PullEngine engine(&source_);
  PullOptions opts;
  opts.tuning = {.chunk_size = 10000, .requests = 3};
  opts.span_inflater = &inflater;
  auto job = engine.Start({Request(l, "i")}, opts);
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE((*job)->Wait().ok());
  auto big = ReadFileToString(tmp_->Join("i/i/big"));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(*big, Pseudo(100000, 40));
}

TEST_F(PullEngineTest, MergeLayersHonoursWhiteoutsAndOpaqueDirs) {
  std::string base, top;
  {
    testkit::TarWriter w(testkit::TarWriter::StringSink(&base));
    ASSERT_TRUE(w.AddDir("etc").ok());
    ASSERT_TRUE(w.AddFile("etc/keep", "keep").ok());
    ASSERT_TRUE(w.AddFile("etc/gone", "gone").ok());
    ASSERT_TRUE(w.AddDir("opq").ok());
    ASSERT_TRUE(w.AddFile("opq/old", "old").ok());
    ASSERT_TRUE(w.AddFile("f", "v1", {.mode = 0600}).ok());
    ASSERT_TRUE(w.AddHardlink("f2", "f").ok());
    ASSERT_TRUE(w.AddSymlink("dirlink", "etc").ok());
    ASSERT_TRUE(w.Finish().ok());
  }
  {
    testkit::TarWriter w(testkit::TarWriter::StringSink(&top));
    ASSERT_TRUE(w.AddWhiteout("etc", "gone").ok());
    ASSERT_TRUE(w.AddDir("opq").ok());
    ASSERT_TRUE(w.AddOpaqueWhiteout("opq").ok());
    ASSERT_TRUE(w.AddFile("opq/new", "new").ok());
    ASSERT_TRUE(w.AddFile("f", "v2", {.mode = 04755}).ok());
    ASSERT_TRUE(w.AddDir("dirlink").ok());  // a directory replaces the symlink
    ASSERT_TRUE(w.AddFile("dirlink/inside", "x").ok());
    ASSERT_TRUE(w.Finish().ok());
  }
  TestLayer l0 = MakeLayer(remote::Compression::kGzip, base);
  TestLayer l1 = MakeLayer(remote::Compression::kGzip, top);
  source_.Add(l0.blob.digest, {.bytes = l0.bytes});
  source_.Add(l1.blob.digest, {.bytes = l1.bytes});
  PullEngine engine(&source_);
  auto job = engine.Start({Request(l0, "0"), Request(l1, "1")});
  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE((*job)->Wait().ok());
  const std::string rootfs = tmp_->Join("rootfs");
  ASSERT_TRUE(MergeLayers({tmp_->Join("0"), tmp_->Join("1")}, rootfs).ok());

  EXPECT_EQ(List(rootfs + "/etc"), (std::set<std::string>{"keep"}));
  EXPECT_EQ(List(rootfs + "/opq"), (std::set<std::string>{"new"}));
  EXPECT_EQ(*ReadFileToString(rootfs + "/f"), "v2");
  EXPECT_EQ(*ReadFileToString(rootfs + "/f2"), "v1");  // the old inode, still linked
  struct stat st;
  ASSERT_EQ(::lstat((rootfs + "/f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(::lstat((rootfs + "/dirlink").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(List(rootfs + "/etc"), (std::set<std::string>{"keep"}));  // not written through
  char v = 0;
  EXPECT_LT(::lgetxattr((rootfs + "/opq").c_str(), "trusted.overlay.opaque", &v, 1), 0);
}

}  // namespace
}  // namespace slipstream::plugin
