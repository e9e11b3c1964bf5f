// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace slipstream::fuse {

// An in-memory LRU of inflated spans, shared by every layer of a LayerFs so that all of them
// live within one byte budget. Keys are (owner, span): each LayerReader is one owner.
// Values are shared, immutable buffers: a reader keeps its span alive while it copies from
// it even if the cache evicts it meanwhile, so memory is bounded by the budget plus the spans
// being read right now.
//
// Owned by LayerFs (or a test); must outlive the LayerReaders using it. Thread-safe; its
// mutex is a leaf (LayerReader takes it while holding its own, never the other way round).
class SpanCache {
 public:
  using Span = std::shared_ptr<const std::string>;

  // `capacity_bytes` <= 0 caches nothing (every Insert is dropped).
  explicit SpanCache(int64_t capacity_bytes);
  SpanCache(const SpanCache&) = delete;
  SpanCache& operator=(const SpanCache&) = delete;

  // The span, marked most recently used, or nullptr.
  Span Get(uint64_t owner, int64_t span);
  // True when the span is cached; does not touch the LRU order.
  bool Contains(uint64_t owner, int64_t span) const;
  // Adds (or replaces) a span, then evicts least recently used spans until the total fits.
  // `cold` inserts it as the least recently used one (background completion feeds spans
  // this way so they do not push out what readers use). A span larger than the whole
  // capacity is not kept.
  void Insert(uint64_t owner, int64_t span, Span data, bool cold = false);
  // Drops every span of `owner` (a layer going away).
  void EraseOwner(uint64_t owner);

  int64_t capacity() const { return capacity_; }
  int64_t bytes() const;
  int64_t entries() const;
  int64_t evictions() const;

 private:
  struct Key {
    uint64_t owner;
    int64_t span;
    friend bool operator==(const Key&, const Key&) = default;
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.owner, k.span);
    }
  };
  struct Item {
    Key key;
    Span data;
  };
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t capacity_;
  mutable absl::Mutex mu_;
  std::list<Item> lru_ ABSL_GUARDED_BY(mu_);  // front = most recently used
  absl::flat_hash_map<Key, std::list<Item>::iterator> index_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace slipstream::fuse
