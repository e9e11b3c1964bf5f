// SPDX-License-Identifier: Apache-2.0
// RemotePullProvider against a real docker-registry behind a FaultProxy, with an
// OverlaySnapshotter in a temp root: the Prepare sequence containerd's CRI pull sends.
#include "plugin/remote_pull_provider.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/temp_dir.h"
#include "plugin/snapshot_filter.h"
#include "remote/registry_client.h"
#include "testkit/fault_proxy.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "tests/remote/registry_integration_env.h"
#include "testkit/tar_writer.h"

namespace slipstream::plugin {
namespace {

std::string LayerTar(const std::string& name, const std::string& content) {
  std::string tar;
  testkit::TarWriter w(testkit::TarWriter::StringSink(&tar));
  EXPECT_TRUE(w.AddDir("data", {.mode = 0755}).ok());
  EXPECT_TRUE(w.AddFile("data/" + name, content, {.mode = 0644}).ok());
  EXPECT_TRUE(w.Finish().ok());
  return tar;
}

// Incompressible content, so a blob is large enough for faults at a fixed offset.
std::string Pseudo(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (char& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

struct Image {
  testkit::BuiltImage built;
  std::string ref;  // through the proxy, as the cri.image-ref label carries it
  std::vector<Digest> chains;
};

// The suite's registry (registry_) and fast-retry client come from the shared remote test env.
class RemotePullProviderTest : public remote::testing::RegistryIntegrationTest {
 protected:
  void SetUp() override {
    ASSERT_NE(registry_, nullptr);
    auto t = TempDir::Create("remote-pull-");
    ASSERT_TRUE(t.ok()) << t.status();
    tmp_.emplace(*std::move(t));
    client_ = remote::testing::NewClient({.max_total = absl::Seconds(5)});
    ASSERT_NE(client_, nullptr);
    auto sn = OverlaySnapshotter::Open(tmp_->Join("root"));
    ASSERT_TRUE(sn.ok()) << sn.status();
    snapshotter_ = *std::move(sn);
    auto p = testkit::FaultProxy::Start(registry_->host());
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = *std::move(p);
  }
  void TearDown() override {
    provider_.reset();
    if (proxy_ != nullptr) proxy_->Stop();
  }

  void MakeProvider(RemoteFailurePolicy policy) {
    RemotePullOptions opts;
    opts.on_failure = policy;
    opts.tuning = {.chunk_size = 64 << 10, .requests = 4};
    provider_ = std::make_unique<RemotePullProvider>(snapshotter_.get(), client_.get(), opts);
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

  // The Prepare containerd's CRI unpacker sends for layer `i` of `img`.
  static RemotePrepareRequest Request(const Image& img, size_t i, const std::string& tag = "") {
    RemotePrepareRequest r;
    r.key = absl::StrCat("k8s.io/", i, "/extract-", tag, i, " ", img.chains[i].str());
    r.parent = i == 0 ? "" : img.chains[i - 1].str();
    r.labels = {{kSnapshotRefLabel, img.chains[i].str()},
                {kCriImageRefLabel, img.ref},
                {kCriManifestDigestLabel, img.built.manifest_digest.str()},
                {kCriLayerDigestLabel, img.built.layers[i].descriptor.digest.str()}};
    return r;
  }

  absl::StatusOr<RemoteOutcome> Call(const RemotePrepareRequest& request) {
    struct State {
      absl::Notification done;
      absl::StatusOr<RemoteOutcome> outcome = absl::UnknownError("not answered");
    };
    auto state = std::make_shared<State>();
    provider_->Prepare(request, [state](absl::StatusOr<RemoteOutcome> r) {
      state->outcome = std::move(r);
      state->done.Notify();
    });
    if (!state->done.WaitForNotificationWithTimeout(absl::Seconds(60))) {
      return absl::DeadlineExceededError("Prepare not answered in 60s");
    }
    return state->outcome;
  }

  // The content directory of committed snapshot `name`: the top lower dir of a view on it.
  std::string ContentDir(const std::string& name) {
    auto mounts = snapshotter_->View("view-" + name, name, {});
    EXPECT_TRUE(mounts.ok()) << mounts.status();
    if (!mounts.ok() || mounts->empty()) return "";
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

  int BlobGets(const Image& img, size_t i) {
    return proxy_->CountRequests("GET", "/blobs/" + img.built.layers[i].descriptor.digest.str());
  }

  std::optional<TempDir> tmp_;
  std::unique_ptr<remote::RegistryClient> client_;
  std::unique_ptr<OverlaySnapshotter> snapshotter_;
  std::unique_ptr<testkit::FaultProxy> proxy_;
  std::unique_ptr<RemotePullProvider> provider_;
  int images_ = 0;
};

TEST(ChainIdsTest, FollowsTheOciDefinition) {
  auto a = Digest::Parse("sha256:" + std::string(64, 'a'));
  auto b = Digest::Parse("sha256:" + std::string(64, 'b'));
  ASSERT_TRUE(a.ok() && b.ok());
  std::vector<Digest> chains = ChainIds({*a, *b});
  ASSERT_EQ(chains.size(), 2u);
  EXPECT_EQ(chains[0], *a);
  EXPECT_EQ(chains[1], Sha256Of(a->str() + " " + b->str()));
}

TEST_F(RemotePullProviderTest, CriPullCommitsEveryLayerUnderItsChainId) {
  MakeProvider(RemoteFailurePolicy::kFail);
  Image img = Push("handshake/three:1", {LayerTar("zero", std::string(200000, 'z')),
                                         LayerTar("one", "first"),
                                         LayerTar("two", std::string(300000, 't'))});
  const std::vector<std::string> names = {"zero", "one", "two"};
  for (size_t i = 0; i < 3; ++i) {
    auto outcome = Call(Request(img, i));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, RemoteOutcome::kCommitted) << "layer " << i;

    const std::string chain = img.chains[i].str();
    auto info = snapshotter_->Stat(chain);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->kind, SnapshotKind::kCommitted);
    EXPECT_EQ(info->parent, i == 0 ? "" : img.chains[i - 1].str());
    EXPECT_EQ(info->labels[kSnapshotRefLabel], chain);

    // The check containerd makes after AlreadyExists.
    auto filter = SnapshotFilter::Parse({absl::StrCat("labels.\"", kSnapshotRefLabel,
                                                      "\"==", chain, ",parent==\"", info->parent, "\"")});
    ASSERT_TRUE(filter.ok()) << filter.status();
    auto listed = snapshotter_->List(*filter);
    ASSERT_TRUE(listed.ok()) << listed.status();
    ASSERT_EQ(listed->size(), 1u);
    EXPECT_EQ(listed->front().name, chain);
  }
  auto zero = ReadFileToString(ContentDir(img.chains[0].str()) + "/data/zero");
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(*zero, std::string(200000, 'z'));
  auto two = ReadFileToString(ContentDir(img.chains[2].str()) + "/data/two");
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(*two, std::string(300000, 't'));
  EXPECT_EQ(provider_->jobs_started(), 1);
  std::vector<RemotePullProvider::ImageState> images = provider_->Images();
  ASSERT_EQ(images.size(), 1u);
  EXPECT_TRUE(images[0].resolved);
  EXPECT_EQ(images[0].layers, 3);
  EXPECT_EQ(images[0].pulled, 3);
  EXPECT_EQ(images[0].done, 3);
  EXPECT_EQ(images[0].failed, 0);
}

TEST_F(RemotePullProviderTest, ConcurrentPreparesOfOneImageShareOneJob) {
  MakeProvider(RemoteFailurePolicy::kFail);
  Image img = Push("handshake/concurrent:1", {LayerTar("a", std::string(500000, 'a'))});
  absl::StatusOr<RemoteOutcome> first, second;
  std::thread t([&] { first = Call(Request(img, 0, "x")); });
  second = Call(Request(img, 0, "y"));
  t.join();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*first, RemoteOutcome::kCommitted);
  EXPECT_EQ(*second, RemoteOutcome::kCommitted);
  EXPECT_EQ(provider_->jobs_started(), 1);
}

TEST_F(RemotePullProviderTest, SecondImageReusesTheCommittedBaseLayer) {
  MakeProvider(RemoteFailurePolicy::kFail);
  const std::string base = LayerTar("base", std::string(400000, 'b'));
  Image a = Push("handshake/a:1", {base, LayerTar("a", "from a")});
  Image b = Push("handshake/b:1", {base, LayerTar("b", "from b")});
  ASSERT_EQ(a.chains[0], b.chains[0]);
  for (size_t i = 0; i < 2; ++i) ASSERT_EQ(*Call(Request(a, i)), RemoteOutcome::kCommitted);
  const int base_gets = BlobGets(a, 0);
  EXPECT_GT(base_gets, 0);

  for (size_t i = 0; i < 2; ++i) {
    auto outcome = Call(Request(b, i, "b"));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, RemoteOutcome::kCommitted);
  }
  EXPECT_EQ(BlobGets(a, 0), base_gets);
  EXPECT_EQ(BlobGets(b, 0), base_gets);  // same blob, or never fetched under another digest
  EXPECT_GT(BlobGets(b, 1), 0);
  auto top = ReadFileToString(ContentDir(b.chains[1].str()) + "/data/b");
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(*top, "from b");
  EXPECT_EQ(provider_->jobs_started(), 2);
}

// Found by the chaos load test (tests/chaos/load_test.cc): after `crictl rmi` and GC, the
// next CRI pull of the same image was answered "not handled" for every layer, so containerd
// fetched and applied them itself.
TEST_F(RemotePullProviderTest, ImageRemovedAndPulledAgainIsPulledBySlipstreamAgain) {
  MakeProvider(RemoteFailurePolicy::kFail);
  Image img = Push("handshake/again:1", {LayerTar("a", std::string(300000, 'a')),
                                         LayerTar("b", "second")});
  for (size_t i = 0; i < 2; ++i) ASSERT_EQ(*Call(Request(img, i)), RemoteOutcome::kCommitted);
  ASSERT_TRUE(snapshotter_->Remove(img.chains[1].str()).ok());
  ASSERT_TRUE(snapshotter_->Remove(img.chains[0].str()).ok());
  for (size_t i = 0; i < 2; ++i) {
    auto outcome = Call(Request(img, i, "again"));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, RemoteOutcome::kCommitted) << "layer " << i;
  }
  auto a = ReadFileToString(ContentDir(img.chains[0].str()) + "/data/a");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(*a, std::string(300000, 'a'));
  EXPECT_EQ(provider_->jobs_started(), 2);
}

// The same for a layer another image had committed when this one resolved.
TEST_F(RemotePullProviderTest, SharedLayerRemovedAndPulledAgainIsPulledBySlipstream) {
  MakeProvider(RemoteFailurePolicy::kFail);
  const std::string base = LayerTar("base", std::string(300000, 'b'));
  Image a = Push("handshake/again-a:1", {base, LayerTar("a", "from a")});
  Image b = Push("handshake/again-b:1", {base, LayerTar("b", "from b")});
  for (size_t i = 0; i < 2; ++i) ASSERT_EQ(*Call(Request(a, i)), RemoteOutcome::kCommitted);
  for (size_t i = 0; i < 2; ++i) ASSERT_EQ(*Call(Request(b, i, "b")), RemoteOutcome::kCommitted);
  for (const Image* img : {&a, &b}) ASSERT_TRUE(snapshotter_->Remove(img->chains[1].str()).ok());
  ASSERT_TRUE(snapshotter_->Remove(b.chains[0].str()).ok());
  for (size_t i = 0; i < 2; ++i) {
    auto outcome = Call(Request(b, i, "again"));
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(*outcome, RemoteOutcome::kCommitted) << "layer " << i;
  }
  auto top = ReadFileToString(ContentDir(b.chains[1].str()) + "/data/b");
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(*top, "from b");
  EXPECT_EQ(provider_->jobs_started(), 3);
}

TEST_F(RemotePullProviderTest, PrepareWithoutCriLabelsIsNotHandled) {
  MakeProvider(RemoteFailurePolicy::kFail);
  RemotePrepareRequest r;
  r.key = "default/1/extract sha256:abc";
  r.labels = {{kSnapshotRefLabel, "sha256:" + std::string(64, 'c')}};
  auto outcome = Call(r);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, RemoteOutcome::kNotHandled);
  EXPECT_EQ(proxy_->requests_seen(), 0);
  EXPECT_EQ(provider_->jobs_started(), 0);
}

TEST_F(RemotePullProviderTest, CorruptBlobFallsBackToContainerd) {
  MakeProvider(RemoteFailurePolicy::kFallback);
  Image img = Push("handshake/corrupt-fallback:1", {LayerTar("c", Pseudo(300000, 1))});
  testkit::FaultId id = proxy_->Add(
      testkit::Fault::CorruptAt(1000)
          .On("GET", "/blobs/" + img.built.layers[0].descriptor.digest.str())
          .Times(-1));
  auto outcome = Call(Request(img, 0));
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(*outcome, RemoteOutcome::kNotHandled);
  EXPECT_GT(proxy_->hits(id), 0);
  EXPECT_TRUE(absl::IsNotFound(snapshotter_->Stat(img.chains[0].str()).status()));
  auto all = snapshotter_->List(*SnapshotFilter::Parse({}));
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
  // The staging dir went too: nothing for Cleanup to find.
  auto cleaned = snapshotter_->Cleanup();
  ASSERT_TRUE(cleaned.ok()) << cleaned.status();
  EXPECT_EQ(*cleaned, 0);
}

TEST_F(RemotePullProviderTest, CorruptBlobFailsThePrepareNamingImageAndLayer) {
  MakeProvider(RemoteFailurePolicy::kFail);
  Image img = Push("handshake/corrupt-fail:1", {LayerTar("f", Pseudo(300000, 2))});
  proxy_->Add(testkit::Fault::CorruptAt(1000)
                  .On("GET", "/blobs/" + img.built.layers[0].descriptor.digest.str())
                  .Times(-1));
  auto outcome = Call(Request(img, 0));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kDataLoss) << outcome.status();
  EXPECT_NE(outcome.status().message().find(img.ref), absl::string_view::npos)
      << outcome.status();
  EXPECT_NE(outcome.status().message().find(img.built.layers[0].descriptor.digest.str()),
            absl::string_view::npos)
      << outcome.status();
  EXPECT_TRUE(absl::IsNotFound(snapshotter_->Stat(img.chains[0].str()).status()));
}

// Staging dirs (<root>/snapshots/new-*) the snapshotter holds.
int StagingDirCount(const std::string& root) {
  int n = 0;
  if (DIR* d = ::opendir((root + "/snapshots").c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      if (std::string(e->d_name).rfind("new-", 0) == 0) ++n;
    }
    ::closedir(d);
  }
  return n;
}

// containerd stops applying an image at its first failed layer, so no Prepare ever comes for
// the layers above it: their unpacked staging dirs must not stay behind (they did until the
// next restart), and the image pulls whole once the registry is healthy again.
TEST_F(RemotePullProviderTest, LayersAboveAFailedOneLeaveNoStagingDir) {
  MakeProvider(RemoteFailurePolicy::kFail);
  Image img = Push("handshake/orphans:1", {LayerTar("bottom", Pseudo(300000, 3)),
                                           LayerTar("top", "above the failed layer")});
  proxy_->Add(testkit::Fault::CorruptAt(1000)
                  .On("GET", "/blobs/" + img.built.layers[0].descriptor.digest.str())
                  .Times(-1));
  auto outcome = Call(Request(img, 0));
  ASSERT_FALSE(outcome.ok());
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kDataLoss) << outcome.status();
  // The top layer unpacks fine; its staging dir goes once the job is over.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (StagingDirCount(tmp_->Join("root")) != 0) {
    ASSERT_LT(absl::Now(), deadline) << "a staging dir stayed behind";
    absl::SleepFor(absl::Milliseconds(20));
  }

  proxy_->ClearFaults();
  for (size_t i = 0; i < 2; ++i) {
    auto again = Call(Request(img, i, "again-"));
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*again, RemoteOutcome::kCommitted);
  }
  EXPECT_EQ(ReadFileToString(ContentDir(img.chains[1].str()) + "/data/top", 1024).value_or(""),
            "above the failed layer");
  EXPECT_EQ(StagingDirCount(tmp_->Join("root")), 0);
}

TEST_F(RemotePullProviderTest, ShutdownAnswersAPrepareWaitingForADownload) {
  MakeProvider(RemoteFailurePolicy::kFail);
  Image img = Push("handshake/slow:1", {LayerTar("s", Pseudo(400000, 3))});
  // ~20 s at this rate: the Prepare is still waiting when Shutdown comes.
  proxy_->Add(testkit::Fault::Throttle(20000)
                  .On("GET", "/blobs/" + img.built.layers[0].descriptor.digest.str())
                  .Times(-1));
  absl::StatusOr<RemoteOutcome> outcome;
  std::thread t([&] { outcome = Call(Request(img, 0)); });
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (provider_->jobs_started() == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));  // polling a condition, bounded by the deadline
  }
  EXPECT_EQ(provider_->jobs_started(), 1);
  const absl::Time before = absl::Now();
  provider_->Shutdown();
  t.join();
  EXPECT_LT(absl::Now() - before, absl::Seconds(10));
  ASSERT_FALSE(outcome.ok());
  EXPECT_TRUE(absl::IsCancelled(outcome.status()) || absl::IsUnavailable(outcome.status()))
      << outcome.status();
  EXPECT_TRUE(absl::IsNotFound(snapshotter_->Stat(img.chains[0].str()).status()));

  auto later = Call(Request(img, 0, "later"));
  EXPECT_TRUE(absl::IsUnavailable(later.status())) << later.status();
}

}  // namespace
}  // namespace slipstream::plugin
