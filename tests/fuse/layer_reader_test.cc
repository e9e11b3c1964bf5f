// SPDX-License-Identifier: Apache-2.0
// LayerReader and SpanCache: span cache hits and misses, coalescing, single-flight,
// read-ahead, registry failures and corrupt spans, and the background-completion hooks.
#include "fuse/layer_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "common/metrics.h"
#include "common/status.h"
#include "fuse/layer_fs.h"
#include "index/span_decoder.h"
#include "tests/fuse/test_layer.h"

namespace slipstream::fuse {
namespace {

using testing::FakeBlob;
using testing::RichLayer;

// Yields until `done()` holds: synchronisation on an observable condition, never a sleep.
// The test's own timeout bounds it.
template <typename F>
void WaitUntil(F done) {
  while (!done()) std::this_thread::yield();
}

// The uncompressed bytes of span `s` of the rich layer.
std::string SpanBytes(int64_t s) {
  const index::Ztoc& z = *RichLayer().ztoc;
  return RichLayer().tar.substr(z.SpanUncompressedStart(s),
                                z.SpanUncompressedEnd(s) - z.SpanUncompressedStart(s));
}

class LayerReaderTest : public ::testing::Test {
 protected:
  std::shared_ptr<LayerReader> NewReader(LayerReaderOptions options = {},
                                         ReadAheadPool* pool = nullptr) {
    return LayerReader::Create(layer_.ztoc, layer_.NewReader(), &cache_, pool, options);
  }
  const index::Ztoc& z() const { return *layer_.ztoc; }

  testing::TestLayer layer_ = testing::Fresh(RichLayer());
  FakeBlob& blob_ = *layer_.blob;
  SpanCache cache_{int64_t{64} << 20};
};

TEST_F(LayerReaderTest, ReadsEqualTheTarStream) {
  auto reader = NewReader();
  const std::string& tar = layer_.tar;
  for (int64_t offset : {int64_t{0}, int64_t{511}, testing::kTestSpanSize - 3,
                         static_cast<int64_t>(tar.size()) - 100}) {
    absl::StatusOr<std::string> got = reader->Read(offset, 300000);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_TRUE(*got == tar.substr(offset, 300000)) << offset;
  }
  EXPECT_TRUE(reader->Read(static_cast<int64_t>(tar.size()) + 5, 10)->empty());
  EXPECT_EQ(reader->Read(-1, 10).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LayerReaderTest, SecondReadOfASpanIsACacheHit) {
  auto reader = NewReader();
  ASSERT_TRUE(reader->Read(100, 50).ok());
  EXPECT_EQ(blob_.reads(), 1);
  ASSERT_TRUE(reader->Read(200, 50).ok());
  EXPECT_EQ(blob_.reads(), 1);
  LayerCounters c = reader->Counters();
  EXPECT_EQ(c.cache_misses, 1);
  EXPECT_EQ(c.cache_hits, 1);
  EXPECT_EQ(c.spans_fetched, 1);
  EXPECT_EQ(c.fetches, 1);
  EXPECT_EQ(c.compressed_bytes_fetched, z().SpanCompressedEnd(0) - z().SpanCompressedStart(0));
  EXPECT_EQ(reader->Progress().spans_fetched, 1);
}

TEST_F(LayerReaderTest, AdjacentMissingSpansAreOneFetch) {
  // The histogram LayerReader times its fetches in (registering it again returns it).
  const metrics::Histogram& fetch_seconds =
      metrics::Global().AddHistogram("slipstream_span_fetch_seconds", "", {});
  const int64_t timed = fetch_seconds.Read().count;
  auto reader = NewReader();
  ASSERT_GE(z().SpanCount(), 10);
  // Span 3 cached first: a read of 2..5 then fetches 2 and 4..5 in two runs.
  ASSERT_TRUE(reader->Read(z().SpanUncompressedStart(3), 1).ok());
  EXPECT_EQ(blob_.reads(), 1);
  const int64_t begin = z().SpanUncompressedStart(2);
  const int64_t end = z().SpanUncompressedEnd(5);
  absl::StatusOr<std::string> got = reader->Read(begin, end - begin);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == layer_.tar.substr(begin, end - begin));
  EXPECT_EQ(blob_.reads(), 3);
  EXPECT_EQ(fetch_seconds.Read().count - timed, 3);
  EXPECT_EQ(reader->Counters().spans_fetched, 4);
  // The coalescing cap splits long runs: one span per fetch.
  testing::TestLayer other = testing::Fresh(RichLayer());
  SpanCache cache(int64_t{64} << 20);
  auto capped = LayerReader::Create(other.ztoc, other.NewReader(), &cache, nullptr,
                                    LayerReaderOptions{.max_fetch_bytes = 1});
  ASSERT_TRUE(capped->Read(begin, end - begin).ok());
  EXPECT_EQ(other.blob->reads(), 4);
}

TEST_F(LayerReaderTest, ConcurrentReadersOfOneSpanFetchItOnce) {
  auto reader = NewReader();
  const int64_t offset = z().SpanUncompressedStart(4) + 10;
  blob_.CloseGate();
  absl::StatusOr<std::string> first, second;
  std::thread a([&] { first = reader->Read(offset, 1000); });
  WaitUntil([&] { return blob_.blocked() == 1; });  // a's fetch is in flight
  std::thread b([&] { second = reader->Read(offset + 5, 1000); });
  WaitUntil([&] { return reader->Counters().shared_fetches == 1; });  // b joined it
  blob_.OpenGate();
  a.join();
  b.join();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, layer_.tar.substr(offset, 1000));
  EXPECT_EQ(*second, layer_.tar.substr(offset + 5, 1000));
  EXPECT_EQ(blob_.reads(), 1);
  EXPECT_EQ(reader->Counters().spans_fetched, 1);
}

TEST_F(LayerReaderTest, WaitingForAnotherReadersFetchIsBounded) {
  auto reader = NewReader(LayerReaderOptions{.wait_timeout = absl::Milliseconds(50)});
  blob_.CloseGate();
  absl::StatusOr<std::string> first;
  std::thread a([&] { first = reader->Read(0, 10); });
  WaitUntil([&] { return blob_.blocked() == 1; });
  absl::StatusOr<std::string> second = reader->Read(0, 10);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kDeadlineExceeded) << second.status();
  blob_.OpenGate();
  a.join();
  EXPECT_TRUE(first.ok());
}

TEST_F(LayerReaderTest, RegistryErrorsFailTheReadAndItsWaiters) {
  auto reader = NewReader();
  blob_.CloseGate();
  blob_.FailWith(absl::UnavailableError("registry: HTTP 503 after 6 attempts"));
  absl::StatusOr<std::string> first, second;
  std::thread a([&] { first = reader->Read(0, 10); });
  WaitUntil([&] { return blob_.blocked() == 1; });
  std::thread b([&] { second = reader->Read(5, 10); });
  WaitUntil([&] { return reader->Counters().shared_fetches == 1; });
  blob_.OpenGate();
  a.join();
  b.join();
  EXPECT_EQ(first.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(first.status().message().find("fetch spans 0-0"), std::string_view::npos)
      << first.status();
  EXPECT_EQ(StatusToErrno(first.status()), EIO);
  EXPECT_EQ(reader->Counters().read_errors, 2);
  // Errors are not cached: once the registry is back, the span reads.
  blob_.FailWith(absl::OkStatus());
  EXPECT_TRUE(reader->Read(0, 10).ok());
  EXPECT_EQ(reader->Progress().spans_fetched, 1);
}

TEST_F(LayerReaderTest, CorruptSpanIsDataLoss) {
  const int64_t span = 6;
  blob_.Corrupt(z().SpanCompressedStart(span) + 50);
  auto reader = NewReader();
  absl::StatusOr<std::string> got = reader->Read(z().SpanUncompressedStart(span), 10);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
  EXPECT_EQ(StatusToErrno(got.status()), EIO);
  // Neighbours are fine, in the same coalesced fetch too.
  const int64_t begin = z().SpanUncompressedStart(span - 1);
  EXPECT_EQ(reader->Read(begin, z().SpanUncompressedEnd(span) - begin).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_TRUE(reader->Read(z().SpanUncompressedStart(span + 1), 10).ok());
  std::vector<int64_t> unfetched = reader->UnfetchedSpans();
  EXPECT_NE(std::find(unfetched.begin(), unfetched.end(), span), unfetched.end());
}

TEST_F(LayerReaderTest, FeedSpanFillsTheCacheAndTheProgress) {
  auto reader = NewReader();
  EXPECT_EQ(static_cast<int64_t>(reader->UnfetchedSpans().size()), z().SpanCount());
  ASSERT_TRUE(reader->FeedSpan(2, SpanBytes(2)).ok());
  EXPECT_EQ(reader->FeedSpan(3, "short").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->FeedSpan(z().SpanCount(), "").code(), absl::StatusCode::kOutOfRange);
  std::vector<int64_t> unfetched = reader->UnfetchedSpans();
  EXPECT_EQ(static_cast<int64_t>(unfetched.size()), z().SpanCount() - 1);
  EXPECT_EQ(std::find(unfetched.begin(), unfetched.end(), 2), unfetched.end());
  absl::StatusOr<std::string> got = reader->Read(z().SpanUncompressedStart(2), 100);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, SpanBytes(2).substr(0, 100));
  EXPECT_EQ(blob_.reads(), 0);
  // Feeding every span completes the layer.
  for (int64_t s : reader->UnfetchedSpans()) ASSERT_TRUE(reader->FeedSpan(s, SpanBytes(s)).ok());
  LayerProgress p = reader->Progress();
  EXPECT_TRUE(p.complete());
  EXPECT_EQ(p.compressed_bytes_fetched, z().compressed_archive_size);
  EXPECT_EQ(reader->Counters().spans_fed, z().SpanCount());
}

TEST_F(LayerReaderTest, CacheStaysWithinItsBudgetAndForgetsRemovedLayers) {
  auto span_size = [&](int64_t s) { return z().SpanUncompressedEnd(s) - z().SpanUncompressedStart(s); };
  // Room for exactly the last two spans read.
  SpanCache small(span_size(4) + span_size(5));
  {
    auto reader = LayerReader::Create(layer_.ztoc, layer_.NewReader(), &small, nullptr);
    for (int64_t s = 0; s < 6; ++s) {
      ASSERT_TRUE(reader->Read(z().SpanUncompressedStart(s), 1).ok());
      EXPECT_LE(small.bytes(), small.capacity());
    }
    EXPECT_EQ(small.entries(), 2);
    EXPECT_EQ(small.evictions(), 4);
    // Span 0 was evicted: reading it again fetches.
    ASSERT_TRUE(reader->Read(0, 1).ok());
    EXPECT_EQ(blob_.reads(), 7);
  }
  EXPECT_EQ(small.entries(), 0);  // the reader's spans went with it
  SpanCache none(0);
  auto uncached = LayerReader::Create(layer_.ztoc, layer_.NewReader(), &none, nullptr);
  ASSERT_TRUE(uncached->Read(0, 1).ok());
  ASSERT_TRUE(uncached->Read(0, 1).ok());
  EXPECT_EQ(blob_.reads(), 9);
}

TEST_F(LayerReaderTest, SpanCacheLruOrderAndColdInserts) {
  SpanCache cache(30);
  auto bytes = [](char c) { return std::make_shared<const std::string>(10, c); };
  cache.Insert(1, 0, bytes('a'));
  cache.Insert(1, 1, bytes('b'));
  cache.Insert(2, 0, bytes('c'));
  ASSERT_NE(cache.Get(1, 0), nullptr);  // a becomes the most recent
  cache.Insert(2, 1, bytes('d'));       // evicts b, the least recent
  EXPECT_FALSE(cache.Contains(1, 1));
  EXPECT_TRUE(cache.Contains(1, 0));
  cache.Insert(3, 0, bytes('e'), /*cold=*/true);  // cold: the next victim, right away
  EXPECT_FALSE(cache.Contains(3, 0));
  EXPECT_EQ(cache.bytes(), 30);
  cache.Insert(4, 0, std::make_shared<const std::string>(31, 'x'));  // larger than it all
  EXPECT_FALSE(cache.Contains(4, 0));
  cache.EraseOwner(2);
  EXPECT_EQ(cache.entries(), 1);
}

// Where kBigFile's data starts in the rich layer's tar stream.
int64_t BigFileOffset() {
  for (const auto& e : RichLayer().ztoc->entries) {
    if (e.name == testing::kBigFile) return e.uncompressed_offset;
  }
  return -1;
}

// A LayerFs serving a fresh copy of the rich layer as layer "l" (id 1), with kBigFile open.
struct BigFileFs {
  explicit BigFileFs(const LayerFsOptions& options) : fs(options) {}
  void Open() {
    ASSERT_TRUE(fs.AddLayer("l", 1, layer.ztoc, layer.NewReader()).ok());
    absl::StatusOr<Attr> attr = fs.Lookup(MakeIno(1, 1), testing::kBigFile);
    ASSERT_TRUE(attr.ok());
    absl::StatusOr<uint64_t> handle = fs.Open(attr->ino, O_RDONLY);
    ASSERT_TRUE(handle.ok());
    ino = attr->ino;
    fh = *handle;
    reader = fs.Reader("l");
    ASSERT_GE(data_offset, 0);
  }
  absl::StatusOr<std::string> Read(int64_t offset, int64_t size) {
    return fs.Read(ino, fh, offset, size);
  }
  const index::Ztoc& z() const { return *layer.ztoc; }
  const std::string& content() const { return layer.files.at(testing::kBigFile); }
  // The offset in the file of span `span`'s start.
  int64_t OffsetOf(int64_t span) const { return z().SpanUncompressedStart(span) - data_offset; }
  int64_t FirstSpan() const { return z().SpanForUncompressedOffset(data_offset); }

  testing::TestLayer layer = testing::Fresh(RichLayer());
  LayerFs fs;
  uint64_t ino = 0;
  uint64_t fh = 0;
  const int64_t data_offset = BigFileOffset();
  std::shared_ptr<LayerReader> reader;
};

// True once span `span` of `reader` was fetched (or fed).
bool Fetched(const LayerReader& reader, int64_t span) {
  std::vector<int64_t> left = reader.UnfetchedSpans();
  return std::find(left.begin(), left.end(), span) == left.end();
}

TEST(LayerFsReadAheadTest, SequentialReadsFetchTheNextSpanAhead) {
  LayerFsOptions options;
  options.readahead_spans = 1;
  options.sequential_window = 0;  // the later read into the next span reads no further ahead
  BigFileFs t(options);
  ASSERT_NO_FATAL_FAILURE(t.Open());
  // A first read at the file's start is sequential: the span after the one it ends in is
  // fetched ahead.
  ASSERT_TRUE(t.Read(0, 4096).ok());
  const int64_t current = t.z().SpanForUncompressedOffset(t.data_offset + 4095);
  WaitUntil([&] { return Fetched(*t.reader, current + 1); });
  EXPECT_EQ(t.reader->Counters().readahead_spans, 1);
  const int64_t reads = t.layer.blob->reads();
  // Reading into that span is now a cache hit.
  const int64_t next = t.OffsetOf(current + 1);
  absl::StatusOr<std::string> got = t.Read(next, 1000);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, t.content().substr(next, 1000));
  EXPECT_EQ(t.layer.blob->reads(), reads);
}

TEST(LayerFsReadAheadTest, ReadsOfOneWindowArrivingOutOfOrderAreSequential) {
  // The kernel sent reads at A and B (B > A) at once; B arrives first, then A. Neither
  // starts where the previous one ended.
  const index::Ztoc& z = *RichLayer().ztoc;
  const int64_t span_a = z.SpanForUncompressedOffset(BigFileOffset()) + 1;
  const int64_t a = z.SpanUncompressedStart(span_a) - BigFileOffset();
  const int64_t b = z.SpanUncompressedStart(span_a + 2) - BigFileOffset();
  LayerFsOptions options;
  options.readahead_spans = 1;
  options.sequential_window = b;  // B is within it of the first read's end, A of B's
  BigFileFs t(options);
  ASSERT_NO_FATAL_FAILURE(t.Open());
  ASSERT_TRUE(t.Read(0, 10).ok());
  ASSERT_TRUE(t.Read(b, 10).ok());  // ends within span_a + 2: reads ahead
  WaitUntil([&] { return Fetched(*t.reader, span_a + 3); });
  ASSERT_TRUE(t.Read(a, 10).ok());  // behind B, within the window
  // The earlier read asks for span_a + 1 ahead (nothing else read it).
  WaitUntil([&] { return Fetched(*t.reader, span_a + 1); });
  EXPECT_EQ(t.reader->Counters().readahead_spans, 3);  // after 0's span, after B, after A
}

TEST(LayerFsReadAheadTest, AFullWindowIsToppedUpInBatches) {
  LayerFsOptions options;
  options.readahead_spans = 4;  // topped up 2 spans at a time
  options.readahead_threads = 1;
  BigFileFs t(options);
  ASSERT_NO_FATAL_FAILURE(t.Open());
  const int64_t first = t.FirstSpan();
  const int64_t file_last =
      t.z().SpanForUncompressedOffset(t.data_offset + t.content().size() - 1);
  ASSERT_GE(file_last - first, 8) << "the test needs a file of 9 spans or more";
  ASSERT_TRUE(t.Read(0, 10).ok());
  WaitUntil([&] { return t.reader->Counters().readahead_spans == 4; });  // first+1 .. first+4
  const int64_t fetches = t.reader->Counters().fetches;
  // One span further: one new span in the window, not a batch yet.
  ASSERT_TRUE(t.Read(t.OffsetOf(first + 1), 10).ok());
  EXPECT_FALSE(Fetched(*t.reader, first + 5));
  // Two spans further: first+5 and first+6 go together, in one fetch.
  ASSERT_TRUE(t.Read(t.OffsetOf(first + 2), 10).ok());
  WaitUntil([&] { return t.reader->Counters().readahead_spans == 6; });
  EXPECT_EQ(t.reader->Counters().fetches, fetches + 1);
  EXPECT_TRUE(Fetched(*t.reader, first + 5) && Fetched(*t.reader, first + 6));
}

TEST(LayerFsReadAheadTest, DeepReadAheadKeepsEveryPoolThreadBusy) {
  LayerFsOptions options;
  options.readahead_spans = 4;
  options.readahead_threads = 2;
  BigFileFs t(options);
  ASSERT_NO_FATAL_FAILURE(t.Open());
  FakeBlob& blob = *t.layer.blob;
  const int64_t current = t.FirstSpan();
  ASSERT_EQ(t.z().SpanForUncompressedOffset(t.data_offset + 8191), current);
  // Fetches block from now on: the first read blocks on its own span, and the read-ahead it
  // starts first shows how many fetches run at once.
  blob.CloseGate();
  auto first = std::async(std::launch::async, [&] { return t.Read(0, 4096); });
  // The read's own fetch, and one per pool thread: the four spans ahead go as tasks of 1, 2
  // and 1 spans (small ones first, since the reader needs them next), two at a time.
  WaitUntil([&] { return blob.blocked() == 3; });
  EXPECT_EQ(blob.blocked(), 3);
  blob.OpenGate();
  ASSERT_TRUE(first.get().ok());
  WaitUntil([&] { return t.reader->Counters().readahead_spans == 4; });
  // The rest of the next 4 spans reads from the cache. That read is sequential too, so it
  // starts read-ahead beyond them: with the gate closed again those fetches block before they
  // count, and a read that needed a fetch itself would block (hence the bounded wait).
  const auto counters = t.reader->Counters();
  const int64_t foreground = counters.spans_fetched - counters.readahead_spans;
  blob.CloseGate();
  const int64_t end = t.OffsetOf(current + 5);
  auto read = std::async(std::launch::async, [&] { return t.Read(4096, end - 4096); });
  const bool from_cache = read.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  const auto after = t.reader->Counters();
  blob.OpenGate();
  EXPECT_TRUE(from_cache) << "the read waited for a fetch";
  absl::StatusOr<std::string> got = read.get();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == t.content().substr(4096, end - 4096));
  EXPECT_EQ(after.spans_fetched - after.readahead_spans, foreground);
}

TEST(LayerFsReadAheadTest, RandomReadsDoNotReadAhead) {
  testing::TestLayer layer = testing::Fresh(RichLayer());
  LayerFsOptions options;
  options.sequential_window = 1000;
  LayerFs fs(options);
  ASSERT_TRUE(fs.AddLayer("l", 1, layer.ztoc, layer.NewReader()).ok());
  absl::StatusOr<Attr> big = fs.Lookup(MakeIno(1, 1), testing::kBigFile);
  absl::StatusOr<uint64_t> fh = fs.Open(big->ino, O_RDONLY);
  for (int64_t off : {500000, 100, 900000, 300000}) ASSERT_TRUE(fs.Read(big->ino, *fh, off, 10).ok());
  EXPECT_EQ(fs.Reader("l")->Counters().readahead_spans, 0);
  EXPECT_EQ(layer.blob->reads(), 4);
  ASSERT_TRUE(fs.Release(big->ino, *fh).ok());
}

TEST(LayerFsConcurrencyTest, ManyReadersWithATinyCacheReadTheRightBytes) {
  testing::TestLayer layer = testing::Fresh(RichLayer());
  LayerFsOptions options;
  options.span_cache_bytes = 4 * testing::kTestSpanSize;  // constant eviction
  options.readahead_spans = 2;
  LayerFs fs(options);
  ASSERT_TRUE(fs.AddLayer("l", 1, layer.ztoc, layer.NewReader()).ok());
  std::vector<std::pair<uint64_t, const std::string*>> files;
  for (const auto& [path, content] : layer.files) {
    absl::StatusOr<Attr> cur = fs.Lookup(kRootIno, "l");
    size_t pos = 0;
    while (cur.ok() && pos <= path.size()) {
      size_t slash = path.find('/', pos);
      if (slash == std::string::npos) slash = path.size();
      cur = fs.Lookup(cur->ino, path.substr(pos, slash - pos));
      pos = slash + 1;
    }
    ASSERT_TRUE(cur.ok()) << path;
    files.push_back({cur->ino, &content});
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, errors{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (size_t i = 0; i < files.size(); ++i) {
        const auto& [ino, content] = files[(i * 7 + t) % files.size()];
        absl::StatusOr<uint64_t> fh = fs.Open(ino, O_RDONLY);
        if (!fh.ok()) {
          ++errors;
          continue;
        }
        std::string got;
        const int64_t chunk = 4096 * (1 + t);
        while (true) {
          absl::StatusOr<std::string> piece =
              fs.Read(ino, *fh, static_cast<int64_t>(got.size()), chunk);
          if (!piece.ok()) {
            ++errors;
            break;
          }
          if (piece->empty()) break;
          got += *piece;
        }
        if (got != *content) ++mismatches;
        if (!fs.Release(ino, *fh).ok()) ++errors;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_LE(fs.span_cache().bytes(), fs.span_cache().capacity());
  EXPECT_EQ(fs.OpenFiles(), 0);
}

}  // namespace
}  // namespace slipstream::fuse
