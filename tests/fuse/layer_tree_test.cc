// SPDX-License-Identifier: Apache-2.0
// LayerTree: the directory tree of a layer from its zTOC, with overlay semantics and node
// numbers that depend only on the zTOC.
#include "fuse/layer_tree.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "tests/fuse/test_layer.h"

namespace slipstream::fuse {
namespace {

index::FileMetadata Entry(std::string name, std::string type, int64_t mode = 0644) {
  index::FileMetadata e;
  e.name = std::move(name);
  e.type = std::move(type);
  e.mode = mode;
  return e;
}

std::shared_ptr<const LayerTree> TreeOf(std::vector<index::FileMetadata> entries) {
  auto z = std::make_shared<index::Ztoc>();
  z->entries = std::move(entries);
  auto tree = LayerTree::Build(z);
  EXPECT_TRUE(tree.ok()) << tree.status();
  return *tree;
}

TEST(LayerTreeTest, NumbersComeFromEntryIndexesAndImpliedDirectoriesFollow) {
  auto tree = TreeOf({Entry("a/b/file", "reg"), Entry("c/", "dir", 0700), Entry("a/x", "reg")});
  EXPECT_EQ(tree->root().number, kLayerRootNumber);
  const LayerTree::Node* file = tree->FindPath("a/b/file");
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(file->number, 2u);  // entry 0
  EXPECT_EQ(tree->FindPath("c")->number, 3u);
  EXPECT_EQ(tree->FindPath("a/x")->number, 4u);
  // Implied directories: 2 + 3 entries, in order of first mention.
  EXPECT_EQ(tree->FindPath("a")->number, 5u);
  EXPECT_EQ(tree->FindPath("a/b")->number, 6u);
  Attr implied = tree->AttrOf(*tree->FindPath("a"), 7);
  EXPECT_EQ(implied.mode, static_cast<uint32_t>(S_IFDIR | 0755));
  EXPECT_EQ(implied.uid, 0u);
  EXPECT_EQ(implied.mtime_sec, 0);
  EXPECT_EQ(implied.ino, MakeIno(7, 5));
  EXPECT_EQ(tree->AttrOf(*tree->FindPath("c"), 7).mode, static_cast<uint32_t>(S_IFDIR | 0700));
  EXPECT_EQ(tree->FindNumber(6), tree->FindPath("a/b"));
  EXPECT_EQ(tree->FindNumber(99), nullptr);
}

TEST(LayerTreeTest, LaterEntriesReplaceAndDirectoriesMerge) {
  auto tree = TreeOf({Entry("d/", "dir", 0700), Entry("d/keep", "reg"), Entry("f", "reg"),
                      Entry("./d", "dir", 0750), Entry("f", "symlink"), Entry("g/", "dir"),
                      Entry("g/child", "reg"), Entry("g", "reg")});
  const LayerTree::Node* d = tree->FindPath("d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->number, 2u);  // the first entry's number, the last entry's attributes
  EXPECT_EQ(tree->AttrOf(*d, 1).mode & 07777, 0750u);
  EXPECT_NE(tree->FindPath("d/keep"), nullptr);
  EXPECT_EQ(tree->FindPath("f")->kind, NodeKind::kSymlink);
  EXPECT_EQ(tree->FindPath("f")->number, 6u);
  // A file over a directory drops the directory and its children.
  EXPECT_EQ(tree->FindPath("g")->kind, NodeKind::kFile);
  EXPECT_EQ(tree->FindPath("g/child"), nullptr);
  EXPECT_EQ(tree->FindNumber(8), nullptr);  // g/child is unreachable, so not found
  EXPECT_EQ(tree->root().children.size(), 3u);
}

TEST(LayerTreeTest, BadEntriesAreLeftOut) {
  index::FileMetadata hard_to_missing = Entry("h", "hardlink");
  hard_to_missing.linkname = "missing";
  index::FileMetadata hard_to_dir = Entry("h2", "hardlink");
  hard_to_dir.linkname = "dir";
  auto tree = TreeOf({Entry("../escape", "reg"), Entry("a/../../b", "reg"), Entry("dir/", "dir"),
                      hard_to_missing, hard_to_dir, Entry("file", "reg"),
                      Entry("file/under", "reg"), Entry(".wh..", "reg")});
  EXPECT_EQ(tree->skipped(), 6);
  EXPECT_EQ(tree->root().children.size(), 2u);  // dir, file
}

TEST(LayerTreeTest, HardlinksShareTheNodeAndCountNames) {
  index::FileMetadata link = Entry("sub/link", "hardlink");
  link.linkname = "./orig";
  index::FileMetadata link2 = Entry("link2", "hardlink");
  link2.linkname = "sub/link";
  auto tree = TreeOf({Entry("orig", "reg"), Entry("sub/", "dir"), link, link2,
                      Entry("sub/inner/", "dir"), Entry("sub/other/", "dir")});
  const LayerTree::Node* orig = tree->FindPath("orig");
  EXPECT_EQ(orig, tree->FindPath("sub/link"));
  EXPECT_EQ(orig, tree->FindPath("link2"));
  EXPECT_EQ(orig->nlink, 3u);
  EXPECT_EQ(tree->FindPath("sub")->nlink, 4u);  // 2 + inner + other
  EXPECT_EQ(tree->root().nlink, 3u);            // 2 + sub
}

TEST(LayerTreeTest, WhiteoutsAndOpaqueDirectories) {
  index::FileMetadata wh = Entry("etc/.wh.passwd", "reg", 0600);
  wh.uid = 5;
  wh.mod_time = "2020-01-02T03:04:05Z";
  auto tree = TreeOf({Entry("etc/", "dir"), wh, Entry("etc/.wh..wh..opq", "reg")});
  const LayerTree::Node* white = tree->FindPath("etc/passwd");
  ASSERT_NE(white, nullptr);
  EXPECT_EQ(white->kind, NodeKind::kWhiteout);
  Attr a = tree->AttrOf(*white, 1);
  EXPECT_EQ(a.mode, static_cast<uint32_t>(S_IFCHR));
  EXPECT_EQ(a.rdev, makedev(0, 0));
  EXPECT_EQ(a.uid, 5u);
  EXPECT_EQ(a.mtime_sec, 1577934245);
  EXPECT_EQ(tree->FindPath("etc/.wh.passwd"), nullptr);
  EXPECT_EQ(tree->FindPath("etc/.wh..wh..opq"), nullptr);
  const LayerTree::Node* etc = tree->FindPath("etc");
  EXPECT_TRUE(etc->opaque);
  auto xattrs = tree->Xattrs(*etc);
  ASSERT_EQ(xattrs.size(), 1u);
  EXPECT_EQ(xattrs[0].first, "trusted.overlay.opaque");
  EXPECT_EQ(xattrs[0].second, "y");
  EXPECT_EQ(etc->children.size(), 1u);
}

TEST(LayerTreeTest, XattrsFromPaxRecords) {
  index::FileMetadata e = Entry("f", "reg");
  e.xattrs = {{"SCHILY.xattr.security.capability", std::string("\0\1", 2)},
              {"SCHILY.xattr.trusted.overlay.opaque", "y"},
              {"SCHILY.xattr.user.a", "1"},
              {"mtime", "1.5"},
              {"path", "f"}};
  auto tree = TreeOf({e});
  auto xattrs = tree->Xattrs(*tree->FindPath("f"));
  ASSERT_EQ(xattrs.size(), 2u);
  EXPECT_EQ(xattrs[0].first, "security.capability");
  EXPECT_EQ(xattrs[0].second, std::string_view("\0\1", 2));
  EXPECT_EQ(xattrs[1].first, "user.a");
}

TEST(LayerTreeTest, ParseModTime) {
  int64_t sec = 0;
  int32_t nsec = 0;
  ASSERT_TRUE(ParseModTime("2023-11-14T22:13:20.123456789Z", &sec, &nsec));
  EXPECT_EQ(sec, 1700000000);
  EXPECT_EQ(nsec, 123456789);
  ASSERT_TRUE(ParseModTime("2023-11-15T00:13:20+02:00", &sec, &nsec));
  EXPECT_EQ(sec, 1700000000);
  EXPECT_EQ(nsec, 0);
  ASSERT_TRUE(ParseModTime("1969-12-31T23:59:59.5Z", &sec, &nsec));
  EXPECT_EQ(sec, -1);
  EXPECT_EQ(nsec, 500000000);
  EXPECT_FALSE(ParseModTime("yesterday", &sec, &nsec));
}

TEST(LayerTreeTest, RichLayerShapes) {
  const testing::TestLayer& layer = testing::RichLayer();
  auto tree = LayerTree::Build(layer.ztoc);
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ((*tree)->skipped(), 0);
  // The big file crosses many spans.
  const index::Ztoc& z = *layer.ztoc;
  const index::FileMetadata* big = nullptr;
  for (const auto& e : z.entries) {
    if (e.name == testing::kBigFile) big = &e;
  }
  ASSERT_NE(big, nullptr);
  EXPECT_GE(z.SpanForUncompressedOffset(big->uncompressed_offset + big->uncompressed_size - 1) -
                z.SpanForUncompressedOffset(big->uncompressed_offset),
            15);
  for (const auto& [path, content] : layer.files) {
    const LayerTree::Node* n = (*tree)->FindPath(path);
    ASSERT_NE(n, nullptr) << path;
    EXPECT_EQ(n->kind, NodeKind::kFile) << path;
    EXPECT_EQ((*tree)->AttrOf(*n, 1).size, static_cast<int64_t>(content.size())) << path;
  }
  // The root entry "./" gave the layer directory its attributes.
  EXPECT_GE((*tree)->root().entry, 0);
}

}  // namespace
}  // namespace slipstream::fuse
