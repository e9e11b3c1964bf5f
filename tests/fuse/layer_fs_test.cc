// SPDX-License-Identifier: Apache-2.0
// LayerFs without libfuse: the operations the adapter calls, on generated layers.
#include "fuse/layer_fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tests/fuse/test_layer.h"

namespace slipstream::fuse {
namespace {

using testing::RichLayer;

constexpr uint32_t kLayerId = 7;
constexpr char kLayerName[] = "snap-7";

class LayerFsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.AddLayer(kLayerName, kLayerId, RichLayer().ztoc, RichLayer().NewReader()).ok());
  }

  // The attributes of a path below the layer directory, looked up component by component
  // (each lookup counted, as the kernel would).
  absl::StatusOr<Attr> Walk(LayerFs& fs, const std::string& path,
                            const std::string& layer = kLayerName) {
    SS_ASSIGN_OR_RETURN(Attr cur, fs.Lookup(kRootIno, layer));
    size_t pos = 0;
    while (pos < path.size()) {
      size_t slash = path.find('/', pos);
      std::string part = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
      SS_ASSIGN_OR_RETURN(cur, fs.Lookup(cur.ino, part));
      if (slash == std::string::npos) break;
      pos = slash + 1;
    }
    return cur;
  }

  absl::StatusOr<std::string> ReadAll(LayerFs& fs, uint64_t ino, int64_t chunk = 128 << 10) {
    SS_ASSIGN_OR_RETURN(uint64_t fh, fs.Open(ino, O_RDONLY));
    std::string out;
    while (true) {
      SS_ASSIGN_OR_RETURN(std::string piece, fs.Read(ino, fh, static_cast<int64_t>(out.size()), chunk));
      if (piece.empty()) break;
      out += piece;
    }
    SS_RETURN_IF_ERROR(fs.Release(ino, fh));
    return out;
  }

  // Every entry of a directory, through as many ReadDir calls as a reply of `per_call`
  // entries needs.
  std::vector<DirEntry> List(LayerFs& fs, uint64_t ino, size_t per_call = 1000,
                             bool plus = false) {
    std::vector<DirEntry> out;
    int64_t offset = 0;
    while (true) {
      size_t taken = 0;
      absl::Status s = fs.ReadDir(ino, offset, plus, [&](const DirEntry& e) {
        if (taken == per_call) return false;
        ++taken;
        out.push_back(e);
        offset = e.offset;
        return true;
      });
      EXPECT_TRUE(s.ok()) << s;
      if (taken == 0) break;
    }
    return out;
  }

  LayerFs fs_;
};

TEST_F(LayerFsTest, EveryFileReadsBackAsWritten) {
  for (const auto& [path, content] : RichLayer().files) {
    absl::StatusOr<Attr> attr = Walk(fs_, path);
    ASSERT_TRUE(attr.ok()) << path << ": " << attr.status();
    EXPECT_TRUE(S_ISREG(attr->mode)) << path;
    EXPECT_EQ(attr->size, static_cast<int64_t>(content.size())) << path;
    EXPECT_EQ(attr->blocks, (attr->size + 511) / 512) << path;
    // Odd chunk sizes cross span boundaries at many different offsets.
    absl::StatusOr<std::string> got = ReadAll(fs_, attr->ino, 100003);
    ASSERT_TRUE(got.ok()) << path << ": " << got.status();
    EXPECT_TRUE(*got == content) << path << ": " << got->size() << " vs " << content.size();
  }
  EXPECT_EQ(fs_.OpenFiles(), 0);
}

TEST_F(LayerFsTest, WalkingTheTreeFindsExactlyTheArchive) {
  // Recursive ReadDir from the layer directory, two entries per call.
  std::set<std::string> seen;
  std::vector<std::pair<std::string, uint64_t>> stack = {{"", MakeIno(kLayerId, 1)}};
  while (!stack.empty()) {
    auto [prefix, ino] = stack.back();
    stack.pop_back();
    std::vector<DirEntry> entries = List(fs_, ino, 2);
    ASSERT_GE(entries.size(), 2u);
    EXPECT_EQ(entries[0].name, ".");
    EXPECT_EQ(entries[1].name, "..");
    for (size_t i = 2; i < entries.size(); ++i) {
      std::string path = prefix.empty() ? entries[i].name : prefix + "/" + entries[i].name;
      EXPECT_TRUE(seen.insert(path).second) << "listed twice: " << path;
      if (S_ISDIR(entries[i].attr.mode)) stack.push_back({path, entries[i].attr.ino});
    }
  }
  for (const auto& [path, content] : RichLayer().files) EXPECT_TRUE(seen.count(path)) << path;
  const std::set<std::string> others = {
      "etc", "etc/localtime", "etc/motd", "bin", "tmp", "shared", "rel", "longlink", "dev",
      "dev/null", "dev/sda", "dev/fifo", "deep", "deep/" + std::string(120, 'd'), "opaque", "many"};
  for (const std::string& p : others) EXPECT_TRUE(seen.count(p)) << p;
  EXPECT_EQ(seen.size(), RichLayer().files.size() + others.size());
  EXPECT_FALSE(seen.count("etc/.wh.motd"));
  EXPECT_FALSE(seen.count("opaque/.wh..wh..opq"));
}

TEST_F(LayerFsTest, AttributesOfEveryEntryType) {
  auto attr = [&](const std::string& path) {
    absl::StatusOr<Attr> a = Walk(fs_, path);
    EXPECT_TRUE(a.ok()) << path << ": " << a.status();
    return a.ok() ? *a : Attr{};
  };
  EXPECT_EQ(attr("bin/tool").mode, static_cast<uint32_t>(S_IFREG | 04755));
  EXPECT_EQ(attr("bin").mode, static_cast<uint32_t>(S_IFDIR | 0755));  // implied
  EXPECT_EQ(attr("tmp").mode, static_cast<uint32_t>(S_IFDIR | 01777));
  Attr shared = attr("shared");
  EXPECT_EQ(shared.mode, static_cast<uint32_t>(S_IFDIR | 02775));
  EXPECT_EQ(shared.uid, 1000u);
  EXPECT_EQ(shared.gid, 2000u);
  EXPECT_EQ(attr("shared/empty").size, 0);
  Attr null = attr("dev/null");
  EXPECT_EQ(null.mode, static_cast<uint32_t>(S_IFCHR | 0666));
  EXPECT_EQ(null.rdev, makedev(1, 3));
  Attr sda = attr("dev/sda");
  EXPECT_EQ(sda.mode, static_cast<uint32_t>(S_IFBLK | 0660));
  EXPECT_EQ(sda.rdev, makedev(8, 0));
  EXPECT_EQ(sda.gid, 6u);
  EXPECT_TRUE(S_ISFIFO(attr("dev/fifo").mode));
  Attr nano = attr(testing::kNanoFile);
  EXPECT_EQ(nano.mtime_sec, testing::kNanoMtimeSec);
  EXPECT_EQ(nano.mtime_nsec, testing::kNanoMtimeNsec);
  EXPECT_EQ(nano.uid, 65534u);
  // Symlinks: exact targets, also past the 100-byte ustar field.
  Attr localtime = attr("etc/localtime");
  EXPECT_TRUE(S_ISLNK(localtime.mode));
  EXPECT_EQ(*fs_.ReadLink(localtime.ino), "/usr/share/zoneinfo/Etc/UTC");
  EXPECT_EQ(localtime.size, 27);
  EXPECT_EQ(*fs_.ReadLink(attr("longlink").ino), std::string(150, 'l') + "/target");
  EXPECT_EQ(fs_.ReadLink(attr("etc").ino).status().code(), absl::StatusCode::kInvalidArgument);
  // Directories: nlink = 2 + subdirectories.
  EXPECT_EQ(attr("dev").nlink, 2u);
  EXPECT_EQ(attr("deep").nlink, 3u);
  // A name written twice reads as its last entry.
  absl::StatusOr<std::string> dup = ReadAll(fs_, attr("dup").ino);
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(*dup, "second and last\n");
}

TEST_F(LayerFsTest, HardlinksShareTheInode) {
  absl::StatusOr<Attr> big = Walk(fs_, testing::kBigFile);
  absl::StatusOr<Attr> link = Walk(fs_, testing::kBigLink);
  ASSERT_TRUE(big.ok() && link.ok());
  EXPECT_EQ(big->ino, link->ino);
  EXPECT_EQ(big->nlink, 2u);
  EXPECT_EQ(fs_.LookupCount(big->ino), 2u);
}

TEST_F(LayerFsTest, WhiteoutsAndOpaqueDirectoriesForOverlay) {
  absl::StatusOr<Attr> white = Walk(fs_, testing::kWhiteout);
  ASSERT_TRUE(white.ok()) << white.status();
  EXPECT_EQ(white->mode, static_cast<uint32_t>(S_IFCHR));
  EXPECT_EQ(white->rdev, 0u);
  EXPECT_EQ(Walk(fs_, "etc/.wh.motd").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<Attr> opaque = Walk(fs_, testing::kOpaqueDir);
  ASSERT_TRUE(opaque.ok());
  auto value = fs_.GetXattr(opaque->ino, "trusted.overlay.opaque");
  ASSERT_TRUE(value.ok() && value->has_value());
  EXPECT_EQ(**value, "y");
  EXPECT_EQ(*fs_.ListXattr(opaque->ino), std::vector<std::string>{"trusted.overlay.opaque"});
  EXPECT_EQ(Walk(fs_, "opaque/.wh..wh..opq").status().code(), absl::StatusCode::kNotFound);
  // Other directories are not opaque.
  absl::StatusOr<Attr> etc = Walk(fs_, "etc");
  EXPECT_FALSE(fs_.GetXattr(etc->ino, "trusted.overlay.opaque")->has_value());
}

TEST_F(LayerFsTest, XattrsFromPaxRecords) {
  absl::StatusOr<Attr> caps = Walk(fs_, testing::kCapsFile);
  ASSERT_TRUE(caps.ok());
  EXPECT_EQ(*fs_.ListXattr(caps->ino),
            (std::vector<std::string>{"security.capability", "user.comment"}));
  EXPECT_EQ(**fs_.GetXattr(caps->ino, "security.capability"),
            std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8));
  EXPECT_EQ(**fs_.GetXattr(caps->ino, "user.comment"), "hello xattr");
  // Overlay metadata from the archive itself is not served.
  EXPECT_FALSE(fs_.GetXattr(caps->ino, "trusted.overlay.redirect")->has_value());
  EXPECT_FALSE(fs_.GetXattr(caps->ino, "user.missing")->has_value());
  EXPECT_TRUE(fs_.ListXattr(kRootIno)->empty());
}

TEST_F(LayerFsTest, InodesAreStableAcrossInstances) {
  LayerFs other;
  ASSERT_TRUE(other.AddLayer("another-name", kLayerId, RichLayer().ztoc, RichLayer().NewReader()).ok());
  LayerFs shifted;
  ASSERT_TRUE(shifted.AddLayer(kLayerName, kLayerId + 1, RichLayer().ztoc, RichLayer().NewReader()).ok());
  std::vector<std::string> paths = {"etc", "etc/motd", "bin", "bin/tool", "many/f3", "dev/null"};
  for (const auto& [path, content] : RichLayer().files) paths.push_back(path);
  for (const std::string& path : paths) {
    absl::StatusOr<Attr> a = Walk(fs_, path);
    absl::StatusOr<Attr> b = Walk(other, path, "another-name");
    absl::StatusOr<Attr> c = Walk(shifted, path);
    ASSERT_TRUE(a.ok() && b.ok() && c.ok()) << path;
    EXPECT_EQ(a->ino, b->ino) << path;
    EXPECT_EQ(LayerIdOf(a->ino), kLayerId);
    EXPECT_EQ(LayerIdOf(c->ino), kLayerId + 1);
    EXPECT_EQ(NodeNumberOf(a->ino), NodeNumberOf(c->ino)) << path;
  }
  EXPECT_EQ(Walk(fs_, "")->ino, MakeIno(kLayerId, kLayerRootNumber));
}

TEST_F(LayerFsTest, LookupForgetAccounting) {
  absl::StatusOr<Attr> hosts = Walk(fs_, testing::kHosts);
  ASSERT_TRUE(hosts.ok());
  const uint64_t layer_root = MakeIno(kLayerId, kLayerRootNumber);
  EXPECT_EQ(fs_.LookupCount(hosts->ino), 1u);
  EXPECT_EQ(fs_.LookupCount(layer_root), 1u);
  ASSERT_TRUE(fs_.Lookup(Walk(fs_, "etc")->ino, "hosts").ok());
  EXPECT_EQ(fs_.LookupCount(hosts->ino), 2u);
  // readdirplus counts each entry it hands out, except "." and "..".
  absl::StatusOr<Attr> etc = fs_.GetAttr(Walk(fs_, "etc")->ino);
  std::vector<DirEntry> listed = List(fs_, etc->ino, 1000, /*plus=*/true);
  EXPECT_EQ(listed.size(), 5u);  // . .. hosts localtime motd
  EXPECT_EQ(fs_.LookupCount(hosts->ino), 3u);
  EXPECT_EQ(fs_.LookupCount(etc->ino), 3u);  // two walks plus nothing from its own "."
  ASSERT_TRUE(fs_.Forget(hosts->ino, 2).ok());
  EXPECT_EQ(fs_.LookupCount(hosts->ino), 1u);
  EXPECT_EQ(fs_.Forget(hosts->ino, 5).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs_.LookupCount(hosts->ino), 0u);
  // Forgetting the root is a no-op; unknown layers are NotFound.
  EXPECT_TRUE(fs_.Forget(kRootIno, 1).ok());
  EXPECT_EQ(fs_.Forget(MakeIno(99, 1), 1).code(), absl::StatusCode::kNotFound);
}

TEST_F(LayerFsTest, RemovedLayerLivesUntilForgotten) {
  absl::StatusOr<Attr> hosts = Walk(fs_, testing::kHosts);
  ASSERT_TRUE(hosts.ok());
  const uint64_t layer_root = MakeIno(kLayerId, kLayerRootNumber);
  const uint64_t etc = Walk(fs_, "etc")->ino;
  std::vector<std::string> removed;
  fs_.SetRemovalObserver([&](std::string_view name) { removed.emplace_back(name); });
  ASSERT_TRUE(fs_.RemoveLayer(kLayerName).ok());
  EXPECT_EQ(removed, std::vector<std::string>{kLayerName});
  // Gone from the root ...
  EXPECT_EQ(fs_.Lookup(kRootIno, kLayerName).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(List(fs_, kRootIno).size(), 2u);
  EXPECT_EQ(fs_.RemoveLayer(kLayerName).code(), absl::StatusCode::kNotFound);
  // ... but its inodes answer while the kernel holds them, and the id stays taken.
  EXPECT_TRUE(fs_.GetAttr(hosts->ino).ok());
  EXPECT_EQ(fs_.AddLayer("new", kLayerId, RichLayer().ztoc, RichLayer().NewReader()).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE(fs_.Forget(hosts->ino, 1).ok());
  ASSERT_TRUE(fs_.Forget(etc, 2).ok());
  ASSERT_TRUE(fs_.Forget(layer_root, 2).ok());
  EXPECT_EQ(fs_.GetAttr(hosts->ino).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(fs_.AddLayer("new", kLayerId, RichLayer().ztoc, RichLayer().NewReader()).ok());
}

TEST_F(LayerFsTest, RetireObserverFiresOnceWhenTheKernelForgetsTheLastInode) {
  std::vector<std::pair<std::string, uint32_t>> retired;
  fs_.SetRetireObserver(
      [&](const std::string& name, uint32_t id) { retired.emplace_back(name, id); });
  absl::StatusOr<Attr> hosts = Walk(fs_, testing::kHosts);
  ASSERT_TRUE(hosts.ok());
  const uint64_t layer_root = MakeIno(kLayerId, kLayerRootNumber);
  const uint64_t etc = Walk(fs_, "etc")->ino;
  ASSERT_TRUE(fs_.RemoveLayer(kLayerName).ok());
  EXPECT_TRUE(retired.empty()) << "the kernel still holds inodes of it";
  ASSERT_TRUE(fs_.Forget(hosts->ino, 1).ok());
  ASSERT_TRUE(fs_.Forget(etc, 2).ok());
  EXPECT_TRUE(retired.empty());
  ASSERT_TRUE(fs_.Forget(layer_root, 2).ok());
  ASSERT_EQ(retired.size(), 1u);
  EXPECT_EQ(retired[0], std::make_pair(std::string(kLayerName), kLayerId));

  // A layer nothing ever looked up retires in RemoveLayer itself.
  ASSERT_TRUE(fs_.AddLayer("other", 9, RichLayer().ztoc, RichLayer().NewReader()).ok());
  ASSERT_TRUE(fs_.RemoveLayer("other").ok());
  ASSERT_EQ(retired.size(), 2u);
  EXPECT_EQ(retired[1], std::make_pair(std::string("other"), uint32_t{9}));
  // A layer with an open file is not removed, so nothing retires.
  ASSERT_TRUE(fs_.AddLayer("third", 10, RichLayer().ztoc, RichLayer().NewReader()).ok());
  absl::StatusOr<Attr> file = Walk(fs_, testing::kHosts, "third");
  ASSERT_TRUE(file.ok());
  absl::StatusOr<uint64_t> fh = fs_.Open(file->ino, O_RDONLY);
  ASSERT_TRUE(fh.ok());
  EXPECT_EQ(fs_.RemoveLayer("third").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(retired.size(), 2u);
}

TEST_F(LayerFsTest, RemoveIsRefusedWhileFilesAreOpen) {
  absl::StatusOr<Attr> hosts = Walk(fs_, testing::kHosts);
  absl::StatusOr<uint64_t> fh = fs_.Open(hosts->ino, O_RDONLY);
  ASSERT_TRUE(fh.ok());
  EXPECT_EQ(fs_.RemoveLayer(kLayerName).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fs_.Lookup(kRootIno, kLayerName).ok());
  EXPECT_EQ(fs_.Status(kLayerName)->open_files, 1);
  ASSERT_TRUE(fs_.Release(hosts->ino, *fh).ok());
  EXPECT_TRUE(fs_.RemoveLayer(kLayerName).ok());
}

TEST_F(LayerFsTest, RootListsLayersWithStableCookies) {
  ASSERT_TRUE(fs_.AddLayer("b-layer", 3, RichLayer().ztoc, RichLayer().NewReader()).ok());
  ASSERT_TRUE(fs_.AddLayer("a-layer", 12, RichLayer().ztoc, RichLayer().NewReader()).ok());
  // Listed by id: b-layer (3), snap-7 (7), a-layer (12).
  std::vector<std::string> names;
  int64_t offset = 0;
  bool added = false;
  while (true) {
    bool any = false;
    ASSERT_TRUE(fs_.ReadDir(kRootIno, offset, false, [&](const DirEntry& e) {
      if (any) return false;  // one entry per call
      any = true;
      names.push_back(e.name);
      offset = e.offset;
      return true;
    }).ok());
    if (!any) break;
    if (!added && names.back() == "b-layer") {
      // Changes between calls neither repeat nor skip the other layers.
      ASSERT_TRUE(fs_.AddLayer("early", 2, RichLayer().ztoc, RichLayer().NewReader()).ok());
      ASSERT_TRUE(fs_.AddLayer("late", 20, RichLayer().ztoc, RichLayer().NewReader()).ok());
      added = true;
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{".", "..", "b-layer", kLayerName, "a-layer", "late"}));
  EXPECT_EQ(fs_.GetAttr(kRootIno)->nlink, 2u + 5u);
  EXPECT_EQ(fs_.AllStatus().size(), 5u);
}

TEST_F(LayerFsTest, AddLayerValidatesNamesAndIds) {
  auto add = [&](const std::string& name, uint32_t id) {
    return fs_.AddLayer(name, id, RichLayer().ztoc, RichLayer().NewReader()).code();
  };
  EXPECT_EQ(add("", 1), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add("..", 1), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add("a/b", 1), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add(std::string(256, 'x'), 1), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add("zero", 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(add(kLayerName, 1), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(add("other", kLayerId), absl::StatusCode::kAlreadyExists);
}

TEST_F(LayerFsTest, ReadOnlyAndWrongKinds) {
  absl::StatusOr<Attr> hosts = Walk(fs_, testing::kHosts);
  EXPECT_EQ(fs_.Open(hosts->ino, O_WRONLY).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs_.Open(hosts->ino, O_RDWR).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(fs_.Open(Walk(fs_, "etc")->ino, O_RDONLY).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_.Lookup(hosts->ino, "x").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(fs_.GetAttr(MakeIno(kLayerId, 999999)).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(fs_.Release(hosts->ino, 12345).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(LayerFsTest, UnknownHandlesAreAdoptedAfterARestart) {
  // A handle issued by a previous process on the same connection.
  absl::StatusOr<Attr> hosts = Walk(fs_, testing::kHosts);
  const uint64_t foreign = 42;
  absl::StatusOr<std::string> got = fs_.Read(hosts->ino, foreign, 0, 100);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, RichLayer().files.at(testing::kHosts));
  EXPECT_EQ(fs_.OpenFiles(), 1);
  // The same handle on another inode is refused; Release forgets it.
  absl::StatusOr<Attr> nano = Walk(fs_, testing::kNanoFile);
  EXPECT_EQ(fs_.Read(nano->ino, foreign, 0, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs_.Release(hosts->ino, foreign).ok());
  EXPECT_EQ(fs_.OpenFiles(), 0);
  // Directories cannot be adopted as files.
  EXPECT_EQ(fs_.Read(Walk(fs_, "etc")->ino, 43, 0, 10).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(LayerFsTest, StatFsAndStatus) {
  FsStats s = fs_.StatFs();
  int64_t content = 0;
  for (const auto& [path, data] : RichLayer().files) {
    if (path != testing::kBigLink) content += static_cast<int64_t>(data.size());
  }
  EXPECT_EQ(s.blocks, static_cast<uint64_t>((content + 4095) / 4096));
  EXPECT_GT(s.files, RichLayer().files.size());
  absl::StatusOr<LayerStatus> st = fs_.Status(kLayerName);
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->layer_id, kLayerId);
  EXPECT_EQ(st->progress.spans_total, RichLayer().ztoc->SpanCount());
  EXPECT_EQ(st->progress.spans_fetched, 0);
  EXPECT_EQ(fs_.Status("nope").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace slipstream::fuse
