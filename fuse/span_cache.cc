// SPDX-License-Identifier: Apache-2.0
#include "fuse/span_cache.h"

namespace slipstream::fuse {

SpanCache::SpanCache(int64_t capacity_bytes) : capacity_(capacity_bytes) {}

SpanCache::Span SpanCache::Get(uint64_t owner, int64_t span) {
  absl::MutexLock lock(&mu_);
  auto it = index_.find(Key{owner, span});
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->data;
}

bool SpanCache::Contains(uint64_t owner, int64_t span) const {
  absl::MutexLock lock(&mu_);
  return index_.contains(Key{owner, span});
}

void SpanCache::Insert(uint64_t owner, int64_t span, Span data, bool cold) {
  if (data == nullptr) return;
  const int64_t size = static_cast<int64_t>(data->size());
  if (size > capacity_) return;
  absl::MutexLock lock(&mu_);
  Key key{owner, span};
  if (auto it = index_.find(key); it != index_.end()) {
    bytes_ -= static_cast<int64_t>(it->second->data->size());
    lru_.erase(it->second);
    index_.erase(it);
  }
  auto pos = cold ? lru_.end() : lru_.begin();
  auto item = lru_.insert(pos, Item{key, std::move(data)});
  index_[key] = item;
  bytes_ += size;
  EvictLocked();
}

void SpanCache::EvictLocked() {
  while (bytes_ > capacity_ && !lru_.empty()) {
    Item& victim = lru_.back();
    bytes_ -= static_cast<int64_t>(victim.data->size());
    index_.erase(victim.key);
    lru_.pop_back();
    ++evictions_;
  }
}

void SpanCache::EraseOwner(uint64_t owner) {
  absl::MutexLock lock(&mu_);
  for (auto it = lru_.begin(); it != lru_.end();) {
    if (it->key.owner == owner) {
      bytes_ -= static_cast<int64_t>(it->data->size());
      index_.erase(it->key);
      it = lru_.erase(it);
    } else {
      ++it;
    }
  }
}

int64_t SpanCache::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

int64_t SpanCache::entries() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(index_.size());
}

int64_t SpanCache::evictions() const {
  absl::MutexLock lock(&mu_);
  return evictions_;
}

}  // namespace slipstream::fuse
