// SPDX-License-Identifier: Apache-2.0
// Real mounts: FuseServer serves LayerFs through the kernel. A source tree on disk becomes a
// gzip layer pushed to a real docker-registry; its zTOC is served lazily (HttpBlobReader) and
// compared with the tree through stat/readdir/readlink/xattrs/read. A second layer with a
// whiteout and an opaque directory goes under an overlayfs mount. Also: read-only errors,
// registry and blob faults as EIO, and a handover of the connection to a new server.
// Needs root and /dev/fuse; without them the tests fail (they are never skipped).
#include "fuse/fuse_server.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/metrics.h"
#include "common/status.h"
#include "common/temp_dir.h"
#include "index/ztoc_builder.h"
#include "remote/registry_client.h"
#include "testkit/compress.h"
#include "testkit/registry_fixture.h"
#include "testkit/tar_writer.h"
#include "testkit/tar_writer_tree.h"
#include "tests/fuse/test_layer.h"

namespace slipstream::fuse {
namespace {

using testing::FakeBlob;
using testing::FakeBlobReader;
using testing::PseudoText;

constexpr char kRepo[] = "lazy/fuse-test";
constexpr uint32_t kBaseId = 1, kTopId = 2, kFlakyId = 3;

// ---- the source tree -------------------------------------------------------------------

void WriteFileOrDie(const std::string& path, const std::string& data, mode_t mode = 0644) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  ASSERT_TRUE(fd.valid()) << path;
  ASSERT_TRUE(WriteAll(fd.get(), data).ok()) << path;
  ASSERT_EQ(::fchmod(fd.get(), mode), 0) << path;
}

void SetTimes(const std::string& path, int64_t sec, long nsec) {
  struct timespec ts[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// Every kind of node, owner, mode bit and xattr an image layer carries.
void MakeSourceTree(const std::string& root) {
  ASSERT_TRUE(MakeDirs(root + "/a/b/c").ok());
  ASSERT_TRUE(MakeDirs(root + "/empty").ok());
  ASSERT_TRUE(MakeDirs(root + "/opaque-me/sub").ok());
  const std::string long_dir = root + "/long-" + std::string(110, 'd');
  ASSERT_TRUE(MakeDirs(long_dir).ok());
  ASSERT_EQ(::mkdir((root + "/sticky").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((root + "/sticky").c_str(), 01777), 0);
  ASSERT_EQ(::mkdir((root + "/setgid").c_str(), 0755), 0);
  ASSERT_EQ(::chmod((root + "/setgid").c_str(), 02775), 0);
  ASSERT_EQ(::chown((root + "/setgid").c_str(), 1234, 5678), 0);

  uint64_t seed = 100;
  for (size_t size : {0, 1, 511, 4095, 65539, 300000}) {
    WriteFileOrDie(absl::StrCat(root, "/a/f_", size), PseudoText(size, seed++));
  }
  WriteFileOrDie(root + "/a/b/c/file", "deep file\n");
  WriteFileOrDie(root + "/big.bin", PseudoText((2 << 20) + 12345, seed++));
  WriteFileOrDie(root + "/gone.txt", "whited out by the top layer\n");
  WriteFileOrDie(root + "/opaque-me/x", "hidden by the opaque dir\n");
  WriteFileOrDie(root + "/opaque-me/sub/y", "also hidden\n");
  WriteFileOrDie(root + "/secret", "0600\n", 0600);
  ASSERT_EQ(::chown((root + "/secret").c_str(), 1234, 5678), 0);
  WriteFileOrDie(root + "/suid", "#!/bin/sh\n", 04755);
  ASSERT_EQ(::chmod((root + "/suid").c_str(), 04755), 0);
  WriteFileOrDie(long_dir + "/" + std::string(140, 'f'), PseudoText(5000, seed++));
  WriteFileOrDie(root + "/xattrs", "with attributes\n");
  ASSERT_EQ(::setxattr((root + "/xattrs").c_str(), "user.mime", "text/plain", 10, 0), 0);
  ASSERT_EQ(::setxattr((root + "/xattrs").c_str(), "user.bin", "\0\1\2\xff", 4, 0), 0);
  ASSERT_EQ(::setxattr((root + "/xattrs").c_str(), "trusted.test", "t", 1, 0), 0);
  ASSERT_EQ(::setxattr((root + "/a").c_str(), "user.dir", "on a directory", 14, 0), 0);

  ASSERT_EQ(::symlink("a/b/c/file", (root + "/rel").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/passwd", (root + "/abs").c_str()), 0);
  const std::string dangling = "nowhere/" + std::string(120, 'x');  // past the ustar field
  ASSERT_EQ(::symlink(dangling.c_str(), (root + "/dangling").c_str()), 0);
  ASSERT_EQ(::link((root + "/a/b/c/file").c_str(), (root + "/hard").c_str()), 0);
  ASSERT_EQ(::mkfifo((root + "/fifo").c_str(), 0640), 0);
  ASSERT_EQ(::mknod((root + "/null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((root + "/loop").c_str(), S_IFBLK | 0660, makedev(7, 0)), 0);

  // Nanosecond mtimes everywhere, directories last (creating children changes them).
  int64_t t = 1600000000;
  for (const char* p : {"/a/f_0", "/a/f_1", "/a/f_511", "/a/f_4095", "/a/f_65539",
                        "/a/f_300000", "/a/b/c/file", "/big.bin", "/gone.txt", "/secret", "/suid",
                        "/xattrs", "/rel", "/abs", "/dangling", "/fifo", "/null", "/loop"}) {
    SetTimes(root + p, t++, 123456789);
  }
  for (const char* p : {"/a/b/c", "/a/b", "/a", "/empty", "/opaque-me/sub", "/opaque-me",
                        "/sticky", "/setgid"}) {
    SetTimes(root + p, t++, 987654321);
  }
}

// ---- comparing a tree with its mount ---------------------------------------------------

std::map<std::string, std::string> Xattrs(const std::string& path) {
  std::map<std::string, std::string> out;
  char names[4096];
  ssize_t n = ::llistxattr(path.c_str(), names, sizeof(names));
  EXPECT_GE(n, 0) << path << ": " << std::strerror(errno);
  for (ssize_t i = 0; i < n;) {
    std::string name(names + i);
    i += static_cast<ssize_t>(name.size()) + 1;
    char value[4096];
    ssize_t v = ::lgetxattr(path.c_str(), name.c_str(), value, sizeof(value));
    EXPECT_GE(v, 0) << path << " " << name;
    out[name] = std::string(value, v < 0 ? 0 : v);
  }
  return out;
}

std::set<std::string> DirNames(const std::string& path) {
  std::set<std::string> out;
  DIR* d = ::opendir(path.c_str());
  EXPECT_NE(d, nullptr) << path << ": " << std::strerror(errno);
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) out.insert(e->d_name);
  ::closedir(d);
  return out;
}

std::string ReadWhole(const std::string& path) {
  absl::StatusOr<std::string> data = ReadFileToString(path, size_t{1} << 30);
  EXPECT_TRUE(data.ok()) << path << ": " << data.status();
  return data.ok() ? *data : "";
}

// Compares `got` (the mount) with `want` (the source) below `rel`, recursively. Counts the
// entries compared.
void CompareTrees(const std::string& want, const std::string& got, const std::string& rel,
                  int* compared) {
  std::set<std::string> names = DirNames(want + rel);
  EXPECT_EQ(DirNames(got + rel), names) << rel;
  for (const std::string& name : names) {
    if (name == "." || name == "..") continue;
    const std::string path = rel + "/" + name;
    struct stat w, g;
    ASSERT_EQ(::lstat((want + path).c_str(), &w), 0) << path;
    ASSERT_EQ(::lstat((got + path).c_str(), &g), 0) << path << ": " << std::strerror(errno);
    ++*compared;
    EXPECT_EQ(g.st_mode, w.st_mode) << path;
    EXPECT_EQ(g.st_uid, w.st_uid) << path;
    EXPECT_EQ(g.st_gid, w.st_gid) << path;
    EXPECT_EQ(g.st_nlink, w.st_nlink) << path;
    EXPECT_EQ(g.st_mtim.tv_sec, w.st_mtim.tv_sec) << path;
    EXPECT_EQ(g.st_mtim.tv_nsec, w.st_mtim.tv_nsec) << path;
    EXPECT_EQ(Xattrs(got + path), Xattrs(want + path)) << path;
    if (S_ISDIR(w.st_mode)) {
      CompareTrees(want, got, path, compared);
    } else if (S_ISREG(w.st_mode)) {
      EXPECT_EQ(g.st_size, w.st_size) << path;
      std::string content = ReadWhole(want + path);
      EXPECT_TRUE(ReadWhole(got + path) == content) << path;
    } else if (S_ISLNK(w.st_mode)) {
      char wl[4096], gl[4096];
      ssize_t wn = ::readlink((want + path).c_str(), wl, sizeof(wl));
      ssize_t gn = ::readlink((got + path).c_str(), gl, sizeof(gl));
      ASSERT_GT(gn, 0) << path;
      EXPECT_EQ(std::string(gl, gn), std::string(wl, wn)) << path;
      EXPECT_EQ(g.st_size, w.st_size) << path;
    } else if (S_ISCHR(w.st_mode) || S_ISBLK(w.st_mode)) {
      EXPECT_EQ(g.st_rdev, w.st_rdev) << path;
    }
  }
}

// ---- layers ----------------------------------------------------------------------------

struct BuiltLayer {
  std::string blob;
  std::shared_ptr<const index::Ztoc> ztoc;
};

absl::StatusOr<BuiltLayer> GzipAndIndex(const std::string& tar) {
  BuiltLayer out;
  SS_ASSIGN_OR_RETURN(out.blob, testkit::CompressString(remote::Compression::kGzip, tar));
  index::ZtocBuilderOptions o;
  o.span_size = testing::kTestSpanSize;
  o.min_layer_size = 0;
  index::ZtocBuilder builder(o);
  SS_RETURN_IF_ERROR(builder.Write(out.blob));
  SS_ASSIGN_OR_RETURN(std::optional<index::Ztoc> z, builder.Finish());
  if (!z.has_value()) return absl::InternalError("no zTOC");
  out.ztoc = std::make_shared<const index::Ztoc>(*std::move(z));
  return out;
}

class FuseMountTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto dir = TempDir::Create("fuse-mount-src-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    src_ = new TempDir(*std::move(dir));
    MakeSourceTree(src_->Join("tree"));

    std::string tar;
    testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
    ASSERT_TRUE(testkit::AddDirectoryTree(w, src_->Join("tree")).ok());
    ASSERT_TRUE(w.Finish().ok());
    auto base = GzipAndIndex(tar);
    ASSERT_TRUE(base.ok()) << base.status();
    base_ = new BuiltLayer(*std::move(base));
    ASSERT_GT(base_->ztoc->SpanCount(), 20);

    std::string top_tar;
    testkit::TarWriter t(testkit::TarWriter::StringSink(&top_tar));
    ASSERT_TRUE(t.AddWhiteout("", "gone.txt").ok());
    ASSERT_TRUE(t.AddDir("opaque-me").ok());
    ASSERT_TRUE(t.AddOpaqueWhiteout("opaque-me").ok());
    ASSERT_TRUE(t.AddFile("opaque-me/new.txt", "only in the top layer\n").ok());
    ASSERT_TRUE(t.AddFile("top.txt", "top\n").ok());
    ASSERT_TRUE(t.Finish().ok());
    auto top = GzipAndIndex(top_tar);
    ASSERT_TRUE(top.ok()) << top.status();
    top_ = new BuiltLayer(*std::move(top));

    auto registry = testkit::RegistryFixture::Start();
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = registry->release();
    auto client = NewClient(absl::Seconds(30));
    ASSERT_TRUE(client->PushBlob(Repo(), Sha256Of(base_->blob), base_->blob).ok());
  }

  static void TearDownTestSuite() {
    delete registry_;
    delete top_;
    delete base_;
    delete src_;
  }

  static std::unique_ptr<remote::RegistryClient> NewClient(absl::Duration max_total) {
    remote::RegistryClientOptions o;
    o.retry.initial_backoff = absl::Milliseconds(20);
    o.retry.max_backoff = absl::Milliseconds(200);
    o.retry.max_total = max_total;
    o.connect_timeout = absl::Seconds(2);
    auto c = remote::RegistryClient::Create(std::move(o));
    EXPECT_TRUE(c.ok()) << c.status();
    return *std::move(c);
  }

  static remote::Reference Repo() {
    auto r = remote::Reference::Parse(absl::StrCat(registry_->host(), "/", kRepo));
    EXPECT_TRUE(r.ok()) << r.status();
    return *r;
  }

  std::unique_ptr<remote::BlobReader> BaseReader() {
    remote::Descriptor d;
    d.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
    d.digest = Sha256Of(base_->blob);
    d.size = static_cast<int64_t>(base_->blob.size());
    return client_->OpenBlob(Repo(), d);
  }

  // A LayerFs with the registry-backed base, the in-memory top and a flaky layer whose blob
  // the test controls.
  std::unique_ptr<LayerFs> NewFs() {
    auto fs = std::make_unique<LayerFs>();
    EXPECT_TRUE(fs->AddLayer("base", kBaseId, base_->ztoc, BaseReader()).ok());
    EXPECT_TRUE(fs->AddLayer("top", kTopId, top_->ztoc,
                             std::make_unique<FakeBlobReader>(std::make_shared<FakeBlob>(top_->blob)))
                    .ok());
    EXPECT_TRUE(fs->AddLayer("flaky", kFlakyId, base_->ztoc,
                             std::make_unique<FakeBlobReader>(flaky_)).ok());
    return fs;
  }

  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "FUSE mount tests need root";
    ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0) << "/dev/fuse: " << std::strerror(errno);
    ASSERT_NE(registry_, nullptr);
    auto work = TempDir::Create("fuse-mount-");
    ASSERT_TRUE(work.ok()) << work.status();
    work_ = std::make_unique<TempDir>(*std::move(work));
    mnt_ = work_->Join("mnt");
    ASSERT_TRUE(MakeDirs(mnt_).ok());
    client_ = NewClient(absl::Seconds(3));
    flaky_ = std::make_shared<FakeBlob>(base_->blob);
    fs_ = NewFs();
    auto server = FuseServer::Mount(fs_.get(), mnt_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  void TearDown() override {
    // Overlays first (they hold the FUSE mount busy), then the server, then a safety net
    // for a server that failed to unmount.
    for (const std::string& m : overlays_) ::umount2(m.c_str(), MNT_DETACH);
    server_.reset();
    if (!mnt_.empty()) (void)UnmountFuse(mnt_);
    fs_.reset();
    if (registry_ != nullptr && !registry_->running()) {
      ASSERT_TRUE(registry_->Restart().ok());
    }
  }

  std::string Tree() const { return src_->Join("tree"); }

  static inline TempDir* src_ = nullptr;
  static inline BuiltLayer* base_ = nullptr;
  static inline BuiltLayer* top_ = nullptr;
  static inline testkit::RegistryFixture* registry_ = nullptr;
  std::unique_ptr<TempDir> work_;
  std::string mnt_;
  std::unique_ptr<remote::RegistryClient> client_;
  std::shared_ptr<FakeBlob> flaky_;
  std::unique_ptr<LayerFs> fs_;
  std::unique_ptr<FuseServer> server_;
  std::vector<std::string> overlays_;
};

TEST_F(FuseMountTest, RootListsTheLayers) {
  EXPECT_EQ(DirNames(mnt_), (std::set<std::string>{".", "..", "base", "top", "flaky"}));
  struct statvfs sv;
  ASSERT_EQ(::statvfs(mnt_.c_str(), &sv), 0);
  EXPECT_TRUE(sv.f_flag & ST_RDONLY);
  EXPECT_GT(sv.f_blocks, 0u);
  struct stat st;
  ASSERT_EQ(::stat((mnt_ + "/base").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, MakeIno(kBaseId, kLayerRootNumber));
  // A removed layer disappears at once, although the kernel caches entries for an hour.
  ASSERT_EQ(::stat((mnt_ + "/top/top.txt").c_str(), &st), 0);
  ASSERT_TRUE(fs_->RemoveLayer("top").ok());
  EXPECT_EQ(::stat((mnt_ + "/top").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(DirNames(mnt_), (std::set<std::string>{".", "..", "base", "flaky"}));
  ASSERT_TRUE(fs_->AddLayer("later", 9, top_->ztoc,
                            std::make_unique<FakeBlobReader>(std::make_shared<FakeBlob>(top_->blob)))
                  .ok());
  EXPECT_EQ(ReadWhole(mnt_ + "/later/top.txt"), "top\n");
}

int OpenFds() {
  return static_cast<int>(DirNames("/proc/self/fd").size());
}

TEST_F(FuseMountTest, ServersHoldOneDescriptorAndCloseItOnStop) {
  const std::string second = work_->Join("second");
  ASSERT_TRUE(MakeDirs(second).ok());
  const int before = OpenFds();
  {
    LayerFs fs;
    auto server = FuseServer::Mount(&fs, second);
    ASSERT_TRUE(server.ok()) << server.status();
    // The connection and the stop eventfd; none per inode or open file.
    EXPECT_EQ(OpenFds(), before + 2);
    UniqueFd file(::open((mnt_ + "/base/a/b/c/file").c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(file.valid());
    EXPECT_EQ(OpenFds(), before + 3);
    (*server)->Stop();
  }
  EXPECT_EQ(OpenFds(), before);
  // Unmounted: the directory is a plain empty directory again.
  EXPECT_EQ(DirNames(second), (std::set<std::string>{".", ".."}));
}

TEST_F(FuseMountTest, LazyLayerFromTheRegistryMatchesTheSourceTree) {
  int compared = 0;
  CompareTrees(Tree(), mnt_ + "/base", "", &compared);
  EXPECT_GE(compared, 30);
  // Hardlinks share an inode; inode numbers are the layer's.
  struct stat a, b;
  ASSERT_EQ(::lstat((mnt_ + "/base/hard").c_str(), &a), 0);
  ASSERT_EQ(::lstat((mnt_ + "/base/a/b/c/file").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(LayerIdOf(a.st_ino), kBaseId);
  // Everything was read, through Range requests of the registry blob.
  absl::StatusOr<LayerStatus> status = fs_->Status("base");
  ASSERT_TRUE(status.ok());
  EXPECT_GT(status->counters.fetches, 0);
  EXPECT_EQ(status->counters.read_errors, 0);
  EXPECT_TRUE(status->progress.complete()) << status->progress.spans_fetched << "/"
                                           << status->progress.spans_total;
}

TEST_F(FuseMountTest, WhiteoutAndOpaqueDirectoryThroughTheKernel) {
  struct stat st;
  ASSERT_EQ(::lstat((mnt_ + "/top/gone.txt").c_str(), &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(0, 0));
  char value[16];
  ssize_t n = ::lgetxattr((mnt_ + "/top/opaque-me").c_str(), "trusted.overlay.opaque", value,
                         sizeof(value));
  ASSERT_EQ(n, 1) << std::strerror(errno);
  EXPECT_EQ(value[0], 'y');
  EXPECT_EQ(DirNames(mnt_ + "/top/opaque-me"), (std::set<std::string>{".", "..", "new.txt"}));
  EXPECT_EQ(::lgetxattr((mnt_ + "/top/top.txt").c_str(), "user.none", value, sizeof(value)), -1);
  EXPECT_EQ(errno, ENODATA);
}

TEST_F(FuseMountTest, OverlayOfTwoLazyLayers) {
  const std::string upper = work_->Join("upper"), workdir = work_->Join("work"),
                    merged = work_->Join("merged");
  for (const std::string& d : {upper, workdir, merged}) ASSERT_TRUE(MakeDirs(d).ok());
  const std::string options = absl::StrCat("lowerdir=", mnt_, "/top:", mnt_, "/base,upperdir=",
                                           upper, ",workdir=", workdir);
  ASSERT_EQ(::mount("overlay", merged.c_str(), "overlay", 0, options.c_str()), 0)
      << options << ": " << std::strerror(errno);
  overlays_.push_back(merged);
  struct stat st;
  // The whiteout hides the base layer's file.
  EXPECT_EQ(::lstat((merged + "/gone.txt").c_str(), &st), -1);
  EXPECT_EQ(errno, ENOENT);
  EXPECT_EQ(DirNames(merged).count("gone.txt"), 0u);
  // The opaque directory hides the base layer's contents of it.
  EXPECT_EQ(DirNames(merged + "/opaque-me"), (std::set<std::string>{".", "..", "new.txt"}));
  EXPECT_EQ(ReadWhole(merged + "/opaque-me/new.txt"), "only in the top layer\n");
  // Everything else of both layers is there.
  EXPECT_EQ(ReadWhole(merged + "/top.txt"), "top\n");
  EXPECT_TRUE(ReadWhole(merged + "/big.bin") == ReadWhole(Tree() + "/big.bin"));
  ASSERT_EQ(::lstat((merged + "/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  // Writes go to the upper directory on local disk.
  WriteFileOrDie(merged + "/a/new-file", "written\n");
  EXPECT_EQ(ReadWhole(upper + "/a/new-file"), "written\n");
  ASSERT_EQ(::unlink((merged + "/a/f_1").c_str()), 0);
  EXPECT_EQ(::lstat((merged + "/a/f_1").c_str(), &st), -1);
  EXPECT_EQ(::lstat((mnt_ + "/base/a/f_1").c_str(), &st), 0);
}

TEST_F(FuseMountTest, WritesAreReadOnlyFilesystemErrors) {
  const std::string file = mnt_ + "/base/a/b/c/file";
  EXPECT_EQ(::open(file.c_str(), O_WRONLY | O_CLOEXEC), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::mkdir((mnt_ + "/base/newdir").c_str(), 0755), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::setxattr(file.c_str(), "user.x", "1", 1, 0), -1);
  EXPECT_EQ(errno, EROFS);
  EXPECT_EQ(::unlink(file.c_str()), -1);
  EXPECT_EQ(errno, EROFS);
}

// allow_other lets every user of the node into the mount (containers run as any uid), so
// the kernel must check owners and modes (default_permissions): an unprivileged process may
// read a 0644 file of the layer but not its 0600 file owned by someone else.
TEST_F(FuseMountTest, OtherUsersGetTheFilesModesNotRoots) {
  // The mount lies below a 0700 temp dir: open the layer root as root, then drop privileges
  // and open relative to it.
  UniqueFd base(::open((mnt_ + "/base").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(base.valid()) << std::strerror(errno);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Exit codes: 0 as expected, 1 cannot become nobody, 2 the 0644 file failed, 3 the 0600
    // file opened, 4 it failed with another errno than EACCES.
    if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(1);
    const int readable = ::openat(base.get(), "xattrs", O_RDONLY | O_CLOEXEC);
    if (readable < 0) _exit(2);
    ::close(readable);
    const int secret = ::openat(base.get(), "secret", O_RDONLY | O_CLOEXEC);
    if (secret >= 0) _exit(3);
    _exit(errno == EACCES ? 0 : 4);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  // Root (the test) reads it: the permission check is the kernel's, not a blanket refusal.
  EXPECT_EQ(ReadWhole(mnt_ + "/base/secret"), "0600\n");
}

TEST_F(FuseMountTest, BlobFaultsAreEioNotHangs) {
  const std::string file = mnt_ + "/flaky/big.bin";
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0);  // metadata needs no blob
  // The same family the FUSE adapter counts into (registering it again returns it).
  metrics::Counter& eio_reads =
      metrics::Global().AddCounterFamily("slipstream_fuse_errors_total", "", {"op", "errno"})
          .With({"read", "EIO"});
  const int64_t eio_before = eio_reads.value();
  flaky_->FailWith(absl::UnavailableError("injected: registry unreachable"));
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  char buf[4096];
  EXPECT_EQ(::pread(fd.get(), buf, sizeof(buf), 100000), -1);
  EXPECT_EQ(errno, EIO);
  // Failures are not cached: the same read works once the blob is back.
  flaky_->FailWith(absl::OkStatus());
  ASSERT_EQ(::pread(fd.get(), buf, sizeof(buf), 100000), static_cast<ssize_t>(sizeof(buf)));
  EXPECT_EQ(std::string(buf, sizeof(buf)), ReadWhole(Tree() + "/big.bin").substr(100000, 4096));
  // A corrupt span is EIO too (DataLoss in the filesystem).
  const index::Ztoc& z = *base_->ztoc;
  const int64_t last = z.SpanCount() - 2;
  flaky_->Corrupt(z.SpanCompressedStart(last) + 7);
  UniqueFd again(::open((mnt_ + "/flaky/big.bin").c_str(), O_RDONLY | O_CLOEXEC));
  bool saw_eio = false;
  for (off_t off = 0; off < st.st_size && !saw_eio; off += sizeof(buf)) {
    if (::pread(again.get(), buf, sizeof(buf), off) < 0) saw_eio = errno == EIO;
  }
  // big.bin may not reach that span; then some other file does.
  if (!saw_eio) {
    for (const char* other : {"/a/f_300000", "/a/f_65539"}) {
      UniqueFd o(::open((mnt_ + "/flaky" + other).c_str(), O_RDONLY | O_CLOEXEC));
      std::string data;
      for (off_t off = 0;; off += sizeof(buf)) {
        ssize_t n = ::pread(o.get(), buf, sizeof(buf), off);
        if (n < 0) saw_eio = errno == EIO;
        if (n <= 0) break;
      }
      if (saw_eio) break;
    }
  }
  EXPECT_TRUE(saw_eio);
  EXPECT_GT(fs_->Status("flaky")->counters.read_errors, 0);
  EXPECT_GE(eio_reads.value() - eio_before, 2);
}

TEST_F(FuseMountTest, RegistryOutageIsEioWithinTheRetryBound) {
  registry_->Stop();
  UniqueFd fd(::open((mnt_ + "/base/a/f_300000").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  char buf[1024];
  const absl::Time start = absl::Now();
  EXPECT_EQ(::pread(fd.get(), buf, sizeof(buf), 200000), -1);
  EXPECT_EQ(errno, EIO);
  // The client gives up after its retry budget (3 s here), plus a connect timeout.
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  ASSERT_TRUE(registry_->Restart().ok());
  ASSERT_EQ(::pread(fd.get(), buf, sizeof(buf), 200000), static_cast<ssize_t>(sizeof(buf)));
  EXPECT_EQ(std::string(buf, sizeof(buf)), ReadWhole(Tree() + "/a/f_300000").substr(200000, 1024));
}

TEST_F(FuseMountTest, HandoverToANewServerKeepsOpenFilesReading) {
  const std::string path = mnt_ + "/base/big.bin";
  const std::string want = ReadWhole(Tree() + "/big.bin");
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  char buf[65536];
  ASSERT_EQ(::pread(fd.get(), buf, sizeof(buf), 0), static_cast<ssize_t>(sizeof(buf)));

  // The old server stops serving but leaves the mount; a new process-like pair (a new
  // LayerFs knowing the same layers under the same ids, a new FuseServer) takes over.
  UniqueFd connection = server_->Detach();
  ASSERT_TRUE(connection.valid());
  auto fs2 = NewFs();
  auto next = FuseServer::Serve(fs2.get(), std::move(connection), mnt_, {}, /*initialized=*/true);
  ASSERT_TRUE(next.ok()) << next.status();
  server_ = *std::move(next);
  fs_.swap(fs2);  // the old filesystem goes after the new server took over
  fs2.reset();

  // Drop cached pages so the reads reach the new server, with the old handle.
  ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
  for (off_t off : {off_t{0}, off_t{1} << 20, static_cast<off_t>(want.size()) - 100}) {
    ssize_t n = ::pread(fd.get(), buf, sizeof(buf), off);
    ASSERT_GT(n, 0) << off << ": " << std::strerror(errno);
    EXPECT_EQ(std::string(buf, n), want.substr(off, n)) << off;
  }
  EXPECT_GE(fs_->OpenFiles(), 1);  // the handle was adopted
  // New lookups, listings and opens work too.
  EXPECT_EQ(ReadWhole(mnt_ + "/base/a/b/c/file"), "deep file\n");
  EXPECT_TRUE(DirNames(mnt_ + "/top").count("top.txt"));
  EXPECT_GT(server_->requests(), 0);
}

}  // namespace
}  // namespace slipstream::fuse
