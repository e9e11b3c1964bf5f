// SPDX-License-Identifier: Apache-2.0
#include "fuse/layer_tree.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <deque>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/strings.h"

namespace slipstream::fuse {
namespace {

constexpr uint32_t kNoNode = std::numeric_limits<uint32_t>::max();
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr std::string_view kPaxXattrPrefix = "SCHILY.xattr.";
constexpr std::string_view kOverlayXattrPrefix = "trusted.overlay.";
constexpr int64_t kDirSize = 4096;

// Splits a tar name into its components, dropping empty and "." ones. False when a ".."
// component would climb out of the layer (such entries are left out).
bool SplitName(std::string_view name, std::vector<std::string_view>* parts) {
  parts->clear();
  while (!name.empty()) {
    size_t slash = name.find('/');
    std::string_view part = name.substr(0, slash);
    name = slash == std::string_view::npos ? std::string_view() : name.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") return false;
    parts->push_back(part);
  }
  return true;
}

NodeKind KindOfType(std::string_view type) {
  if (type == index::kTypeDir) return NodeKind::kDir;
  if (type == index::kTypeSymlink) return NodeKind::kSymlink;
  if (type == index::kTypeChar) return NodeKind::kCharDev;
  if (type == index::kTypeBlock) return NodeKind::kBlockDev;
  if (type == index::kTypeFifo) return NodeKind::kFifo;
  return NodeKind::kFile;
}

uint32_t TypeBits(NodeKind kind) {
  switch (kind) {
    case NodeKind::kDir:
      return S_IFDIR;
    case NodeKind::kFile:
      return S_IFREG;
    case NodeKind::kSymlink:
      return S_IFLNK;
    case NodeKind::kCharDev:
    case NodeKind::kWhiteout:
      return S_IFCHR;
    case NodeKind::kBlockDev:
      return S_IFBLK;
    case NodeKind::kFifo:
      return S_IFIFO;
  }
  return S_IFREG;
}

}  // namespace

bool ParseModTime(std::string_view text, int64_t* sec, int32_t* nsec) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, AV(text), &t, &err)) return false;
  absl::Time whole = absl::FromUnixSeconds(absl::ToUnixSeconds(t));
  if (whole > t) whole -= absl::Seconds(1);  // floor for times before the epoch
  *sec = absl::ToUnixSeconds(whole);
  *nsec = static_cast<int32_t>((t - whole) / absl::Nanoseconds(1));
  return true;
}

// Mutable nodes while the zTOC is walked; LayerTree keeps only the reachable ones.
class LayerTree::Builder {
 public:
  explicit Builder(const index::Ztoc& z) : z_(z) {
    BNode root;
    root.number = kLayerRootNumber;
    root.kind = NodeKind::kDir;
    root.nlink = 1;
    nodes_.push_back(std::move(root));
  }

  absl::Status Walk(int64_t* skipped) {
    std::vector<std::string_view> parts;
    const int64_t count = static_cast<int64_t>(z_.entries.size());
    for (int64_t i = 0; i < count; ++i) {
      if (!AddEntry(i, &parts)) ++*skipped;
    }
    uint64_t last = 2 + static_cast<uint64_t>(count) + implied_;
    if (last > std::numeric_limits<uint32_t>::max()) {
      return absl::InvalidArgumentError(
          absl::StrCat("layer has ", count, " entries and ", implied_,
                       " implied directories: too many for 32-bit node numbers"));
    }
    return absl::OkStatus();
  }

  // Copies the nodes reachable from the root into `tree`, breadth first.
  void Finish(LayerTree* tree) {
    std::vector<uint32_t> new_index(nodes_.size(), kNoNode);
    std::deque<uint32_t> queue = {0};
    std::vector<uint32_t> order;
    new_index[0] = 0;
    while (!queue.empty()) {
      uint32_t b = queue.front();
      queue.pop_front();
      order.push_back(b);
      for (const auto& [name, child] : nodes_[b].children) {
        if (new_index[child] != kNoNode) continue;  // a second name of a hardlinked file
        new_index[child] = static_cast<uint32_t>(order.size() + queue.size());
        queue.push_back(child);
      }
    }
    uint32_t max_number = 0;
    tree->nodes_.resize(order.size());
    for (size_t i = 0; i < order.size(); ++i) {
      BNode& b = nodes_[order[i]];
      Node& n = tree->nodes_[i];
      n.number = b.number;
      n.parent = new_index[b.parent];
      n.entry = b.entry;
      n.kind = b.kind;
      n.opaque = b.opaque;
      n.mtime_sec = b.mtime_sec;
      n.mtime_nsec = b.mtime_nsec;
      n.nlink = b.nlink;
      max_number = std::max(max_number, b.number);
      if (b.kind == NodeKind::kDir) {
        uint32_t subdirs = 0;
        n.children.reserve(b.children.size());
        for (const auto& [name, child] : b.children) {
          n.children.push_back({name, new_index[child]});
          if (nodes_[child].kind == NodeKind::kDir) ++subdirs;
        }
        std::sort(n.children.begin(), n.children.end(),
                  [](const Child& a, const Child& c) { return a.name < c.name; });
        n.nlink = 2 + subdirs;
      } else if (b.kind == NodeKind::kFile && b.entry >= 0) {
        tree->content_bytes_ += z_.entries[b.entry].uncompressed_size;
      }
    }
    tree->index_by_number_.assign(static_cast<size_t>(max_number) + 1, kNoNode);
    for (size_t i = 0; i < tree->nodes_.size(); ++i) {
      tree->index_by_number_[tree->nodes_[i].number] = static_cast<uint32_t>(i);
    }
  }

 private:
  struct BNode {
    uint32_t number = 0;
    uint32_t parent = 0;
    int64_t entry = -1;
    uint32_t nlink = 0;  // names pointing here (directories: recomputed in Finish)
    NodeKind kind = NodeKind::kDir;
    bool opaque = false;
    int64_t mtime_sec = 0;
    int32_t mtime_nsec = 0;
    absl::flat_hash_map<std::string_view, uint32_t> children;
  };

  uint32_t EntryNumber(int64_t entry) const { return static_cast<uint32_t>(2 + entry); }

  uint32_t NewNode(NodeKind kind, int64_t entry, uint32_t number, uint32_t parent) {
    BNode n;
    n.kind = kind;
    n.entry = entry;
    n.number = number;
    n.parent = parent;
    if (entry >= 0) SetTimes(&n, entry);
    nodes_.push_back(std::move(n));
    return static_cast<uint32_t>(nodes_.size() - 1);
  }

  void SetTimes(BNode* n, int64_t entry) {
    const std::string& text = z_.entries[entry].mod_time;
    if (text.empty() || !ParseModTime(text, &n->mtime_sec, &n->mtime_nsec)) {
      n->mtime_sec = 0;
      n->mtime_nsec = 0;
    }
  }

  // Points `name` in directory `dir` at node `node`, unlinking whatever was there.
  void Place(uint32_t dir, std::string_view name, uint32_t node) {
    auto [it, inserted] = nodes_[dir].children.try_emplace(name, node);
    if (!inserted) {
      if (it->second == node) return;
      --nodes_[it->second].nlink;
      it->second = node;
    }
    ++nodes_[node].nlink;
  }

  // The node at `parts` in the tree as built so far, or kNoNode.
  uint32_t Resolve(const std::vector<std::string_view>& parts) const {
    uint32_t cur = 0;
    for (std::string_view part : parts) {
      const BNode& n = nodes_[cur];
      if (n.kind != NodeKind::kDir) return kNoNode;
      auto it = n.children.find(part);
      if (it == n.children.end()) return kNoNode;
      cur = it->second;
    }
    return cur;
  }

  // Adds entry `i`; false when it is left out.
  bool AddEntry(int64_t i, std::vector<std::string_view>* parts) {
    const index::FileMetadata& e = z_.entries[i];
    if (!SplitName(e.name, parts)) return false;
    if (parts->empty()) {
      // "./": the layer directory's own attributes.
      if (e.type != index::kTypeDir) return false;
      nodes_[0].entry = i;
      SetTimes(&nodes_[0], i);
      return true;
    }
    uint32_t dir = 0;
    for (size_t j = 0; j + 1 < parts->size(); ++j) {
      auto it = nodes_[dir].children.find((*parts)[j]);
      if (it == nodes_[dir].children.end()) {
        uint32_t number = static_cast<uint32_t>(
            std::min<uint64_t>(2 + z_.entries.size() + implied_++, kNoNode - 1));
        uint32_t made = NewNode(NodeKind::kDir, -1, number, dir);
        Place(dir, (*parts)[j], made);
        dir = made;
      } else if (nodes_[it->second].kind != NodeKind::kDir) {
        return false;  // a path through a non-directory
      } else {
        dir = it->second;
      }
    }
    std::string_view base = parts->back();
    if (base == kOpaqueMarker) {
      nodes_[dir].opaque = true;
      return true;
    }
    if (absl::StartsWith(AV(base), AV(kWhiteoutPrefix))) {
      std::string_view hidden = base.substr(kWhiteoutPrefix.size());
      if (hidden.empty() || hidden == "." || hidden == "..") return false;
      Place(dir, hidden, NewNode(NodeKind::kWhiteout, i, EntryNumber(i), dir));
      return true;
    }
    if (e.type == index::kTypeHardlink) {
      std::vector<std::string_view> target_parts;
      if (!SplitName(e.linkname, &target_parts) || target_parts.empty()) return false;
      uint32_t target = Resolve(target_parts);
      if (target == kNoNode || nodes_[target].kind == NodeKind::kDir) return false;
      Place(dir, base, target);
      return true;
    }
    NodeKind kind = KindOfType(e.type);
    if (kind == NodeKind::kDir) {
      auto it = nodes_[dir].children.find(base);
      if (it != nodes_[dir].children.end() && nodes_[it->second].kind == NodeKind::kDir) {
        // A directory over a directory merges: new attributes, same node and children.
        nodes_[it->second].entry = i;
        SetTimes(&nodes_[it->second], i);
        return true;
      }
    }
    Place(dir, base, NewNode(kind, i, EntryNumber(i), dir));
    return true;
  }

  const index::Ztoc& z_;
  std::vector<BNode> nodes_;
  uint64_t implied_ = 0;
};

absl::StatusOr<std::shared_ptr<const LayerTree>> LayerTree::Build(
    std::shared_ptr<const index::Ztoc> ztoc) {
  std::shared_ptr<LayerTree> tree(new LayerTree(std::move(ztoc)));
  Builder builder(*tree->ztoc_);
  absl::Status walked = builder.Walk(&tree->skipped_);
  if (!walked.ok()) return walked;
  builder.Finish(tree.get());
  return std::shared_ptr<const LayerTree>(std::move(tree));
}

const LayerTree::Node* LayerTree::FindNumber(uint32_t number) const {
  if (number >= index_by_number_.size() || index_by_number_[number] == kNoNode) return nullptr;
  return &nodes_[index_by_number_[number]];
}

const LayerTree::Node* LayerTree::FindChild(const Node& dir, std::string_view name) const {
  if (dir.kind != NodeKind::kDir) return nullptr;
  auto it = std::lower_bound(dir.children.begin(), dir.children.end(), name,
                             [](const Child& c, std::string_view n) { return c.name < n; });
  if (it == dir.children.end() || it->name != name) return nullptr;
  return &nodes_[it->node];
}

const LayerTree::Node* LayerTree::FindPath(std::string_view path) const {
  std::vector<std::string_view> parts;
  if (!SplitName(path, &parts)) return nullptr;
  const Node* cur = &root();
  for (std::string_view part : parts) {
    cur = FindChild(*cur, part);
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

const index::FileMetadata* LayerTree::EntryOf(const Node& node) const {
  return node.entry < 0 ? nullptr : &ztoc_->entries[node.entry];
}

std::string_view LayerTree::LinkTarget(const Node& node) const {
  const index::FileMetadata* e = EntryOf(node);
  return node.kind == NodeKind::kSymlink && e != nullptr ? std::string_view(e->linkname)
                                                         : std::string_view();
}

Attr LayerTree::AttrOf(const Node& node, uint32_t layer_id) const {
  const index::FileMetadata* e = EntryOf(node);
  Attr a;
  a.ino = MakeIno(layer_id, node.number);
  a.nlink = node.nlink;
  a.mtime_sec = node.mtime_sec;
  a.mtime_nsec = node.mtime_nsec;
  uint32_t perms = node.kind == NodeKind::kDir ? 0755 : 0644;
  if (e != nullptr) {
    perms = static_cast<uint32_t>(e->mode) & 07777;
    a.uid = e->uid;
    a.gid = e->gid;
  }
  switch (node.kind) {
    case NodeKind::kDir:
      a.size = kDirSize;
      break;
    case NodeKind::kFile:
      a.size = e != nullptr ? e->uncompressed_size : 0;
      break;
    case NodeKind::kSymlink:
      a.size = static_cast<int64_t>(LinkTarget(node).size());
      break;
    case NodeKind::kCharDev:
    case NodeKind::kBlockDev:
      a.rdev = makedev(static_cast<unsigned>(e->devmajor), static_cast<unsigned>(e->devminor));
      break;
    case NodeKind::kWhiteout:
      perms = 0;
      break;
    case NodeKind::kFifo:
      break;
  }
  a.mode = TypeBits(node.kind) | perms;
  a.blocks = (a.size + 511) / 512;
  return a;
}

std::vector<std::pair<std::string, std::string_view>> LayerTree::Xattrs(const Node& node) const {
  std::vector<std::pair<std::string, std::string_view>> out;
  if (const index::FileMetadata* e = EntryOf(node); e != nullptr && node.kind != NodeKind::kWhiteout) {
    for (const index::Xattr& x : e->xattrs) {
      if (!absl::StartsWith(x.key, AV(kPaxXattrPrefix))) continue;
      std::string key = x.key.substr(kPaxXattrPrefix.size());
      if (key.empty() || absl::StartsWith(key, AV(kOverlayXattrPrefix))) continue;
      out.emplace_back(std::move(key), x.value);
    }
  }
  if (node.opaque) out.emplace_back("trusted.overlay.opaque", "y");
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace slipstream::fuse
