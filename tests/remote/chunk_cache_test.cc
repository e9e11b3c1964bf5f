// SPDX-License-Identifier: Apache-2.0
#include "remote/chunk_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "remote/chunk_cache_format.h"

namespace slipstream::remote {
namespace {

using ::testing::HasSubstr;

Digest BlobDigest(std::string_view name) { return Sha256Of(name); }

ChunkKey Key(std::string_view blob, int64_t offset, int64_t length) {
  return ChunkKey{BlobDigest(blob), offset, length};
}

// Deterministic bytes that differ per key, so a chunk served for the wrong key shows.
std::string Payload(const ChunkKey& key) {
  std::string out(static_cast<size_t>(key.length), '\0');
  uint32_t x = static_cast<uint32_t>(key.offset * 2654435761u) ^ key.blob.hex()[0];
  for (char& c : out) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// Polls `done` until it holds or 10 s pass: the tests wait for other threads to reach a
// state, never for a fixed time.
template <typename F>
bool Eventually(F done) {
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

class ChunkCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TempDir::Create("chunk-cache-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(*std::move(dir));
    Reopen(int64_t{1} << 30);
  }

  void Reopen(int64_t max_bytes) {
    cache_.reset();  // releases the directory lock before the new instance takes it
    auto cache = ChunkCache::Open({dir_->Join("cache"), max_bytes});
    ASSERT_TRUE(cache.ok()) << cache.status();
    cache_ = *std::move(cache);
  }

  std::string PathOf(const ChunkKey& key) { return dir_->Join("cache/" + ChunkRelativePath(key)); }

  // Fetches `key` through the cache with a fetcher that counts its calls.
  absl::StatusOr<std::string> Get(const ChunkKey& key, int* fetches = nullptr) {
    return cache_->GetOrFetch(key, [&]() -> absl::StatusOr<std::string> {
      if (fetches != nullptr) ++*fetches;
      return Payload(key);
    });
  }

  std::optional<TempDir> dir_;
  std::unique_ptr<ChunkCache> cache_;
};

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(Crc32c(0, std::string(32, '\xff')), 0x62A8AB43u);
  EXPECT_EQ(Crc32c(0, ""), 0u);
}

TEST(Crc32cTest, HardwareAndTablesAgree) {
  EXPECT_EQ(Crc32cPortable(0, "123456789"), 0xE3069283u);
  std::string data = Payload(Key("y", 0, 4099));
  std::string_view v = data;
  for (size_t from : {0u, 1u, 3u, 8u}) {
    for (size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 4090u}) {
      EXPECT_EQ(Crc32c(5, v.substr(from, len)), Crc32cPortable(5, v.substr(from, len)))
          << from << "+" << len;
    }
  }
}

TEST(Crc32cTest, IncrementalEqualsWhole) {
  std::string data = Payload(Key("x", 0, 1000));
  for (size_t cut : {0u, 1u, 7u, 8u, 9u, 500u, 1000u}) {
    std::string_view v = data;
    EXPECT_EQ(Crc32c(Crc32c(0, v.substr(0, cut)), v.substr(cut)), Crc32c(0, v)) << cut;
  }
}

TEST(ChunkCacheFormatTest, PathLayoutRoundTrips) {
  ChunkKey key = Key("blob", 4096, 1024);
  std::string hex(key.blob.hex());
  EXPECT_EQ(ChunkRelativePath(key), "sha256/" + hex.substr(0, 2) + "/" + hex + "/4096-1024");
  auto parsed = ParseChunkRelativePath("sha256", hex.substr(0, 2), hex, "4096-1024");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, key);
}

TEST(ChunkCacheFormatTest, RejectsForeignNames) {
  ChunkKey key = Key("blob", 0, 1);
  std::string hex(key.blob.hex());
  std::string prefix = hex.substr(0, 2);
  EXPECT_FALSE(ParseChunkRelativePath("md5", prefix, hex, "0-1").ok());
  EXPECT_FALSE(ParseChunkRelativePath("sha256", "zz", hex, "0-1").ok());
  EXPECT_FALSE(ParseChunkRelativePath("sha256", prefix, "../etc", "0-1").ok());
  for (std::string_view name : {"0", "0-", "-1", "01-1", "0-+1", "a-1", "0-1-2", "0--1"}) {
    EXPECT_FALSE(ParseChunkRelativePath("sha256", prefix, hex, name).ok()) << name;
  }
}

TEST(ChunkCacheFormatTest, HeaderNamesItsKey) {
  ChunkKey key = Key("blob", 8, 4);
  std::string header = EncodeChunkHeader(key, "abcd");
  EXPECT_EQ(static_cast<int64_t>(header.size()), ChunkHeaderBytes(key));
  auto crc = DecodeChunkHeader(key, header);
  ASSERT_TRUE(crc.ok()) << crc.status();
  EXPECT_EQ(*crc, Crc32c(0, "abcd"));
  ChunkKey other = key;
  other.offset = 12;
  EXPECT_EQ(DecodeChunkHeader(other, header).status().code(), absl::StatusCode::kDataLoss);
  header[20] ^= 1;  // inside the offset field: the header checksum catches it
  EXPECT_EQ(DecodeChunkHeader(key, header).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ChunkCacheTest, MissThenHit) {
  ChunkKey key = Key("a", 0, 1000);
  int fetches = 0;
  auto first = Get(key, &fetches);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, Payload(key));
  auto second = Get(key, &fetches);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*second, Payload(key));
  EXPECT_EQ(fetches, 1);

  ChunkCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.misses, 1);
  EXPECT_EQ(stats.fetches, 1);
  EXPECT_EQ(stats.miss_bytes, 1000);
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.hit_bytes, 1000);
  EXPECT_EQ(stats.stored_chunks, 1);
  EXPECT_EQ(stats.stored_bytes, ChunkFileBytes(key));
  EXPECT_TRUE(Exists(PathOf(key)));
}

TEST_F(ChunkCacheTest, LookupAndPut) {
  ChunkKey key = Key("b", 100, 10);
  EXPECT_FALSE(cache_->Lookup(key).has_value());
  ASSERT_TRUE(cache_->Put(key, Payload(key)).ok());
  EXPECT_EQ(cache_->Lookup(key), Payload(key));
  // Same blob and offset, other length: another chunk.
  EXPECT_FALSE(cache_->Lookup(Key("b", 100, 11)).has_value());
  ChunkCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.hits, 1);
  EXPECT_EQ(stats.misses, 2);
  EXPECT_EQ(stats.fetches, 0);
}

TEST_F(ChunkCacheTest, PutReplacesWithoutDoubleCounting) {
  ChunkKey key = Key("b", 0, 10);
  ASSERT_TRUE(cache_->Put(key, Payload(key)).ok());
  ASSERT_TRUE(cache_->Put(key, Payload(key)).ok());
  EXPECT_EQ(cache_->stats().stored_chunks, 1);
  EXPECT_EQ(cache_->stats().stored_bytes, ChunkFileBytes(key));
}

TEST_F(ChunkCacheTest, EmptyChunkIsCached) {
  ChunkKey key = Key("e", 0, 0);
  ASSERT_TRUE(cache_->Put(key, "").ok());
  EXPECT_EQ(cache_->Lookup(key), std::string());
}

TEST_F(ChunkCacheTest, InvalidInput) {
  EXPECT_EQ(cache_->Put(Key("c", 0, 5), "four").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache_->Put(Key("c", -1, 4), "four").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cache_->Put(ChunkKey{Digest(), 0, 4}, "four").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Get(Key("c", 0, -2)).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkCache::Open({"", 1}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ChunkCache::Open({dir_->Join("x"), -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ChunkCacheTest, FetchOfWrongLengthIsDataLossAndNotCached) {
  ChunkKey key = Key("d", 0, 10);
  auto got = cache_->GetOrFetch(key, [] { return absl::StatusOr<std::string>("short"); });
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(cache_->Lookup(key).has_value());
  EXPECT_EQ(cache_->stats().fetch_errors, 1);
}

TEST_F(ChunkCacheTest, SingleFlightFetchesOnceForAllCallers) {
  constexpr int kCallers = 8;
  ChunkKey key = Key("sf", 0, 4096);
  std::atomic<int> fetches{0};
  // The fetcher holds on until every other caller has joined its flight, so the test
  // proves they all waited on one fetch rather than arriving after it finished.
  ChunkCache::Fetcher fetch = [&]() -> absl::StatusOr<std::string> {
    ++fetches;
    if (!Eventually([&] { return cache_->stats().joined == kCallers - 1; })) {
      return absl::DeadlineExceededError("callers did not join");
    }
    return Payload(key);
  };
  std::vector<absl::StatusOr<std::string>> results(kCallers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] { results[i] = cache_->GetOrFetch(key, fetch); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fetches.load(), 1);
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, Payload(key));
  }
  ChunkCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.misses, kCallers);
  EXPECT_EQ(stats.joined, kCallers - 1);
  EXPECT_EQ(stats.fetches, 1);
  EXPECT_EQ(stats.miss_bytes, 4096);
}

TEST_F(ChunkCacheTest, FetchErrorReachesEveryWaiterAndIsNotCached) {
  constexpr int kCallers = 5;
  ChunkKey key = Key("err", 0, 64);
  std::atomic<int> fetches{0};
  ChunkCache::Fetcher failing = [&]() -> absl::StatusOr<std::string> {
    ++fetches;
    if (!Eventually([&] { return cache_->stats().joined == kCallers - 1; })) {
      return absl::DeadlineExceededError("callers did not join");
    }
    return absl::UnavailableError("registry said 503");
  };
  std::vector<absl::StatusOr<std::string>> results(kCallers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kCallers; ++i) {
    threads.emplace_back([&, i] { results[i] = cache_->GetOrFetch(key, failing); });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(fetches.load(), 1);
  for (const auto& r : results) {
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(r.status().message(), HasSubstr("registry said 503"));
  }
  EXPECT_EQ(cache_->stats().fetch_errors, 1);
  EXPECT_EQ(cache_->stats().stored_chunks, 0);

  int later = 0;
  auto retry = Get(key, &later);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(later, 1);  // the error was not cached: the next caller fetched again
}

TEST_F(ChunkCacheTest, AbandonedFillReleasesWaiters) {
  ChunkKey key = Key("ab", 0, 8);
  auto owner = cache_->Acquire(key);
  ASSERT_TRUE(owner.ok());
  ASSERT_TRUE(owner->fill.has_value());
  auto waiter = cache_->Acquire(key);
  ASSERT_TRUE(waiter.ok());
  ASSERT_TRUE(waiter->pending.has_value());
  owner->fill.reset();  // dropped without Complete or Fail
  EXPECT_EQ(waiter->pending->Wait().status().code(), absl::StatusCode::kAborted);
  auto next = cache_->Acquire(key);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(next->fill.has_value());
}

TEST_F(ChunkCacheTest, EvictsLeastRecentlyUsedWithinBound) {
  ChunkKey a = Key("lru", 0, 100), b = Key("lru", 100, 100), c = Key("lru", 200, 100),
           d = Key("lru", 300, 100);
  const int64_t bound = 3 * ChunkFileBytes(a);
  Reopen(bound);
  for (const ChunkKey& k : {a, b, c}) ASSERT_TRUE(cache_->Put(k, Payload(k)).ok());
  EXPECT_EQ(cache_->stats().evictions, 0);
  ASSERT_TRUE(cache_->Lookup(a).has_value());  // a is now more recent than b
  ASSERT_TRUE(cache_->Put(d, Payload(d)).ok());

  ChunkCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.evictions, 1);
  EXPECT_LE(stats.stored_bytes, bound);
  EXPECT_EQ(stats.stored_chunks, 3);
  EXPECT_FALSE(Exists(PathOf(b)));
  EXPECT_FALSE(cache_->Lookup(b).has_value());
  for (const ChunkKey& k : {a, c, d}) EXPECT_EQ(cache_->Lookup(k), Payload(k));
}

TEST_F(ChunkCacheTest, StaysWithinBoundUnderManyInserts) {
  ChunkKey probe = Key("many", 0, 1000);
  const int64_t bound = 10 * ChunkFileBytes(probe) + 5;
  Reopen(bound);
  for (int i = 0; i < 50; ++i) {
    ChunkKey k = Key("many", int64_t{i} * 1000, 1000);
    ASSERT_TRUE(Get(k).ok());
    ASSERT_LE(cache_->stats().stored_bytes, bound);
  }
  EXPECT_EQ(cache_->stats().stored_chunks, 10);
  EXPECT_EQ(cache_->stats().evictions, 40);
  // The ten newest survived.
  EXPECT_TRUE(cache_->Lookup(Key("many", 49000, 1000)).has_value());
  EXPECT_TRUE(cache_->Lookup(Key("many", 40000, 1000)).has_value());
  EXPECT_FALSE(cache_->Lookup(Key("many", 39000, 1000)).has_value());
}

TEST_F(ChunkCacheTest, SurvivesRestart) {
  ChunkKey a = Key("r", 0, 300), b = Key("r", 300, 200);
  ASSERT_TRUE(Get(a).ok());
  ASSERT_TRUE(Get(b).ok());
  Reopen(int64_t{1} << 30);
  ChunkCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.stored_chunks, 2);
  EXPECT_EQ(stats.stored_bytes, ChunkFileBytes(a) + ChunkFileBytes(b));
  int fetches = 0;
  EXPECT_EQ(Get(a, &fetches).value(), Payload(a));
  EXPECT_EQ(Get(b, &fetches).value(), Payload(b));
  EXPECT_EQ(fetches, 0);
  EXPECT_EQ(cache_->stats().hits, 2);
}

TEST_F(ChunkCacheTest, RestartKeepsLruOrderByMtime) {
  ChunkKey old_key = Key("m", 0, 100), new_key = Key("m", 100, 100), extra = Key("m", 200, 100);
  ASSERT_TRUE(cache_->Put(new_key, Payload(new_key)).ok());
  ASSERT_TRUE(cache_->Put(old_key, Payload(old_key)).ok());
  // Written second but used longest ago: its mtime says so.
  timespec times[2] = {{1000, 0}, {1000, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, PathOf(old_key).c_str(), times, 0), 0);
  Reopen(2 * ChunkFileBytes(old_key));
  ASSERT_TRUE(cache_->Put(extra, Payload(extra)).ok());
  EXPECT_FALSE(Exists(PathOf(old_key)));
  EXPECT_TRUE(Exists(PathOf(new_key)));
  EXPECT_TRUE(Exists(PathOf(extra)));
}

TEST_F(ChunkCacheTest, ReopenWithSmallerBoundEvicts) {
  for (int i = 0; i < 4; ++i) {
    ChunkKey k = Key("s", i * 10, 10);
    ASSERT_TRUE(cache_->Put(k, Payload(k)).ok());
  }
  Reopen(2 * ChunkFileBytes(Key("s", 0, 10)));
  EXPECT_EQ(cache_->stats().stored_chunks, 2);
  EXPECT_EQ(cache_->stats().evictions, 2);
}

TEST_F(ChunkCacheTest, OpenRemovesTempLeftoversAndKeepsForeignFiles) {
  ChunkKey key = Key("f", 0, 10);
  ASSERT_TRUE(cache_->Put(key, Payload(key)).ok());
  const std::string blob_dir = PathOf(key).substr(0, PathOf(key).rfind('/'));
  ASSERT_TRUE(WriteFileAtomic(dir_->Join("cache/tmp/123-4"), "half a chunk").ok());
  ASSERT_TRUE(WriteFileAtomic(dir_->Join("cache/sha256/README"), "not ours").ok());
  ASSERT_TRUE(WriteFileAtomic(blob_dir + "/notes.txt", "not ours either").ok());
  ASSERT_TRUE(MakeDirs(blob_dir + "/0-1").ok());  // a directory where a chunk file would be
  Reopen(int64_t{1} << 30);
  EXPECT_FALSE(Exists(dir_->Join("cache/tmp/123-4")));
  EXPECT_TRUE(Exists(dir_->Join("cache/tmp")));
  EXPECT_TRUE(Exists(dir_->Join("cache/sha256/README")));
  EXPECT_TRUE(Exists(blob_dir + "/notes.txt"));
  EXPECT_EQ(cache_->stats().stored_chunks, 1);
  EXPECT_EQ(cache_->stats().corrupt, 0);
  EXPECT_EQ(cache_->Lookup(key), Payload(key));
}

TEST_F(ChunkCacheTest, SecondInstanceOnSameDirIsRefused) {
  auto second = ChunkCache::Open({dir_->Join("cache"), 1 << 20});
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ChunkCacheTest, CorruptedPayloadIsDetectedDeletedAndRefetched) {
  ChunkKey key = Key("corrupt", 0, 500);
  ASSERT_TRUE(Get(key).ok());
  {
    auto fd = OpenFile(PathOf(key), O_WRONLY);
    ASSERT_TRUE(fd.ok());
    ASSERT_TRUE(PwriteAll(fd->get(), "X", ChunkHeaderBytes(key) + 250).ok());
  }
  EXPECT_FALSE(cache_->Lookup(key).has_value());
  EXPECT_EQ(cache_->stats().corrupt, 1);
  EXPECT_EQ(cache_->stats().stored_chunks, 0);
  EXPECT_FALSE(Exists(PathOf(key)));
  int fetches = 0;
  EXPECT_EQ(Get(key, &fetches).value(), Payload(key));
  EXPECT_EQ(fetches, 1);
}

TEST_F(ChunkCacheTest, TornFileIsDetectedWhileRunning) {
  ChunkKey key = Key("torn", 0, 500);
  ASSERT_TRUE(Get(key).ok());
  ASSERT_EQ(truncate(PathOf(key).c_str(), ChunkHeaderBytes(key) + 100), 0);
  int fetches = 0;
  EXPECT_EQ(Get(key, &fetches).value(), Payload(key));
  EXPECT_EQ(fetches, 1);
  EXPECT_EQ(cache_->stats().corrupt, 1);
}

TEST_F(ChunkCacheTest, TornFileIsDeletedOnOpen) {
  ChunkKey key = Key("torn", 0, 500), good = Key("torn", 500, 500);
  ASSERT_TRUE(Get(key).ok());
  ASSERT_TRUE(Get(good).ok());
  ASSERT_EQ(truncate(PathOf(key).c_str(), 0), 0);  // rename durable, data not
  Reopen(int64_t{1} << 30);
  EXPECT_FALSE(Exists(PathOf(key)));
  EXPECT_EQ(cache_->stats().corrupt, 1);
  EXPECT_EQ(cache_->stats().stored_chunks, 1);
  EXPECT_TRUE(cache_->Lookup(good).has_value());
}

TEST_F(ChunkCacheTest, FileUnderAnotherKeysNameIsRejected) {
  ChunkKey a = Key("mv", 0, 100), b = Key("mv", 100, 100);
  ASSERT_TRUE(cache_->Put(a, Payload(a)).ok());
  ASSERT_TRUE(cache_->Put(b, Payload(b)).ok());
  // Same size, right format, wrong chunk: only the key in the header can tell.
  ASSERT_EQ(rename(PathOf(a).c_str(), PathOf(b).c_str()), 0);
  EXPECT_FALSE(cache_->Lookup(b).has_value());
  EXPECT_EQ(cache_->stats().corrupt, 1);
  EXPECT_FALSE(cache_->Lookup(a).has_value());  // vanished: a miss, not corruption
  EXPECT_EQ(cache_->stats().corrupt, 1);
  EXPECT_EQ(cache_->stats().stored_chunks, 0);
}

TEST_F(ChunkCacheTest, ReadsOfManyKeysFromManyThreadsAgree) {
  Reopen(20 * ChunkFileBytes(Key("t", 0, 256)));  // small: evictions race with reads
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        ChunkKey k = Key("t", ((i * 7 + t) % 40) * 256, 256);
        auto got = Get(k);
        if (!got.ok() || *got != Payload(k)) ++wrong;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  ChunkCacheStats stats = cache_->stats();
  EXPECT_EQ(stats.hits + stats.misses, 1200);
  EXPECT_LE(stats.stored_chunks, 20);
  EXPECT_EQ(stats.corrupt, 0);
}

}  // namespace
}  // namespace slipstream::remote
