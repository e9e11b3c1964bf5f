// SPDX-License-Identifier: Apache-2.0
// The engine with a ZtocSpanInflater: indexed gzip layers are inflated span by span on
// several threads and must come out exactly as the sequential path unpacks them.
#include "plugin/ztoc_span_inflater.h"

#include <sys/stat.h>

#include <optional>

#include "common/digest.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "index/ztoc_builder.h"
#include "plugin/pull_engine.h"
#include "testkit/compress.h"
#include "testkit/tar_writer.h"
#include "tests/plugin/fake_range_source.h"
#include "tests/plugin/pull_test_util.h"

namespace slipstream::plugin {
namespace {

using testing::FakeBlob;
using testing::FakeRangeSource;
using testing::Pseudo;

constexpr int64_t kSpan = 64 << 10;

// Text-like bytes: compressible, so deflate makes many blocks inside each span.
std::string Text(size_t n, uint32_t seed) {
  static const char* kWords[] = {"layer ", "span ", "zTOC ", "gzip\n", "overlay ", "fuse "};
  std::string s;
  const std::string noise = Pseudo(n / 8 + 1, seed);
  for (size_t i = 0; s.size() < n; ++i) {
    s += kWords[static_cast<uint8_t>(noise[i % noise.size()]) % 6];
    if (i % 5 == 0) s += noise[i % noise.size()];
  }
  s.resize(n);
  return s;
}

struct IndexedLayer {
  remote::Descriptor blob;
  Digest diff_id;
  std::string bytes;
  std::shared_ptr<const index::Ztoc> ztoc;
};

IndexedLayer MakeIndexedLayer() {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  EXPECT_TRUE(w.AddDir("data", {.mode = 0755}).ok());
  EXPECT_TRUE(w.AddFile("data/many-spans.txt", Text(900 << 10, 1), {.mode = 0644}).ok());
  EXPECT_TRUE(w.AddFile("data/random.bin", Pseudo(300 << 10, 2), {.mode = 0600, .uid = 5}).ok());
  EXPECT_TRUE(w.AddFile("data/empty", "", {.mode = 0644}).ok());
  EXPECT_TRUE(w.AddDir("data/small").ok());
  for (int i = 0; i < 50; ++i) {
    EXPECT_TRUE(w.AddFile("data/small/" + std::to_string(i), Text(100 + i * 37, 10 + i)).ok());
  }
  EXPECT_TRUE(w.AddSymlink("data/link", "many-spans.txt").ok());
  EXPECT_TRUE(w.Finish().ok());
  IndexedLayer l;
  auto gz = testkit::CompressString(remote::Compression::kGzip, tar);
  EXPECT_TRUE(gz.ok()) << gz.status();
  l.bytes = *gz;
  l.blob.media_type = std::string(testkit::LayerMediaType(remote::Compression::kGzip));
  l.blob.digest = Sha256Of(l.bytes);
  l.blob.size = static_cast<int64_t>(l.bytes.size());
  l.diff_id = Sha256Of(tar);
  index::ZtocBuilder builder({.span_size = kSpan, .min_layer_size = 0});
  EXPECT_TRUE(builder.Write(l.bytes).ok());
  auto ztoc = builder.Finish();
  EXPECT_TRUE(ztoc.ok() && ztoc->has_value()) << ztoc.status();
  if (ztoc.ok() && ztoc->has_value()) {
    l.ztoc = std::make_shared<const index::Ztoc>(**ztoc);
  }
  return l;
}

class ZtocSpanInflaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = TempDir::Create("span-inflater-test-");
    ASSERT_TRUE(t.ok()) << t.status();
    tmp_.emplace(*std::move(t));
    layer_ = MakeIndexedLayer();
    ASSERT_NE(layer_.ztoc, nullptr);
    ASSERT_GT(layer_.ztoc->SpanCount(), 10);
  }

  absl::StatusOr<LayerResult> Pull(const LayerRequest& req, SpanInflater* inflater) {
    PullEngine engine(&source_);
    PullOptions options;
    options.span_inflater = inflater;
    options.tuning.chunk_size = 32 << 10;  // many chunks: spans wait for the frontier
    auto job = engine.Start({req}, options);
    if (!job.ok()) return job.status();
    auto r = (*job)->WaitLayer(0);
    EXPECT_EQ((*job)->Wait().ok(), r.ok());
    return r;
  }

  std::optional<TempDir> tmp_;
  FakeRangeSource source_;
  IndexedLayer layer_;
};

TEST_F(ZtocSpanInflaterTest, UnpacksLikeTheSequentialPath) {
  source_.Add(layer_.blob.digest, {.bytes = layer_.bytes, .first_chunk_last = true});
  ZtocSpanInflater inflater({.threads = 3, .max_spans_ahead = 4});
  inflater.Add(layer_.blob.digest, layer_.ztoc);
  const LayerRequest req{layer_.blob, layer_.diff_id, tmp_->Join("parallel")};
  ASSERT_TRUE(inflater.CanInflate(req));
  auto parallel = Pull(req, &inflater);
  ASSERT_TRUE(parallel.ok()) << parallel.status();
  auto sequential = Pull({layer_.blob, layer_.diff_id, tmp_->Join("sequential")}, nullptr);
  ASSERT_TRUE(sequential.ok()) << sequential.status();

  EXPECT_EQ(parallel->unpack.digest, layer_.blob.digest);
  EXPECT_EQ(parallel->unpack.diff_id, layer_.diff_id);
  EXPECT_EQ(parallel->unpack.entries, sequential->unpack.entries);
  EXPECT_EQ(parallel->unpack.uncompressed_bytes, sequential->unpack.uncompressed_bytes);
  EXPECT_EQ(parallel->unpack.compressed_bytes, layer_.blob.size);
  for (const std::string f : {"data/many-spans.txt", "data/random.bin", "data/empty",
                              "data/small/0", "data/small/49"}) {
    auto a = ReadFileToString(tmp_->Join("parallel/" + f), 8 << 20);
    auto b = ReadFileToString(tmp_->Join("sequential/" + f), 8 << 20);
    ASSERT_TRUE(a.ok() && b.ok()) << f;
    EXPECT_EQ(*a, *b) << f;
  }
  struct stat st;
  ASSERT_EQ(::lstat(tmp_->Join("parallel/data/random.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_uid, 5u);
  ASSERT_EQ(::lstat(tmp_->Join("parallel/data/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(ZtocSpanInflaterTest, OnlyClaimsLayersItsIndexDescribes) {
  ZtocSpanInflater inflater;
  LayerRequest req{layer_.blob, layer_.diff_id, tmp_->Join("x")};
  EXPECT_FALSE(inflater.CanInflate(req));  // no zTOC registered
  inflater.Add(layer_.blob.digest, layer_.ztoc);
  EXPECT_TRUE(inflater.CanInflate(req));
  LayerRequest resized = req;
  resized.blob.size += 1;  // a zTOC of another blob
  EXPECT_FALSE(inflater.CanInflate(resized));
  LayerRequest zstd = req;
  zstd.blob.media_type = std::string(testkit::LayerMediaType(remote::Compression::kZstd));
  EXPECT_FALSE(inflater.CanInflate(zstd));
}

TEST_F(ZtocSpanInflaterTest, CorruptSpanIsDataLossAndLeavesNothing) {
  FakeBlob blob{.bytes = layer_.bytes};
  blob.corrupt_at = layer_.blob.size / 2;
  source_.Add(layer_.blob.digest, blob);
  ZtocSpanInflater inflater({.threads = 2});
  inflater.Add(layer_.blob.digest, layer_.ztoc);
  auto r = Pull({layer_.blob, layer_.diff_id, tmp_->Join("dest")}, &inflater);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_TRUE(testing::List(tmp_->path()).empty())
      << "left behind: " << *testing::List(tmp_->path()).begin();
}

TEST_F(ZtocSpanInflaterTest, BlobDigestIsCheckedEvenWhenEverySpanVerifies) {
  // The same bytes under another digest: every span matches the zTOC, the blob does not.
  remote::Descriptor other = layer_.blob;
  other.digest = Sha256Of("something else");
  source_.Add(other.digest, {.bytes = layer_.bytes});
  ZtocSpanInflater inflater({.threads = 2});
  inflater.Add(other.digest, layer_.ztoc);
  auto r = Pull({other, layer_.diff_id, tmp_->Join("dest")}, &inflater);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_NE(std::string(r.status().message()).find("layer digest mismatch"), std::string::npos)
      << r.status();
  EXPECT_TRUE(testing::List(tmp_->path()).empty());
}

TEST_F(ZtocSpanInflaterTest, WrongDiffIdLeavesNothing) {
  source_.Add(layer_.blob.digest, {.bytes = layer_.bytes});
  ZtocSpanInflater inflater({.threads = 2});
  inflater.Add(layer_.blob.digest, layer_.ztoc);
  auto r = Pull({layer_.blob, Sha256Of("not the tar"), tmp_->Join("dest")}, &inflater);
  EXPECT_TRUE(absl::IsDataLoss(r.status())) << r.status();
  EXPECT_TRUE(testing::List(tmp_->path()).empty());
}

TEST_F(ZtocSpanInflaterTest, CancelStopsPromptly) {
  FakeBlob blob{.bytes = layer_.bytes};
  blob.hang = true;
  source_.Add(layer_.blob.digest, blob);
  ZtocSpanInflater inflater({.threads = 2});
  inflater.Add(layer_.blob.digest, layer_.ztoc);
  PullEngine engine(&source_);
  PullOptions options;
  options.span_inflater = &inflater;
  auto job = engine.Start({{layer_.blob, layer_.diff_id, tmp_->Join("dest")}}, options);
  ASSERT_TRUE(job.ok()) << job.status();
  (*job)->Cancel();
  EXPECT_TRUE(absl::IsCancelled((*job)->Wait()));
  EXPECT_TRUE(testing::List(tmp_->path()).empty());
}

}  // namespace
}  // namespace slipstream::plugin
