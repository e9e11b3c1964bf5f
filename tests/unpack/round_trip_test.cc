// SPDX-License-Identifier: Apache-2.0
// Round trips through real tools: a directory with every kind of member is archived by GNU tar
// (pax and gnu formats), compressed by gzip, pigz, zstd (single and multi-member/frame) or not
// at all, unpacked by LayerUnpacker, and compared with what "tar -x" plus the overlay
// whiteout conversion produces from the same archive.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <random>
#include <string>
#include <vector>

#include "common/digest.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "gtest/gtest.h"
#include "remote/media_types.h"
#include "tests/unpack/tree_snapshot.h"
#include "unpack/layer_unpacker.h"

namespace slipstream::unpack {
namespace {

// VFS_CAP_REVISION_2 granting cap_net_raw.
const std::string kCap("\x00\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", 20);

class SourceTree {
 public:
  explicit SourceTree(std::string root) : root_(std::move(root)) {}

  void Dir(const std::string& rel, mode_t mode, uid_t uid = 0, gid_t gid = 0) {
    ASSERT_EQ(::mkdir(P(rel).c_str(), 0700), 0) << rel;
    Own(rel, mode, uid, gid);
  }
  void File(const std::string& rel, const std::string& content, mode_t mode = 0644, uid_t uid = 0,
            gid_t gid = 0) {
    ASSERT_TRUE(WriteFileAtomic(P(rel), content, 0600).ok()) << rel;
    Own(rel, mode, uid, gid);
  }
  void Symlink(const std::string& rel, const std::string& target) {
    ASSERT_EQ(::symlink(target.c_str(), P(rel).c_str()), 0) << rel;
    paths_.push_back(rel);
  }
  void Hardlink(const std::string& rel, const std::string& target) {
    ASSERT_EQ(::link(P(target).c_str(), P(rel).c_str()), 0) << rel;
  }
  void Node(const std::string& rel, mode_t kind_and_mode, dev_t dev) {
    ASSERT_EQ(::mknod(P(rel).c_str(), kind_and_mode, dev), 0) << rel;
    ASSERT_EQ(::chmod(P(rel).c_str(), kind_and_mode & 07777), 0) << rel;
    paths_.push_back(rel);
  }
  void Xattr(const std::string& rel, const std::string& name, const std::string& value) {
    ASSERT_EQ(::lsetxattr(P(rel).c_str(), name.c_str(), value.data(), value.size(), 0), 0)
        << rel << " " << name;
  }
  // Gives everything distinct nanosecond mtimes, deepest paths first so that directories
  // keep theirs.
  void StampTimes() {
    std::sort(paths_.begin(), paths_.end(), [](const std::string& a, const std::string& b) {
      return a.size() > b.size();
    });
    int i = 0;
    for (const auto& rel : paths_) {
      ++i;
      struct timespec t[2] = {{1600000000 + i, (i * 123456789L) % 1000000000L},
                              {1600000000 + i * 1000, (i * 987654321L) % 1000000000L}};
      ASSERT_EQ(::utimensat(AT_FDCWD, P(rel).c_str(), t, AT_SYMLINK_NOFOLLOW), 0) << rel;
    }
  }

 private:
  std::string P(const std::string& rel) const { return rel == "." ? root_ : root_ + "/" + rel; }
  void Own(const std::string& rel, mode_t mode, uid_t uid, gid_t gid) {
    ASSERT_EQ(::lchown(P(rel).c_str(), uid, gid), 0) << rel;
    ASSERT_EQ(::chmod(P(rel).c_str(), mode), 0) << rel;
    paths_.push_back(rel);
  }
  std::string root_;
  std::vector<std::string> paths_;
};

void BuildSource(const std::string& root) {
  SourceTree t(root);
  ASSERT_EQ(::chmod(root.c_str(), 0755), 0);
  std::mt19937 rng(42);
  std::string big(1500000, '\0');
  for (auto& c : big) c = static_cast<char>(rng());
  t.Dir("etc", 0755);
  t.File("etc/passwd", "root:x:0:0::/root:/bin/sh\n");
  t.Xattr("etc/passwd", "user.comment", "hello");
  t.File("etc/.wh.shadow", "", 0600, 5, 6);  // whiteout of a lower file
  t.Dir("bin", 0755);
  t.File("bin/tool", "#!/bin/sh\necho tool\n", 0755);
  t.Xattr("bin/tool", "trusted.test", std::string("bin\0ary", 7));
  t.File("bin/suid", "suid", 04755);
  t.File("bin/sgid", "sgid", 02755, 0, 50);
  t.File("bin/ping", "ping", 0755);
  t.Xattr("bin/ping", "security.capability", kCap);
  t.Dir("tmp", 01777);
  t.Dir("home", 0755);
  t.Dir("home/user", 0700, 1000, 1000);
  t.File("home/user/.profile", "export A=1\n", 0640, 1000, 1000);
  t.File("home/user/bigid", "octal cannot hold this uid", 0600, 3000000, 3000001);
  t.Dir("data", 0750, 0, 0);
  t.File("data/big.bin", big);
  t.File("data/empty", "");
  t.Dir("links", 0755);
  t.Symlink("links/rel", "../etc/passwd");
  t.Symlink("links/abs", "/etc/passwd");
  t.Symlink("links/dangling", "nowhere");
  t.Symlink("links/longtarget", std::string(180, 't') + "/" + std::string(80, 'u'));
  t.Hardlink("links/hard", "etc/passwd");
  t.Hardlink("links/hardbig", "data/big.bin");
  t.Dir("dev", 0755);
  t.Node("dev/null", S_IFCHR | 0666, makedev(1, 3));
  t.Node("dev/loop0", S_IFBLK | 0660, makedev(7, 0));
  t.Node("dev/fifo", S_IFIFO | 0640, 0);
  const std::string d1(120, 'd');
  const std::string f1(150, 'f');
  t.Dir("long", 0755);
  t.Dir("long/" + d1, 0755);
  t.File("long/" + d1 + "/" + f1, "over 255 characters of path");  // > 255
  t.File("long/" + std::string(110, 'm'), "over 100 characters");  // > 100
  t.Hardlink("long/" + d1 + "/hardlink-with-long-target", "long/" + d1 + "/" + f1);
  t.Dir("var", 0755);
  t.Dir("var/lib", 0755);
  t.File("var/lib/.wh..wh..opq", "");
  t.File("var/lib/new", "only in this layer");
  t.StampTimes();
}

struct Variant {
  std::string name;
  std::string format;       // "pax" or "gnu"
  std::string compressor;   // "none", "gzip", "pigz", "pigz-multi", "zstd", "zstd-multi"
  GzipBackend backend = GzipBackend::kIsal;
  bool untar_thread = true;  // false: hash, inflate and untar on the calling thread
};

class RoundTripTest : public ::testing::TestWithParam<Variant> {
 protected:
  static void SetUpTestSuite() {
    auto dir = TempDir::Create("unpack-roundtrip-");
    ASSERT_TRUE(dir.ok());
    tmp_ = new TempDir(std::move(*dir));
    ASSERT_TRUE(MakeDirs(tmp_->Join("src")).ok());
    BuildSource(tmp_->Join("src"));
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }

  static std::string Run(const std::vector<std::string>& argv, const std::string& in = "") {
    SubprocessOptions o;
    o.stdin_data = in;
    o.max_output = 64 << 20;
    o.timeout = absl::Seconds(60);
    auto r = RunSubprocess(argv, o);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return "";
    EXPECT_EQ(r->exit_code, 0) << argv[0] << ": " << r->stderr_data;
    return r->stdout_data;
  }

  static std::string Compress(const std::string& how, const std::string& tar) {
    const std::string a = tar.substr(0, tar.size() / 2), b = tar.substr(tar.size() / 2);
    if (how == "none") return tar;
    if (how == "gzip") return Run({"gzip", "-c", "-n"}, tar);
    if (how == "pigz") return Run({"pigz", "-c", "-p", "2"}, tar);
    if (how == "pigz-multi") return Run({"pigz", "-c"}, a) + Run({"pigz", "-c"}, b);
    if (how == "zstd") return Run({"zstd", "-c", "-q"}, tar);
    if (how == "zstd-multi") return Run({"zstd", "-c", "-q"}, a) + Run({"zstd", "-c", "-q"}, b);
    ADD_FAILURE() << "unknown compressor " << how;
    return "";
  }

  static std::string_view MediaType(const std::string& how) {
    if (how == "none") return remote::kOciLayer;
    if (how.rfind("zstd", 0) == 0) return remote::kOciLayerZstd;
    return remote::kOciLayerGzip;
  }

  static TempDir* tmp_;
};

TempDir* RoundTripTest::tmp_ = nullptr;

TEST_P(RoundTripTest, MatchesTarExtractPlusOverlayConversion) {
  const Variant& v = GetParam();
  const bool pax = v.format == "pax";
  std::vector<std::string> create = {"tar", "--numeric-owner", "--format=" + v.format};
  if (pax) {
    create.insert(create.end(), {"--xattrs", "--xattrs-include=*"});
  }
  create.insert(create.end(), {"-C", tmp_->Join("src"), "-cf", "-", "."});
  const std::string tar = Run(create);
  ASSERT_GT(tar.size(), 1500000u);
  const std::string blob = Compress(v.compressor, tar);
  ASSERT_FALSE(blob.empty());

  // The reference: GNU tar's own extraction, converted to overlay form.
  const std::string ref = tmp_->Join("ref-" + v.name);
  ASSERT_TRUE(MakeDirs(ref).ok());
  std::vector<std::string> extract = {"tar", "--numeric-owner", "--same-owner", "-p"};
  if (pax) extract.insert(extract.end(), {"--xattrs", "--xattrs-include=*"});
  extract.insert(extract.end(), {"-C", ref, "-xf", "-"});
  Run(extract, tar);
  testing::ConvertWhiteouts(ref);

  const std::string dest = tmp_->Join("layer-" + v.name);
  auto u = LayerUnpacker::Create(MediaType(v.compressor), Sha256Of(blob), Sha256Of(tar), dest,
                                 {.gzip_backend = v.backend,
                                  .untar_thread = v.untar_thread,
                                  .hash_thread = v.untar_thread});
  ASSERT_TRUE(u.ok()) << u.status();
  // Odd piece sizes so that headers, members and frames straddle Write() calls.
  for (size_t i = 0; i < blob.size(); i += 8191) {
    ASSERT_TRUE((*u)->Write(std::string_view(blob).substr(i, 8191)).ok());
  }
  auto r = (*u)->Finish();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->diff_id, Sha256Of(tar));

  const auto want = testing::Snapshot(ref);
  const auto got = testing::Snapshot(dest);
  EXPECT_EQ(testing::DiffSnapshots(want, got), "");
  // Spot checks that the comparison saw what matters (and GNU tar did as expected).
  ASSERT_TRUE(got.count("etc/shadow"));
  EXPECT_EQ(got.at("etc/shadow").kind, 'c');
  EXPECT_EQ(got.at("var/lib").xattrs.count("trusted.overlay.opaque"), 1u);
  EXPECT_EQ(got.at("bin/suid").mode, 04755u);
  EXPECT_EQ(got.at("home/user/bigid").uid, 3000000u);
  EXPECT_EQ(got.at("links/hard").nlink, 2u);
  EXPECT_EQ(got.at("dev/loop0").rdev_minor, 0u);
  EXPECT_EQ(got.at("dev/null").rdev_minor, 3u);
  if (pax) {
    EXPECT_EQ(got.at("bin/ping").xattrs.count("security.capability"), 1u);
    EXPECT_EQ(got.at("bin/tool").xattrs.at("trusted.test"), std::string("bin\0ary", 7));
    EXPECT_NE(got.at("etc/passwd").mtime_nsec, 0);
  }
  ASSERT_TRUE(RemoveAll(dest).ok());
  ASSERT_TRUE(RemoveAll(ref).ok());
}

INSTANTIATE_TEST_SUITE_P(
    Tools, RoundTripTest,
    ::testing::Values(Variant{"pax_none", "pax", "none"},
                      Variant{"pax_gzip_isal", "pax", "gzip", GzipBackend::kIsal},
                      Variant{"pax_gzip_zlib", "pax", "gzip", GzipBackend::kZlib},
                      Variant{"pax_gzip_one_thread", "pax", "gzip", GzipBackend::kIsal, false},
                      Variant{"gnu_zstd_one_thread", "gnu", "zstd", GzipBackend::kIsal, false},
                      Variant{"pax_pigz", "pax", "pigz"},
                      Variant{"pax_pigz_multi_isal", "pax", "pigz-multi", GzipBackend::kIsal},
                      Variant{"pax_pigz_multi_zlib", "pax", "pigz-multi", GzipBackend::kZlib},
                      Variant{"pax_zstd", "pax", "zstd"},
                      Variant{"pax_zstd_multi", "pax", "zstd-multi"},
                      Variant{"gnu_none", "gnu", "none"},
                      Variant{"gnu_gzip", "gnu", "gzip"},
                      Variant{"gnu_zstd_multi", "gnu", "zstd-multi"}),
    [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace slipstream::unpack
