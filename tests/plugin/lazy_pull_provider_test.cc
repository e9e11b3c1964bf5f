// SPDX-License-Identifier: Apache-2.0
// LazyPullProvider against a real docker-registry behind a FaultProxy, a real FUSE mount of a
// LayerFs in a temp dir and a real OverlaySnapshotter: the Prepare sequence containerd's CRI
// pull sends for an image with a SOCI index (one big lazy layer, one small local one), reads
// through the snapshot paths (symlink → FUSE) and an overlay mount, a restart, removal, and
// the fallback to the parallel provider for an image without an index.
#include "plugin/lazy_pull_provider.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "cmd/daemon/config.h"
#include "cmd/daemon/daemon.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "fuse/fuse_mount.h"
#include "fuse/fuse_server.h"
#include "fuse/layer_fs.h"
#include "index/soci_index.h"
#include "plugin/mode_router.h"
#include "plugin/remote_pull_provider.h"
#include "remote/chunk_cache.h"
#include "remote/registry_client.h"
#include "testkit/fault_proxy.h"
#include "testkit/image_builder.h"
#include "testkit/tar_writer.h"
#include "tests/plugin/snapshot_test_mount.h"
#include "tests/remote/registry_integration_env.h"

namespace slipstream::plugin {
namespace {

constexpr int64_t kSpanSize = 64 << 10;
constexpr int kSmallFiles = 120;

// Incompressible content, so the gzip blob is as big as the tar.
std::string Pseudo(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

std::string SmallName(int i) { return absl::StrCat("big/f", i); }
std::string SmallContent(int i) { return Pseudo(20000 + 97 * i, 100 + i); }
// One file crossing ~50 spans.
std::string HugeContent() { return Pseudo(3 << 20, 7); }

// The big layer: ~5.5 MB of files.
std::string BigLayerTar() {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  EXPECT_TRUE(w.AddDir("big", {.mode = 0755}).ok());
  for (int i = 0; i < kSmallFiles; ++i) {
    EXPECT_TRUE(w.AddFile(SmallName(i), SmallContent(i), {.mode = 0644}).ok());
  }
  EXPECT_TRUE(w.AddFile("big/huge", HugeContent(), {.mode = 0644}).ok());
  EXPECT_TRUE(w.Finish().ok());
  return tar;
}

std::string SmallLayerTar(const std::string& name, const std::string& content) {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  EXPECT_TRUE(w.AddDir("small", {.mode = 0755}).ok());
  EXPECT_TRUE(w.AddFile("small/" + name, content, {.mode = 0644}).ok());
  EXPECT_TRUE(w.Finish().ok());
  return tar;
}

struct Image {
  testkit::BuiltImage built;
  std::string ref;  // through the proxy, as the cri.image-ref label carries it
  std::vector<Digest> chains;
};

class LazyPullProviderTest : public remote::testing::RegistryIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_EQ(::geteuid(), 0u) << "lazy mode tests mount FUSE and overlayfs: need root";
    ASSERT_EQ(::access("/dev/fuse", R_OK | W_OK), 0) << "/dev/fuse: " << std::strerror(errno);
    ASSERT_NE(registry_, nullptr);
    auto t = TempDir::Create("lazy-pull-");
    ASSERT_TRUE(t.ok()) << t.status();
    tmp_.emplace(*std::move(t));
    mnt_ = tmp_->Join("fuse");
    ASSERT_TRUE(MakeDirs(mnt_).ok());
    client_ = remote::testing::NewClient({.max_total = absl::Seconds(5)});
    ASSERT_NE(client_, nullptr);
    auto sn = OverlaySnapshotter::Open(tmp_->Join("root"));
    ASSERT_TRUE(sn.ok()) << sn.status();
    snapshotter_ = *std::move(sn);
    auto p = testkit::FaultProxy::Start(registry_->host());
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = *std::move(p);
    RemotePullOptions popts;
    popts.tuning = {.chunk_size = 64 << 10, .requests = 4};
    parallel_ = std::make_unique<RemotePullProvider>(snapshotter_.get(), client_.get(), popts);
  }

  void TearDown() override {
    for (const std::string& m : mounts_) (void)testing::Unmount(m);
    StopLazy();
    parallel_.reset();
    if (proxy_ != nullptr) proxy_->Stop();
  }

  // Creates the LayerFs, mounts it and creates the provider (what the daemon does at start).
  void StartLazy(int background_threads, remote::ChunkCache* cache = nullptr,
                 absl::Duration prepare_quiet = absl::ZeroDuration()) {
    fs_ = std::make_unique<fuse::LayerFs>();
    auto server = fuse::FuseServer::Mount(fs_.get(), mnt_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    LazyPullOptions opts;
    opts.mount_dir = mnt_;
    opts.background_threads = background_threads;
    opts.chunk_cache = cache;
    opts.release_retry = absl::Milliseconds(50);
    opts.prepare_quiet = prepare_quiet;
    lazy_ = std::make_unique<LazyPullProvider>(snapshotter_.get(), client_.get(), fs_.get(),
                                               parallel_.get(), opts);
  }

  // Lazy layer `name`'s state as `slipstream status` shows it, with ": <error>" if it has
  // one; "absent" when the provider does not serve it.
  std::string StateOf(const std::string& name) const {
    for (const LazyLayerInfo& l : lazy_->Layers()) {
      if (l.name == name) return l.state + (l.error.empty() ? "" : ": " + l.error);
    }
    return "absent";
  }

  // Polls StateOf(name) until it is `want` (nothing signals the background's progress),
  // for at most `limit`; returns the last state seen.
  std::string WaitForState(const std::string& name, const std::string& want,
                           absl::Duration limit) const {
    const absl::Time deadline = absl::Now() + limit;
    std::string state = StateOf(name);
    while (state != want && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      state = StateOf(name);
    }
    return state;
  }

  void StopLazy() {
    lazy_.reset();
    server_.reset();
    if (!mnt_.empty()) (void)fuse::UnmountFuse(mnt_);
    fs_.reset();
  }

  Image Push(const std::string& repo_tag, const std::vector<std::string>& tars) {
    testkit::ImageSpec spec;
    for (const std::string& t : tars) spec.layers.push_back({.tar_bytes = t});
    Image img;
    auto built = testkit::BuildImage(spec, tmp_->Join("oci-" + std::to_string(images_++)));
    EXPECT_TRUE(built.ok()) << built.status();
    img.built = *std::move(built);
    auto direct = remote::Reference::Parse(registry_->host() + "/" + repo_tag);
    EXPECT_TRUE(direct.ok());
    auto pushed = testkit::PushImage(*client_, img.built, *direct);
    EXPECT_TRUE(pushed.ok()) << pushed.status();
    img.ref = proxy_->host() + "/" + repo_tag;
    std::vector<Digest> diffs;
    for (const auto& l : img.built.layers) diffs.push_back(l.diff_id);
    img.chains = ChainIds(diffs);
    return img;
  }

  // Builds and pushes a v1 SOCI index for `repo_tag` (span_size 64 KiB; only layers of at
  // least `min_layer_size` get a zTOC).
  // Returns the zTOC's digest.
  Digest PushIndex(const std::string& repo_tag, int64_t min_layer_size) {
    Digest ztoc;
    PushIndexInto(repo_tag, min_layer_size, &ztoc);
    return ztoc;
  }
  void PushIndexInto(const std::string& repo_tag, int64_t min_layer_size, Digest* ztoc) {
    auto direct = remote::Reference::Parse(registry_->host() + "/" + repo_tag);
    ASSERT_TRUE(direct.ok());
    index::SociIndexOptions opts;
    opts.span_size = kSpanSize;
    opts.min_layer_size = min_layer_size;
    opts.version = index::SociVersion::kV1;
    auto built = index::BuildSociIndex(*client_, *direct, opts);
    ASSERT_TRUE(built.ok()) << built.status();
    ASSERT_EQ(built->ztocs.size(), 1u);
    *ztoc = built->ztocs.front().descriptor.digest;
    auto pushed = index::PushSociIndexV1(*client_, *built);
    ASSERT_TRUE(pushed.ok()) << pushed.status();
  }

  // The Prepare containerd's CRI unpacker sends for layer `i` of `img`.
  static RemotePrepareRequest Request(const Image& img, size_t i) {
    RemotePrepareRequest r;
    r.key = absl::StrCat("k8s.io/", i, "/extract-", i, " ", img.chains[i].str());
    r.parent = i == 0 ? "" : img.chains[i - 1].str();
    r.labels = {{kSnapshotRefLabel, img.chains[i].str()},
                {kCriImageRefLabel, img.ref},
                {kCriManifestDigestLabel, img.built.manifest_digest.str()},
                {kCriLayerDigestLabel, img.built.layers[i].descriptor.digest.str()}};
    return r;
  }

  absl::StatusOr<RemoteOutcome> Call(RemoteLayerProvider& provider,
                                     const RemotePrepareRequest& request) {
    struct State {
      absl::Notification done;
      absl::StatusOr<RemoteOutcome> outcome = absl::UnknownError("not answered");
    };
    auto state = std::make_shared<State>();
    provider.Prepare(request, [state](absl::StatusOr<RemoteOutcome> r) {
      state->outcome = std::move(r);
      state->done.Notify();
    });
    if (!state->done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
      return absl::DeadlineExceededError("Prepare not answered in 60s");
    }
    return state->outcome;
  }

  // The content directory of committed snapshot `name` (its `fs`, a symlink for lazy
  // layers): the source of a bind-mounted view on it, or the top lowerdir of an overlay one.
  std::string ContentDir(const std::string& name) {
    auto mounts = snapshotter_->View(absl::StrCat("view-", views_++, "-", name), name, {});
    EXPECT_TRUE(mounts.ok()) << mounts.status();
    if (!mounts.ok() || mounts->size() != 1) return "";
    const MountSpec& m = mounts->front();
    if (m.type == "bind") return m.source;
    for (const std::string& o : m.options) {
      if (o.rfind("lowerdir=", 0) == 0) {
        std::vector<std::string> dirs = absl::StrSplit(o.substr(9), ':');
        return dirs.front();
      }
    }
    return "";
  }

  std::optional<TempDir> tmp_;
  std::string mnt_;
  std::unique_ptr<remote::RegistryClient> client_;
  std::unique_ptr<OverlaySnapshotter> snapshotter_;
  std::unique_ptr<testkit::FaultProxy> proxy_;
  std::unique_ptr<RemotePullProvider> parallel_;
  std::unique_ptr<fuse::LayerFs> fs_;
  std::unique_ptr<fuse::FuseServer> server_;
  std::unique_ptr<LazyPullProvider> lazy_;
  std::vector<std::string> mounts_;
  int images_ = 0;
  int views_ = 0;
};

constexpr int64_t kFuseSuperMagic = 0x65735546;
constexpr int64_t kTmpfsMagic = 0x01021994;

int64_t FsType(const std::string& path) {
  struct statfs sfs;
  if (::statfs(path.c_str(), &sfs) != 0) return -1;
  return static_cast<int64_t>(sfs.f_type);
}

// The names in directory `path` other than "." and "..".
std::vector<std::string> DirEntries(const std::string& path) {
  std::vector<std::string> out;
  DIR* d = ::opendir(path.c_str());
  EXPECT_NE(d, nullptr) << path << ": " << std::strerror(errno);
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") out.push_back(name);
  }
  ::closedir(d);
  return out;
}

ino_t InodeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path << ": " << std::strerror(errno);
  return st.st_ino;
}

std::string Read(const std::string& path) {
  auto data = ReadFileToString(path);
  EXPECT_TRUE(data.ok()) << data.status();
  return data.ok() ? *data : "";
}

TEST_F(LazyPullProviderTest, IndexedImageServesItsBigLayerLazilyAcrossARestart) {
  StartLazy(/*background_threads=*/0);
  Image img = Push("lazy/app:1", {BigLayerTar(), SmallLayerTar("top", "top layer\n")});
  const int64_t big_size = img.built.layers[0].descriptor.size;
  ASSERT_GT(big_size, 4 << 20);
  ASSERT_LT(img.built.layers[1].descriptor.size, 1 << 20);
  PushIndex("lazy/app:1", /*min_layer_size=*/1 << 20);

  for (size_t i = 0; i < 2; ++i) {
    auto outcome = Call(*lazy_, Request(img, i));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, RemoteOutcome::kCommitted) << "layer " << i;
  }
  EXPECT_EQ(parallel_->jobs_started(), 0);

  // The big layer is lazy: labelled, its fs a symlink into the FUSE mount, nothing fetched.
  const std::string big = img.chains[0].str();
  const std::string name = LazyLayerName(big);
  auto info = snapshotter_->Stat(big);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->kind, SnapshotKind::kCommitted);
  EXPECT_EQ(info->labels[kModeLabel], "lazy");
  EXPECT_EQ(info->labels[kSnapshotRefLabel], big);
  EXPECT_FALSE(info->labels[kLazyLayerIdLabel].empty());
  EXPECT_EQ(info->labels[kLazyBlobLabel],
            absl::StrCat(img.built.layers[0].descriptor.digest.str(), ":", big_size, ":",
                         img.built.layers[0].descriptor.media_type));
  EXPECT_FALSE(info->labels[kLazyZtocLabel].empty());
  auto status = fs_->Status(name);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(absl::StrCat(status->layer_id), info->labels[kLazyLayerIdLabel]);
  EXPECT_EQ(status->counters.compressed_bytes_fetched, 0);

  const std::string big_dir = ContentDir(big);
  ASSERT_FALSE(big_dir.empty());
  struct stat st;
  ASSERT_EQ(::lstat(big_dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));

  // One small file costs a span or two, far below the blob.
  EXPECT_EQ(Read(big_dir + "/" + SmallName(57)), SmallContent(57));
  status = fs_->Status(name);
  ASSERT_TRUE(status.ok());
  EXPECT_GT(status->counters.compressed_bytes_fetched, 0);
  EXPECT_LT(status->counters.compressed_bytes_fetched, big_size / 10);
  RecordProperty("blob_bytes", absl::StrCat(big_size));
  RecordProperty("fetched_for_one_file", absl::StrCat(status->counters.compressed_bytes_fetched));
  // The rest of the layer matches the original.
  EXPECT_EQ(Read(big_dir + "/big/huge"), HugeContent());
  for (int i = 0; i < kSmallFiles; i += 13) EXPECT_EQ(Read(big_dir + "/" + SmallName(i)), SmallContent(i));
  const ino_t huge_ino = InodeOf(big_dir + "/big/huge");
  const ino_t small_ino = InodeOf(big_dir + "/" + SmallName(3));

  // A bind mount of a view on the lazy layer follows the symlink too.
  {
    auto mounts = snapshotter_->View("bind-view", big, {});
    ASSERT_TRUE(mounts.ok()) << mounts.status();
    ASSERT_EQ(mounts->front().type, "bind");
    const std::string target = tmp_->Join("bind");
    ASSERT_TRUE(MakeDirs(target).ok());
    ASSERT_TRUE(testing::MountAll(*mounts, target).ok());
    testing::ScopedMount unmount(target);
    EXPECT_EQ(Read(target + "/" + SmallName(11)), SmallContent(11));
    EXPECT_EQ(FsType(target), kFuseSuperMagic);
  }
  ASSERT_TRUE(snapshotter_->Remove("bind-view").ok());

  // The small layer was pulled into a local directory.
  const std::string top = img.chains[1].str();
  auto top_info = snapshotter_->Stat(top);
  ASSERT_TRUE(top_info.ok()) << top_info.status();
  EXPECT_EQ(top_info->labels.count(kModeLabel), 0u);
  EXPECT_EQ(top_info->parent, big);
  const std::string top_dir = ContentDir(top);
  ASSERT_EQ(::lstat(top_dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(Read(top_dir + "/small/top"), "top layer\n");

  // An overlay of both (a container's rootfs) follows the symlink in lowerdir.
  {
    auto mounts = snapshotter_->Prepare("container-rw", top, {});
    ASSERT_TRUE(mounts.ok()) << mounts.status();
    ASSERT_EQ(mounts->front().type, "overlay");
    const std::string rootfs = tmp_->Join("rootfs");
    ASSERT_TRUE(MakeDirs(rootfs).ok());
    ASSERT_TRUE(testing::MountAll(*mounts, rootfs).ok());
    testing::ScopedMount unmount(rootfs);
    EXPECT_EQ(Read(rootfs + "/small/top"), "top layer\n");
    EXPECT_EQ(Read(rootfs + "/" + SmallName(99)), SmallContent(99));
    EXPECT_EQ(Read(rootfs + "/big/huge"), HugeContent());
  }
  ASSERT_TRUE(snapshotter_->Remove("container-rw").ok());

  // A restart: everything in memory goes, the snapshots keep working from the labels and
  // the zTOC on disk, with the same inode numbers.
  StopLazy();
  StartLazy(/*background_threads=*/2);
  const int manifests_before = proxy_->CountRequests("GET", "/manifests/");
  auto restored = lazy_->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, 1);
  EXPECT_EQ(proxy_->CountRequests("GET", "/manifests/"), manifests_before);
  // As after a restart that kept the connection: the kernel may hold inodes this process
  // never counted, so the restored layer keeps its FUSE copy even once it is local.
  lazy_->OnMounted(/*resumed=*/true);
  EXPECT_EQ(InodeOf(big_dir + "/big/huge"), huge_ino);
  EXPECT_EQ(InodeOf(big_dir + "/" + SmallName(3)), small_ino);
  EXPECT_EQ(Read(big_dir + "/" + SmallName(3)), SmallContent(3));

  // Background completion fetches the rest on its own and unpacks it next to the snapshot:
  // `fs` switches to the local copy and the FUSE copy goes once the kernel has forgotten its
  // inodes (the removal invalidates them; bounded wait, nothing else signals it).
  ASSERT_EQ(WaitForState(name, "local, FUSE in use", absl::Seconds(60)), "local, FUSE in use");
  EXPECT_TRUE(fs_->Status(name).ok()) << "the FUSE copy of a restored layer is kept";
  EXPECT_EQ(Read(mnt_ + "/" + name + "/" + SmallName(8)), SmallContent(8));
  // The mount is in fact fresh (StartLazy mounted anew): the copy may go.
  lazy_->OnMounted(/*resumed=*/false);
  ASSERT_EQ(WaitForState(name, "local", absl::Seconds(60)), "local");
  EXPECT_TRUE(absl::IsNotFound(fs_->Status(name).status())) << "FUSE copy still served";
  EXPECT_NE(::stat((mnt_ + "/" + name).c_str(), &st), 0);
  auto snapshot_dir = snapshotter_->Dir(big);
  ASSERT_TRUE(snapshot_dir.ok()) << snapshot_dir.status();
  const std::string local_dir = *snapshot_dir + "/local";
  EXPECT_TRUE(FuseReleased(*snapshot_dir));
  for (const LazyLayerInfo& l : lazy_->Layers()) {
    if (l.name == name) {
      EXPECT_EQ(l.local_dir, local_dir);
    }
  }
  // New mounts resolve to local disk: a view's source and a container's lowerdir.
  const std::string view_dir = ContentDir(big);
  char resolved[PATH_MAX];
  ASSERT_NE(::realpath(view_dir.c_str(), resolved), nullptr);
  EXPECT_EQ(std::string(resolved), local_dir);
  EXPECT_NE(FsType(view_dir), kFuseSuperMagic);
  EXPECT_EQ(Read(big_dir + "/big/huge"), HugeContent());
  for (int i = 0; i < kSmallFiles; i += 7) EXPECT_EQ(Read(big_dir + "/" + SmallName(i)), SmallContent(i));
  {
    auto mounts = snapshotter_->Prepare("container-local", top, {});
    ASSERT_TRUE(mounts.ok()) << mounts.status();
    const std::string rootfs = tmp_->Join("rootfs-local");
    ASSERT_TRUE(MakeDirs(rootfs).ok());
    ASSERT_TRUE(testing::MountAll(*mounts, rootfs).ok());
    testing::ScopedMount unmount(rootfs);
    EXPECT_EQ(Read(rootfs + "/small/top"), "top layer\n");
    EXPECT_EQ(Read(rootfs + "/big/huge"), HugeContent());
  }
  ASSERT_TRUE(snapshotter_->Remove("container-local").ok());

  // Another restart: the layer stays on local disk, no FUSE layer and no registry request.
  StopLazy();
  StartLazy(/*background_threads=*/2);
  const int blob_gets = proxy_->CountRequests("GET", "/blobs/");
  restored = lazy_->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(*restored, 1);
  EXPECT_EQ(StateOf(name), "local");
  EXPECT_TRUE(absl::IsNotFound(fs_->Status(name).status()));
  EXPECT_EQ(Read(big_dir + "/" + SmallName(5)), SmallContent(5));
  EXPECT_EQ(proxy_->CountRequests("GET", "/blobs/"), blob_gets);

  // Removing the snapshots (views first: they are its children) removes the FUSE layer.
  auto views = snapshotter_->List(SnapshotFilter());
  ASSERT_TRUE(views.ok());
  for (const SnapshotInfo& v : *views) {
    if (v.kind == SnapshotKind::kView) {
      ASSERT_TRUE(snapshotter_->Remove(v.name).ok()) << v.name;
    }
  }
  ASSERT_TRUE(snapshotter_->Remove(top).ok());
  ASSERT_TRUE(snapshotter_->Remove(big).ok());
  EXPECT_TRUE(absl::IsNotFound(fs_->Status(name).status()));
  EXPECT_NE(::stat((mnt_ + "/" + name).c_str(), &st), 0);
  // The local copy went with the snapshot directory.
  EXPECT_NE(::lstat(local_dir.c_str(), &st), 0);
  EXPECT_NE(::lstat(snapshot_dir->c_str(), &st), 0);
  EXPECT_EQ(StateOf(name), "absent");
}

TEST_F(LazyPullProviderTest, AFileOpenThroughFuseKeepsTheFuseCopyUntilClosed) {
  // Throttled blob reads: completion takes seconds, so the file below is opened through
  // FUSE while the layer is still remote.
  proxy_->Add(testkit::Fault::Throttle(1 << 20).On("GET", "/blobs/").Times(100000));
  StartLazy(/*background_threads=*/2);
  Image img = Push("lazy/open:1", {BigLayerTar()});
  PushIndex("lazy/open:1", /*min_layer_size=*/1 << 20);
  auto outcome = Call(*lazy_, Request(img, 0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(*outcome, RemoteOutcome::kCommitted);
  const std::string big = img.chains[0].str();
  const std::string name = LazyLayerName(big);
  const std::string fs_link = ContentDir(big);
  UniqueFd fd(::open((fs_link + "/big/huge").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << std::strerror(errno);
  EXPECT_EQ(FsType(fs_link + "/big/huge"), kFuseSuperMagic);
  const std::string huge = HugeContent();
  std::string head(4096, '\0');
  ASSERT_EQ(::pread(fd.get(), head.data(), head.size(), 0), 4096);
  EXPECT_EQ(head, huge.substr(0, 4096));

  EXPECT_EQ(StateOf(name), "completing");
  // Complete and local, but the open file keeps the FUSE copy (bounded wait).
  ASSERT_EQ(WaitForState(name, "local, FUSE in use", absl::Seconds(90)), "local, FUSE in use");
  auto fuse_status = fs_->Status(name);
  ASSERT_TRUE(fuse_status.ok()) << fuse_status.status();
  EXPECT_EQ(fuse_status->open_files, 1);
  auto dir = snapshotter_->Dir(big);
  ASSERT_TRUE(dir.ok());
  EXPECT_FALSE(FuseReleased(*dir));
  // New mounts use local disk; the open file reads on through FUSE.
  EXPECT_NE(FsType(ContentDir(big) + "/big/huge"), kFuseSuperMagic);
  EXPECT_EQ(Read(fs_link + "/big/huge"), huge);
  std::string rest(huge.size() - 4096, '\0');
  ASSERT_EQ(::pread(fd.get(), rest.data(), rest.size(), 4096),
            static_cast<ssize_t>(rest.size()));
  EXPECT_TRUE(rest == huge.substr(4096));

  // Closed: the next retry drops the FUSE copy; once the kernel forgot it, it is released.
  fd.Reset();
  ASSERT_EQ(WaitForState(name, "local", absl::Seconds(30)), "local");
  EXPECT_TRUE(absl::IsNotFound(fs_->Status(name).status()));
  EXPECT_TRUE(FuseReleased(*dir));
  StopLazy();
}

TEST_F(LazyPullProviderTest, CompletionWaitsUntilPreparesHaveBeenQuietForAWhile) {
  const absl::Duration quiet = absl::Milliseconds(600);
  StartLazy(/*background_threads=*/1, nullptr, quiet);
  Image img = Push("lazy/quiet:1", {BigLayerTar()});
  PushIndex("lazy/quiet:1", /*min_layer_size=*/1 << 20);
  auto outcome = Call(*lazy_, Request(img, 0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(*outcome, RemoteOutcome::kCommitted);
  const absl::Time prepared = absl::Now();
  const std::string name = LazyLayerName(img.chains[0].str());
  ASSERT_EQ(WaitForState(name, "local", absl::Seconds(60)), "local");
  // The layer alone completes in a few tens of ms here (the other tests run without the
  // quiet period); with it, not before the quiet period after its Prepare.
  EXPECT_GE(absl::Now() - prepared, quiet);
  StopLazy();
}

TEST_F(LazyPullProviderTest, FailuresCommitNothingAndALaterPrepareRetries) {
  StartLazy(/*background_threads=*/0);
  Image img = Push("lazy/broken:1", {BigLayerTar(), SmallLayerTar("top", "top\n")});
  const Digest ztoc = PushIndex("lazy/broken:1", /*min_layer_size=*/1 << 20);
  const testkit::FaultId fault =
      proxy_->Add(testkit::Fault::Status(404).On("GET", "/blobs/" + ztoc.str()).Times(1000));

  auto outcome = Call(*lazy_, Request(img, 0));
  ASSERT_FALSE(outcome.ok());
  const std::string message(outcome.status().message());
  EXPECT_NE(message.find(img.ref), std::string::npos) << message;
  EXPECT_NE(message.find(img.built.layers[0].descriptor.digest.str()), std::string::npos)
      << message;
  EXPECT_GT(proxy_->hits(fault), 0);
  // Nothing half-done: no snapshot, no FUSE layer, no staging dir, no zTOC on disk.
  EXPECT_TRUE(absl::IsNotFound(snapshotter_->Stat(img.chains[0].str()).status()));
  EXPECT_TRUE(fs_->AllStatus().empty());
  const std::vector<std::string> entries = DirEntries(tmp_->Join("root/snapshots"));
  EXPECT_TRUE(entries.empty()) << absl::StrJoin(entries, ",");
  EXPECT_NE(::access(lazy_->ZtocPath(ztoc).c_str(), F_OK), 0);

  // The registry recovers, but the commit fails (a parent that does not exist): the FUSE
  // layer added meanwhile and the staging dir (its symlink) go again.
  proxy_->ClearFaults();
  RemotePrepareRequest orphan = Request(img, 0);
  orphan.parent = "sha256:" + std::string(64, 'f');
  outcome = Call(*lazy_, orphan);
  ASSERT_FALSE(outcome.ok());
  EXPECT_NE(std::string(outcome.status().message()).find(img.ref), std::string::npos)
      << outcome.status();
  EXPECT_TRUE(absl::IsNotFound(snapshotter_->Stat(img.chains[0].str()).status()));
  EXPECT_TRUE(fs_->AllStatus().empty());
  EXPECT_TRUE(DirEntries(tmp_->Join("root/snapshots")).empty());

  // The next Prepare of the layer goes through.
  outcome = Call(*lazy_, Request(img, 0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, RemoteOutcome::kCommitted);
  EXPECT_TRUE(fs_->Status(LazyLayerName(img.chains[0].str())).ok());
  lazy_->WaitForZtocStores();
  EXPECT_EQ(::access(lazy_->ZtocPath(ztoc).c_str(), F_OK), 0);
}

TEST_F(LazyPullProviderTest, ChunkCacheServesRereadsAfterARestartLocally) {
  auto cache = remote::ChunkCache::Open({.dir = tmp_->Join("cache")});
  ASSERT_TRUE(cache.ok()) << cache.status();
  StartLazy(/*background_threads=*/0, cache->get());
  Image img = Push("lazy/cached:1", {BigLayerTar()});
  PushIndex("lazy/cached:1", /*min_layer_size=*/1 << 20);
  auto outcome = Call(*lazy_, Request(img, 0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(*outcome, RemoteOutcome::kCommitted);
  const std::string dir = ContentDir(img.chains[0].str());
  const std::string blob = "/blobs/" + img.built.layers[0].descriptor.digest.str();
  EXPECT_EQ(Read(dir + "/" + SmallName(42)), SmallContent(42));
  const int gets = proxy_->CountRequests("GET", blob);
  EXPECT_GT(gets, 0);
  EXPECT_GT((*cache)->stats().stored_chunks, 0);

  // A new LayerFs has an empty span cache: the bytes come from the chunk cache on disk.
  StopLazy();
  StartLazy(/*background_threads=*/0, cache->get());
  auto restored = lazy_->Restore();
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(Read(dir + "/" + SmallName(42)), SmallContent(42));
  EXPECT_EQ(proxy_->CountRequests("GET", blob), gets);
  EXPECT_GT((*cache)->stats().hits, 0);
  StopLazy();  // before the cache goes
}

// The stored zTOC is written without fsync: after a power cut it may be empty, short or
// gone. Restore then fetches it from the registry again (its size is a label) and stores it.
TEST_F(LazyPullProviderTest, AStoredZtocLostToAPowerCutIsFetchedAgainOnRestore) {
  StartLazy(/*background_threads=*/0);
  Image img = Push("lazy/powercut:1", {BigLayerTar()});
  PushIndex("lazy/powercut:1", /*min_layer_size=*/1 << 20);
  auto outcome = Call(*lazy_, Request(img, 0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  ASSERT_EQ(*outcome, RemoteOutcome::kCommitted);
  const std::string chain = img.chains[0].str();
  auto info = snapshotter_->Stat(chain);
  ASSERT_TRUE(info.ok()) << info.status();
  auto ztoc = Digest::Parse(info->labels[kLazyZtocLabel]);
  ASSERT_TRUE(ztoc.ok()) << ztoc.status();
  const std::string path = lazy_->ZtocPath(*ztoc);
  lazy_->WaitForZtocStores();
  auto stored = ReadFileToString(path);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(info->labels[kLazyZtocSizeLabel], absl::StrCat(stored->size()));
  const std::string ztoc_blob = "/blobs/" + ztoc->str();
  const std::string dir = ContentDir(chain);

  for (const bool remove : {false, true}) {
    SCOPED_TRACE(remove ? "file gone" : "file cut short");
    StopLazy();
    if (remove) {
      ASSERT_EQ(::unlink(path.c_str()), 0);
    } else {
      ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(stored->size() / 2)), 0);
    }
    const int gets = proxy_->CountRequests("GET", ztoc_blob);
    StartLazy(/*background_threads=*/0);
    auto restored = lazy_->Restore();
    ASSERT_TRUE(restored.ok()) << restored.status();
    EXPECT_EQ(*restored, 1);
    EXPECT_EQ(proxy_->CountRequests("GET", ztoc_blob), gets + 1);
    EXPECT_EQ(Read(dir + "/" + SmallName(7)), SmallContent(7));
    lazy_->WaitForZtocStores();
    auto again = ReadFileToString(path);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_TRUE(*again == *stored);
  }
  StopLazy();
}

TEST_F(LazyPullProviderTest, ImageWithoutIndexGoesToTheParallelProvider) {
  StartLazy(/*background_threads=*/0);
  Image img = Push("lazy/plain:1", {SmallLayerTar("plain", "no index here\n")});
  auto outcome = Call(*lazy_, Request(img, 0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, RemoteOutcome::kCommitted);
  EXPECT_EQ(parallel_->jobs_started(), 1);
  auto info = snapshotter_->Stat(img.chains[0].str());
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->labels.count(kModeLabel), 0u);
  EXPECT_TRUE(fs_->AllStatus().empty());
  EXPECT_EQ(Read(ContentDir(img.chains[0].str()) + "/small/plain"), "no index here\n");
}

TEST_F(LazyPullProviderTest, PrepareWithoutCriLabelsIsNotHandled) {
  StartLazy(/*background_threads=*/0);
  RemotePrepareRequest r;
  r.key = "default/1/extract sha256:abc";
  r.labels = {{kSnapshotRefLabel, "sha256:" + std::string(64, 'c')}};
  auto outcome = Call(*lazy_, r);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, RemoteOutcome::kNotHandled);
}

// Records the Prepares it gets and answers kCommitted.
class RecordingProvider final : public RemoteLayerProvider {
 public:
  void Prepare(const RemotePrepareRequest& request, Done done) override {
    keys.push_back(request.key);
    std::move(done)(RemoteOutcome::kCommitted);
  }
  std::vector<std::string> keys;
};

TEST(ModeRouterTest, RoutesByTheDefaultMode) {
  RecordingProvider parallel, lazy;
  RemotePrepareRequest request;
  request.key = "k";
  for (const auto& [mode, want_parallel, want_lazy] :
       std::vector<std::tuple<std::string, size_t, size_t>>{
           {"parallel", 1, 0}, {"lazy", 1, 1}, {"containerd", 1, 1}}) {
    auto parsed = ParsePullMode(mode);
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    ModeRouter router(*parsed, {.parallel = &parallel, .lazy = &lazy});
    absl::StatusOr<RemoteOutcome> outcome = absl::UnknownError("not answered");
    router.Prepare(request, [&](absl::StatusOr<RemoteOutcome> r) { outcome = std::move(r); });
    ASSERT_TRUE(outcome.ok()) << mode;
    EXPECT_EQ(*outcome, mode == "containerd" ? RemoteOutcome::kNotHandled
                                             : RemoteOutcome::kCommitted) << mode;
    EXPECT_EQ(parallel.keys.size(), want_parallel) << mode;
    EXPECT_EQ(lazy.keys.size(), want_lazy) << mode;
  }
  EXPECT_TRUE(absl::IsInvalidArgument(ParsePullMode("eager").status()));
  // A mode whose provider is absent leaves the layer to containerd.
  ModeRouter bare(PullMode::kLazy, {});
  absl::StatusOr<RemoteOutcome> outcome = absl::UnknownError("not answered");
  bare.Prepare(request, [&](absl::StatusOr<RemoteOutcome> r) { outcome = std::move(r); });
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, RemoteOutcome::kNotHandled);
}

TEST(LazyDaemonTest, MountDirKeyParses) {
  auto c = daemon::ParseConfig("default_mode = \"lazy\"\n[lazy]\nmount_dir = \"/m\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->default_mode, "lazy");
  EXPECT_EQ(c->lazy_mount_dir, "/m");
}

TEST(LazyDaemonTest, LazyModeMountsFuseOverAStaleMountAndUnmountsOnShutdown) {
  ASSERT_EQ(::geteuid(), 0u) << "needs root to mount";
  auto tmp = TempDir::Create("lazy-daemon-");
  ASSERT_TRUE(tmp.ok()) << tmp.status();
  daemon::DaemonConfig config;
  config.root = tmp->Join("root");
  config.address = tmp->Join("s.sock");
  config.hosts_dir = tmp->Join("certs.d");
  config.default_mode = "lazy";
  const std::string mount_dir = config.root + "/fuse";
  // What a crashed run leaves: something still mounted at the mountpoint.
  ASSERT_TRUE(MakeDirs(mount_dir).ok());
  ASSERT_EQ(::mount("stale", mount_dir.c_str(), "tmpfs", 0, nullptr), 0) << std::strerror(errno);
  ASSERT_EQ(FsType(mount_dir), kTmpfsMagic);

  auto d = daemon::Daemon::Start(config);
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_NE((*d)->layer_fs(), nullptr);
  EXPECT_EQ(FsType(mount_dir), kFuseSuperMagic);
  struct stat st;
  EXPECT_EQ(::stat((config.root + "/cache").c_str(), &st), 0) << "chunk cache dir";
  (*d)->Shutdown();
  const int64_t after = FsType(mount_dir);
  EXPECT_NE(after, kFuseSuperMagic);
  EXPECT_NE(after, kTmpfsMagic);
}

}  // namespace
}  // namespace slipstream::plugin
