// SPDX-License-Identifier: Apache-2.0
// LayerFs: lookups, attributes, directories, symlinks and xattrs.
#include "fuse/layer_fs.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/strings.h"
#include "fuse/layer_fs_internal.h"

namespace slipstream::fuse {

absl::StatusOr<Attr> LayerFs::Lookup(uint64_t parent, std::string_view name) {
  if (parent == kRootIno) {
    absl::ReaderMutexLock lock(&mu_);
    auto it = names_.find(name);
    if (it == names_.end()) return absl::NotFoundError(absl::StrCat("no layer ", AV(name)));
    Layer& layer = *layers_.at(it->second);
    Ref(layer, kLayerRootNumber);
    return layer.tree->AttrOf(layer.tree->root(), layer.id);
  }
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(parent));
  SS_ASSIGN_OR_RETURN(const LayerTree::Node* dir, NodeOf(*layer, parent));
  if (dir->kind != NodeKind::kDir) {
    return absl::InvalidArgumentError(absl::StrCat("inode ", parent, " is not a directory"));
  }
  const LayerTree::Node* child = layer->tree->FindChild(*dir, name);
  if (child == nullptr) {
    return absl::NotFoundError(absl::StrCat("no ", AV(name), " in inode ", parent));
  }
  Ref(*layer, child->number);
  return layer->tree->AttrOf(*child, layer->id);
}

absl::Status LayerFs::Forget(uint64_t ino, uint64_t nlookup) {
  if (ino == kRootIno) return absl::OkStatus();
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(ino));
  absl::Status result;
  {
    absl::MutexLock lock(&layer->mu);
    auto it = layer->lookups.find(NodeNumberOf(ino));
    if (it == layer->lookups.end() || it->second < nlookup) {
      result = absl::FailedPreconditionError(
          absl::StrCat("forget ", nlookup, " of inode ", ino, " with ",
                       it == layer->lookups.end() ? 0 : it->second, " lookups"));
      if (it != layer->lookups.end()) layer->lookups.erase(it);
    } else if ((it->second -= nlookup) == 0) {
      layer->lookups.erase(it);
    }
  }
  MaybeRetire(layer);
  return result;
}

absl::StatusOr<Attr> LayerFs::GetAttr(uint64_t ino) {
  if (ino == kRootIno) return RootAttr();
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(ino));
  SS_ASSIGN_OR_RETURN(const LayerTree::Node* node, NodeOf(*layer, ino));
  return layer->tree->AttrOf(*node, layer->id);
}

absl::Status LayerFs::ReadRootDir(int64_t offset, bool plus,
                                  absl::FunctionRef<bool(const DirEntry&)> add) {
  // Cookies: "." 1, ".." 2, layer L: L + 2. Layers are listed by id, so a layer added or
  // removed between two calls moves no other layer's cookie.
  const Attr root = RootAttr();
  for (int64_t k = 0; k < 2; ++k) {
    if (offset > k) continue;
    if (!add(DirEntry{k == 0 ? "." : "..", root, k + 1})) return absl::OkStatus();
  }
  std::vector<std::shared_ptr<Layer>> listed;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, id] : names_) {
      if (static_cast<int64_t>(id) + 2 > offset) listed.push_back(layers_.at(id));
    }
  }
  std::sort(listed.begin(), listed.end(),
            [](const auto& a, const auto& b) { return a->id < b->id; });
  for (const std::shared_ptr<Layer>& layer : listed) {
    DirEntry e{layer->name, layer->tree->AttrOf(layer->tree->root(), layer->id),
               static_cast<int64_t>(layer->id) + 2};
    if (!add(e)) break;
    if (plus) Ref(*layer, kLayerRootNumber);
  }
  return absl::OkStatus();
}

absl::Status LayerFs::ReadDir(uint64_t ino, int64_t offset, bool plus,
                              absl::FunctionRef<bool(const DirEntry&)> add) {
  if (offset < 0) return absl::InvalidArgumentError(absl::StrCat("readdir offset ", offset));
  if (ino == kRootIno) return ReadRootDir(offset, plus, add);
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(ino));
  SS_ASSIGN_OR_RETURN(const LayerTree::Node* dir, NodeOf(*layer, ino));
  if (dir->kind != NodeKind::kDir) {
    return absl::InvalidArgumentError(absl::StrCat("inode ", ino, " is not a directory"));
  }
  const LayerTree& tree = *layer->tree;
  // Cookies: entry k (0 ".", 1 "..", 2 + i the i-th child) has cookie k + 1.
  const int64_t count = 2 + static_cast<int64_t>(dir->children.size());
  for (int64_t k = offset; k < count; ++k) {
    DirEntry e;
    e.offset = k + 1;
    const LayerTree::Node* node = nullptr;
    if (k == 0) {
      e.name = ".";
      e.attr = tree.AttrOf(*dir, layer->id);
    } else if (k == 1) {
      e.name = "..";
      e.attr = dir == &tree.root() ? RootAttr() : tree.AttrOf(tree.nodes()[dir->parent], layer->id);
    } else {
      const LayerTree::Child& child = dir->children[k - 2];
      node = &tree.nodes()[child.node];
      e.name = std::string(child.name);
      e.attr = tree.AttrOf(*node, layer->id);
    }
    if (!add(e)) break;
    if (plus && node != nullptr) Ref(*layer, node->number);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LayerFs::ReadLink(uint64_t ino) {
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(ino));
  SS_ASSIGN_OR_RETURN(const LayerTree::Node* node, NodeOf(*layer, ino));
  if (node->kind != NodeKind::kSymlink) {
    return absl::InvalidArgumentError(absl::StrCat("inode ", ino, " is not a symlink"));
  }
  return std::string(layer->tree->LinkTarget(*node));
}

absl::StatusOr<std::optional<std::string>> LayerFs::GetXattr(uint64_t ino,
                                                             std::string_view name) {
  if (ino == kRootIno) return std::optional<std::string>();
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(ino));
  SS_ASSIGN_OR_RETURN(const LayerTree::Node* node, NodeOf(*layer, ino));
  for (const auto& [key, value] : layer->tree->Xattrs(*node)) {
    if (key == name) return std::optional<std::string>(std::string(value));
  }
  return std::optional<std::string>();
}

absl::StatusOr<std::vector<std::string>> LayerFs::ListXattr(uint64_t ino) {
  std::vector<std::string> names;
  if (ino == kRootIno) return names;
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(ino));
  SS_ASSIGN_OR_RETURN(const LayerTree::Node* node, NodeOf(*layer, ino));
  for (auto& [key, value] : layer->tree->Xattrs(*node)) names.push_back(std::move(key));
  return names;
}

}  // namespace slipstream::fuse
