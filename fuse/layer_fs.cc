// SPDX-License-Identifier: Apache-2.0
#include "fuse/layer_fs.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "fuse/layer_fs_internal.h"

namespace slipstream::fuse {
namespace {

constexpr size_t kMaxNameLength = 255;

absl::Status CheckLayerName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.size() > kMaxNameLength ||
      name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("layer name \"", AV(name), "\" is not a valid directory name"));
  }
  return absl::OkStatus();
}

}  // namespace

namespace layer_fs_internal {

absl::Status UnknownInode(uint64_t ino) {
  return absl::NotFoundError(absl::StrCat("no inode ", ino));
}

}  // namespace layer_fs_internal

using layer_fs_internal::UnknownInode;

LayerFs::LayerFs(LayerFsOptions options)
    : options_(options),
      created_(absl::Now()),
      cache_(options.span_cache_bytes),
      pool_(options.readahead_spans > 0 ? options.readahead_threads : 0,
            options.readahead_queue),
      next_handle_(static_cast<uint64_t>(absl::ToUnixNanos(created_))) {}

LayerFs::~LayerFs() {
  // Read-ahead tasks only hold weak references, but finish them before the layers go.
  pool_.Stop();
}

absl::Status LayerFs::AddLayer(const std::string& name, uint32_t layer_id,
                               std::shared_ptr<const index::Ztoc> ztoc,
                               std::unique_ptr<remote::BlobReader> blob) {
  if (absl::Status s = CheckLayerName(name); !s.ok()) return s;
  if (layer_id == 0) return absl::InvalidArgumentError("layer id 0 is reserved");
  if (ztoc == nullptr || blob == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", name, ": no zTOC or blob"));
  }
  // The tree is built before taking the lock: it is the slow part for big layers.
  absl::StatusOr<std::shared_ptr<const LayerTree>> tree = LayerTree::Build(ztoc);
  if (!tree.ok()) return Annotate(tree.status(), absl::StrCat("layer ", name));
  auto layer = std::make_shared<Layer>();
  layer->name = name;
  layer->id = layer_id;
  layer->tree = *std::move(tree);
  layer->reader = LayerReader::Create(std::move(ztoc), std::move(blob), &cache_, &pool_,
                                      options_.reader);
  absl::MutexLock lock(&mu_);
  if (names_.contains(name)) {
    return absl::AlreadyExistsError(absl::StrCat("layer ", name, " already exists"));
  }
  if (layers_.contains(layer_id)) {
    return absl::AlreadyExistsError(absl::StrCat("layer id ", layer_id, " is in use"));
  }
  names_[name] = layer_id;
  layers_[layer_id] = std::move(layer);
  return absl::OkStatus();
}

absl::Status LayerFs::RemoveLayer(std::string_view name) {
  std::function<void(std::string_view)> observer;
  std::function<void(const std::string&, uint32_t)> retired;
  uint32_t id = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = names_.find(name);
    if (it == names_.end()) {
      return absl::NotFoundError(absl::StrCat("no layer ", AV(name)));
    }
    auto layer_it = layers_.find(it->second);
    std::shared_ptr<Layer> layer = layer_it->second;
    bool forgotten = false;
    {
      absl::MutexLock layer_lock(&layer->mu);
      if (layer->open_files > 0) {
        return absl::FailedPreconditionError(absl::StrCat(
            "layer ", AV(name), " has ", layer->open_files, " open files"));
      }
      layer->removed = true;
      forgotten = layer->lookups.empty();
    }
    names_.erase(it);
    if (forgotten) {
      layers_.erase(layer_it);
      retired = retire_observer_;
    }
    observer = removal_observer_;
    id = layer->id;
  }
  const std::string removed(name);
  if (observer) observer(removed);
  if (retired) retired(removed, id);
  return absl::OkStatus();
}

void LayerFs::SetRemovalObserver(std::function<void(std::string_view name)> observer) {
  absl::MutexLock lock(&mu_);
  removal_observer_ = std::move(observer);
}

void LayerFs::SetRetireObserver(
    std::function<void(const std::string& name, uint32_t layer_id)> observer) {
  absl::MutexLock lock(&mu_);
  retire_observer_ = std::move(observer);
}

std::shared_ptr<LayerReader> LayerFs::Reader(std::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = names_.find(name);
  if (it == names_.end()) return nullptr;
  return layers_.at(it->second)->reader;
}

namespace {

LayerStatus StatusOfLayer(const std::string& name, uint32_t id, const LayerTree& tree,
                          const LayerReader& reader, int64_t open_files) {
  LayerStatus s;
  s.name = name;
  s.layer_id = id;
  s.blob = reader.blob().digest();
  s.progress = reader.Progress();
  s.counters = reader.Counters();
  s.open_files = open_files;
  s.skipped_entries = tree.skipped();
  return s;
}

}  // namespace

absl::StatusOr<LayerStatus> LayerFs::Status(std::string_view name) const {
  std::shared_ptr<Layer> layer;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = names_.find(name);
    if (it == names_.end()) return absl::NotFoundError(absl::StrCat("no layer ", AV(name)));
    layer = layers_.at(it->second);
  }
  int64_t open_files;
  {
    absl::MutexLock lock(&layer->mu);
    open_files = layer->open_files;
  }
  return StatusOfLayer(layer->name, layer->id, *layer->tree, *layer->reader, open_files);
}

std::vector<LayerStatus> LayerFs::AllStatus() const {
  std::vector<std::string> names;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [id, layer] : layers_) {
      absl::MutexLock layer_lock(&layer->mu);
      if (!layer->removed) names.push_back(layer->name);
    }
  }
  std::vector<LayerStatus> out;
  for (const std::string& name : names) {
    absl::StatusOr<LayerStatus> s = Status(name);
    if (s.ok()) out.push_back(*std::move(s));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<LayerFs::Layer>> LayerFs::LayerOf(uint64_t ino) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = layers_.find(LayerIdOf(ino));
  if (it == layers_.end()) return UnknownInode(ino);
  return it->second;
}

absl::StatusOr<const LayerTree::Node*> LayerFs::NodeOf(const Layer& layer, uint64_t ino) const {
  const LayerTree::Node* node = layer.tree->FindNumber(NodeNumberOf(ino));
  if (node == nullptr) return UnknownInode(ino);
  return node;
}

void LayerFs::Ref(Layer& layer, uint32_t number) {
  absl::MutexLock lock(&layer.mu);
  ++layer.lookups[number];
}

void LayerFs::MaybeRetire(const std::shared_ptr<Layer>& layer) {
  std::function<void(const std::string&, uint32_t)> retired;
  {
    absl::MutexLock lock(&mu_);
    absl::MutexLock layer_lock(&layer->mu);
    if (!layer->removed || !layer->lookups.empty() || layer->open_files > 0) return;
    auto it = layers_.find(layer->id);
    if (it == layers_.end() || it->second != layer) return;
    layers_.erase(it);
    retired = retire_observer_;
  }
  if (retired) retired(layer->name, layer->id);
}

Attr LayerFs::RootAttr() const {
  Attr a;
  a.ino = kRootIno;
  a.mode = S_IFDIR | 0755;
  {
    absl::ReaderMutexLock lock(&mu_);
    a.nlink = 2 + static_cast<uint32_t>(names_.size());
  }
  a.size = 4096;
  a.blocks = 8;
  a.mtime_sec = absl::ToUnixSeconds(created_);
  return a;
}

FsStats LayerFs::StatFs() const {
  FsStats s;
  s.files = 1;
  uint64_t bytes = 0;
  absl::ReaderMutexLock lock(&mu_);
  for (const auto& [name, id] : names_) {
    const LayerTree& tree = *layers_.at(id)->tree;
    bytes += static_cast<uint64_t>(tree.content_bytes());
    s.files += tree.nodes().size();
  }
  s.blocks = (bytes + s.block_size - 1) / s.block_size;
  return s;
}

uint64_t LayerFs::LookupCount(uint64_t ino) const {
  absl::StatusOr<std::shared_ptr<Layer>> layer = LayerOf(ino);
  if (!layer.ok()) return 0;
  absl::MutexLock lock(&(*layer)->mu);
  auto it = (*layer)->lookups.find(NodeNumberOf(ino));
  return it == (*layer)->lookups.end() ? 0 : it->second;
}

int64_t LayerFs::OpenFiles() const {
  absl::ReaderMutexLock lock(&mu_);
  return static_cast<int64_t>(handles_.size());
}

}  // namespace slipstream::fuse
