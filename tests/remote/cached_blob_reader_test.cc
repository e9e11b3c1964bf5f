// SPDX-License-Identifier: Apache-2.0
#include "remote/cached_blob_reader.h"

#include <atomic>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "remote/remote_metrics.h"

namespace slipstream::remote {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

constexpr int64_t kChunk = 4096;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

// In-memory blob with fault injection: records every read, can fail or truncate the next
// reads, and can run a hook before serving (to hold a read until other threads arrive).
// Thread-safe.
class FakeBlobReader : public BlobReader {
 public:
  struct Shared {
    absl::Mutex mu;
    std::vector<std::pair<int64_t, int64_t>> reads ABSL_GUARDED_BY(mu);
    int fail_next ABSL_GUARDED_BY(mu) = 0;
    absl::Status fail_with ABSL_GUARDED_BY(mu);
    int truncate_next ABSL_GUARDED_BY(mu) = 0;
    int corrupt_next ABSL_GUARDED_BY(mu) = 0;  // flip the first byte of the next reads
    std::function<void()> before_read;  // set before reads start

    std::vector<std::pair<int64_t, int64_t>> Reads() {
      absl::MutexLock lock(&mu);
      return reads;
    }
  };

  FakeBlobReader(std::string data, std::shared_ptr<Shared> shared)
      : data_(std::move(data)), digest_(Sha256Of(data_)), shared_(std::move(shared)) {}

  const Digest& digest() const override { return digest_; }
  int64_t size() const override { return static_cast<int64_t>(data_.size()); }

  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override {
    if (shared_->before_read) shared_->before_read();
    bool truncate = false;
    bool corrupt = false;
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->reads.emplace_back(offset, length);
      if (shared_->fail_next > 0) {
        --shared_->fail_next;
        return shared_->fail_with;
      }
      if (shared_->truncate_next > 0) {
        --shared_->truncate_next;
        truncate = true;
      }
      if (shared_->corrupt_next > 0) {
        --shared_->corrupt_next;
        corrupt = true;
      }
    }
    if (offset < 0 || offset > size()) return absl::OutOfRangeError("fake: offset past end");
    std::string out = data_.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
    if (truncate && !out.empty()) out.pop_back();
    if (corrupt && !out.empty()) out[0] = static_cast<char>(out[0] ^ 0x01);
    return out;
  }

 private:
  const std::string data_;
  const Digest digest_;
  std::shared_ptr<Shared> shared_;
};

class CachedBlobReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("cached-reader-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    auto cache = ChunkCache::Open({dir_->Join("cache"), int64_t{1} << 30});
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
    data_ = RandomBytes(10 * kChunk + 123, 7);
  }

  std::unique_ptr<CachedBlobReader> NewReader(
      int64_t chunk_size = kChunk, int64_t max_run = CachedBlobReader::kDefaultMaxRunBytes) {
    return std::make_unique<CachedBlobReader>(std::make_unique<FakeBlobReader>(data_, fake_),
                                              cache_.get(), chunk_size, max_run);
  }

  std::string Expected(int64_t offset, int64_t length) {
    return data_.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<ChunkCache> cache_;
  std::string data_;
  std::shared_ptr<FakeBlobReader::Shared> fake_ = std::make_shared<FakeBlobReader::Shared>();
};

TEST_F(CachedBlobReaderTest, ForwardsIdentity) {
  auto reader = NewReader();
  EXPECT_EQ(reader->digest(), Sha256Of(data_));
  EXPECT_EQ(reader->size(), static_cast<int64_t>(data_.size()));
  EXPECT_EQ(reader->chunk_size(), kChunk);
  EXPECT_EQ(NewReader(0)->chunk_size(), CachedBlobReader::kDefaultChunkSize);
}

TEST_F(CachedBlobReaderTest, RandomReadsEqualTheSource) {
  auto reader = NewReader();
  std::mt19937 rng(42);
  const int64_t size = reader->size();
  for (int i = 0; i < 400; ++i) {
    int64_t offset = std::uniform_int_distribution<int64_t>(0, size)(rng);
    int64_t length = std::uniform_int_distribution<int64_t>(0, 3 * kChunk + 17)(rng);
    auto got = reader->ReadAt(offset, length);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, Expected(offset, length)) << offset << "+" << length;
  }
  // Everything is cached now: a fresh reader of the same blob never reaches the source.
  const size_t inner_reads = fake_->Reads().size();
  auto warm = NewReader();
  auto all = warm->ReadAt(0, size);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, data_);
  EXPECT_EQ(fake_->Reads().size(), inner_reads);
  EXPECT_EQ(cache_->stats().stored_chunks, 11);
}

TEST_F(CachedBlobReaderTest, CoalescesAdjacentMissesIntoOneInnerRead) {
  auto reader = NewReader();
  auto got = reader->ReadAt(100, 4 * kChunk);  // touches chunks 0..4
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Expected(100, 4 * kChunk));
  EXPECT_THAT(fake_->Reads(), ElementsAre(Pair(0, 5 * kChunk)));
  EXPECT_EQ(cache_->stats().fetches, 5);
  EXPECT_EQ(cache_->stats().stored_chunks, 5);
}

TEST_F(CachedBlobReaderTest, FetchesOnlyTheGapsAroundCachedChunks) {
  auto reader = NewReader();
  ASSERT_TRUE(reader->ReadAt(2 * kChunk + 5, 10).ok());
  ASSERT_TRUE(reader->ReadAt(6 * kChunk, 1).ok());
  auto got = reader->ReadAt(0, 8 * kChunk);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Expected(0, 8 * kChunk));
  EXPECT_THAT(fake_->Reads(),
              ElementsAre(Pair(2 * kChunk, kChunk), Pair(6 * kChunk, kChunk),
                          Pair(0, 2 * kChunk), Pair(3 * kChunk, 3 * kChunk),
                          Pair(7 * kChunk, kChunk)));
  EXPECT_EQ(cache_->stats().hits, 2);
}

TEST_F(CachedBlobReaderTest, CountsHitsAndMissesInTheProcessMetrics) {
  const int64_t hits = Metrics().cache_hits.value();
  const int64_t misses = Metrics().cache_misses.value();
  auto reader = NewReader();
  ASSERT_TRUE(reader->ReadAt(0, 2 * kChunk).ok());      // chunks 0, 1: fetched
  ASSERT_TRUE(reader->ReadAt(kChunk, 2 * kChunk).ok());  // 1 from disk, 2 fetched
  EXPECT_EQ(Metrics().cache_misses.value() - misses, 3);
  EXPECT_EQ(Metrics().cache_hits.value() - hits, 1);
  EXPECT_THAT(metrics::Global().RenderText(),
              HasSubstr("# TYPE slipstream_chunk_cache_hits_total counter\n"));
}

TEST_F(CachedBlobReaderTest, LastChunkIsShorter) {
  auto reader = NewReader();
  const int64_t size = reader->size();
  auto got = reader->ReadAt(9 * kChunk, 5 * kChunk);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Expected(9 * kChunk, size - 9 * kChunk));
  EXPECT_THAT(fake_->Reads(), ElementsAre(Pair(9 * kChunk, size - 9 * kChunk)));
  EXPECT_TRUE(cache_->Lookup(ChunkKey{reader->digest(), 10 * kChunk, 123}).has_value());
}

TEST_F(CachedBlobReaderTest, RunsAreSplitAtMaxRunBytes) {
  auto reader = NewReader(kChunk, 2 * kChunk + 1);  // rounds down to two chunks
  auto got = reader->ReadAt(0, 5 * kChunk);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, Expected(0, 5 * kChunk));
  EXPECT_THAT(fake_->Reads(), ElementsAre(Pair(0, 2 * kChunk), Pair(2 * kChunk, 2 * kChunk),
                                          Pair(4 * kChunk, kChunk)));
}

TEST_F(CachedBlobReaderTest, ReadsAtAndPastTheEnd) {
  auto reader = NewReader();
  const int64_t size = reader->size();
  EXPECT_EQ(reader->ReadAt(size, 10).value(), "");
  EXPECT_EQ(reader->ReadAt(5, 0).value(), "");
  EXPECT_EQ(reader->ReadAt(size - 10, 100).value(), Expected(size - 10, 10));
  EXPECT_EQ(reader->ReadAt(0, INT64_MAX).value(), data_);
  EXPECT_EQ(reader->ReadAt(size + 1, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(reader->ReadAt(-1, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(reader->ReadAt(0, -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CachedBlobReaderTest, EmptyBlob) {
  data_.clear();
  auto reader = NewReader();
  EXPECT_EQ(reader->ReadAt(0, 10).value(), "");
  EXPECT_EQ(reader->ReadAt(1, 1).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_TRUE(fake_->Reads().empty());
}

TEST_F(CachedBlobReaderTest, InnerErrorPropagatesAndIsNotCached) {
  {
    absl::MutexLock lock(&fake_->mu);
    fake_->fail_next = 1;
    fake_->fail_with = absl::UnavailableError("registry said 503");
  }
  auto reader = NewReader();
  auto failed = reader->ReadAt(0, 3 * kChunk);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(failed.status().message(), HasSubstr("registry said 503"));
  EXPECT_THAT(failed.status().message(), HasSubstr(reader->digest().Short()));
  EXPECT_EQ(cache_->stats().fetch_errors, 3);
  EXPECT_EQ(cache_->stats().stored_chunks, 0);

  auto retried = reader->ReadAt(0, 3 * kChunk);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(*retried, Expected(0, 3 * kChunk));
  EXPECT_EQ(fake_->Reads().size(), 2u);
}

TEST_F(CachedBlobReaderTest, FailedRunFailsTheRestWithoutFetching) {
  auto reader = NewReader();
  ASSERT_TRUE(reader->ReadAt(2 * kChunk, 1).ok());  // splits a later read into two runs
  {
    absl::MutexLock lock(&fake_->mu);
    fake_->fail_next = 1;
    fake_->fail_with = absl::NotFoundError("blob unknown");
  }
  EXPECT_EQ(reader->ReadAt(0, 5 * kChunk).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fake_->Reads().size(), 2u);  // the second run was not fetched
  EXPECT_EQ(cache_->stats().stored_chunks, 1);
}

TEST_F(CachedBlobReaderTest, ShortInnerReadIsDataLoss) {
  {
    absl::MutexLock lock(&fake_->mu);
    fake_->truncate_next = 1;
  }
  auto reader = NewReader();
  EXPECT_EQ(reader->ReadAt(0, 2 * kChunk).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(cache_->stats().stored_chunks, 0);
  EXPECT_EQ(reader->ReadAt(0, 2 * kChunk).value(), Expected(0, 2 * kChunk));
}

// A registry answer corrupted on the way is cached like any other (the reader cannot check a
// slice); once the caller's digest check finds it, ForgetCached drops it and the next read
// fetches the right bytes instead of serving the bad ones forever.
TEST_F(CachedBlobReaderTest, ForgetCachedDropsCorruptChunks) {
  auto reader = NewReader();
  {
    absl::MutexLock lock(&fake_->mu);
    fake_->corrupt_next = 1;
  }
  auto bad = reader->ReadAt(0, 2 * kChunk);
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_NE(*bad, Expected(0, 2 * kChunk));
  auto cached = reader->ReadAt(0, 2 * kChunk);
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_EQ(*cached, *bad) << "served from the cache";
  EXPECT_EQ(fake_->Reads().size(), 1u);

  reader->ForgetCached();
  EXPECT_EQ(cache_->stats().stored_chunks, 0);
  auto good = reader->ReadAt(0, 2 * kChunk);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(*good, Expected(0, 2 * kChunk));
  EXPECT_EQ(fake_->Reads().size(), 2u);
}

TEST_F(CachedBlobReaderTest, ConcurrentReadersFetchEachChunkOnce) {
  constexpr int kReaders = 6;
  constexpr int kChunks = 4;
  // Inner reads wait until every reader has asked for every chunk, so each chunk has one
  // fetcher and kReaders - 1 waiters, whichever thread won which chunk.
  fake_->before_read = [&] {
    absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (cache_->stats().joined < (kReaders - 1) * kChunks && absl::Now() < deadline) {
      std::this_thread::yield();
    }
  };
  auto reader = NewReader();
  std::vector<absl::StatusOr<std::string>> results(kReaders);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&, i] { results[i] = reader->ReadAt(0, kChunks * kChunk); });
  }
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, Expected(0, kChunks * kChunk));
  }
  EXPECT_EQ(cache_->stats().joined, (kReaders - 1) * kChunks);
  EXPECT_EQ(cache_->stats().fetches, kChunks);
  int64_t fetched = 0;
  for (const auto& [offset, length] : fake_->Reads()) fetched += length;
  EXPECT_EQ(fetched, kChunks * kChunk);  // every byte came from the source exactly once
}

TEST_F(CachedBlobReaderTest, ReadersWithOtherChunkSizesDoNotMix) {
  auto big = NewReader(kChunk);
  auto small = NewReader(1000);
  ASSERT_EQ(big->ReadAt(0, 3 * kChunk).value(), Expected(0, 3 * kChunk));
  EXPECT_EQ(small->ReadAt(1500, 3000).value(), Expected(1500, 3000));
  EXPECT_EQ(big->ReadAt(1500, 3000).value(), Expected(1500, 3000));
}

TEST_F(CachedBlobReaderTest, ManyThreadsRandomReads) {
  auto reader = NewReader();
  const int64_t size = reader->size();
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < 200; ++i) {
        int64_t offset = std::uniform_int_distribution<int64_t>(0, size)(rng);
        int64_t length = std::uniform_int_distribution<int64_t>(0, 2 * kChunk)(rng);
        auto got = reader->ReadAt(offset, length);
        if (!got.ok() || *got != Expected(offset, length)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(cache_->stats().fetches, 11);  // each chunk fetched once in total
}

}  // namespace
}  // namespace slipstream::remote
