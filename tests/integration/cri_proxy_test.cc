// SPDX-License-Identifier: Apache-2.0
// slipstreamd as kubelet's image service: `[cri] enable_image_service = true` in front of the
// real containerd 1.6 CRI, with `default_mode = "containerd"` so that only a pod's
// `slipstream.io/pull-mode` annotation sends a layer through slipstream. The image calls go to
// slipstreamd's socket (`slipstream cri --image-endpoint`), the pod and container calls to
// containerd's (kubelet's runtime endpoint).
//   - Two images pulled with `lazy` and `parallel` annotations: the indexed layer is a lazy
//     FUSE layer, the other image's layers are pulled by the parallel engine (snapshot labels
//     slipstream.io/mode). ListImages / ImageStatus / ImageFsInfo through the proxy answer what
//     containerd answers; RemoveImage through the proxy removes the image; a bad annotation
//     value is refused with a message naming the annotation and the allowed values.
//   - An image in a registry with htpasswd Basic auth, credentials given only in the CRI
//     request (no docker config anywhere the daemons look): pulled lazily, and a container
//     reads its files through slipstreamd's lazy reads with those credentials.
#include <google/protobuf/util/message_differencer.h>
#include <stdlib.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/subprocess.h"
#include "cri/client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/remote_pull_provider.h"
#include "remote/credentials.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/image_builder.h"
#include "testkit/registry_fixture.h"
#include "tests/integration/cri_env.h"

namespace slipstream {
namespace {

namespace v1 = ::runtime::v1;
using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;
using ::testing::Not;

// The indexed layer: incompressible files, big enough for a zTOC (kMinLayerSize), unlike
// the busybox layer (~1 MiB compressed).
constexpr int kRandomFiles = 32;
constexpr int kRandomFileSize = 128 << 10;
constexpr int64_t kMinLayerSize = 3 << 20;

std::string RandomBytes(std::mt19937_64& rng, int size) {
  std::string out(static_cast<size_t>(size), '\0');
  for (char& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

class CriProxyTest : public it::CriIntegrationTest {
 protected:
  // The FUSE mount goes with slipstreamd (not left to the fd holder), so the temp dir can go.
  CriProxyTest()
      : CriIntegrationTest("cri-proxy-it-",
                           "default_mode = \"containerd\"\n[lazy]\nkeep_mounts_on_exit = false\n") {}

  void SetUp() override {
    // Neither daemon may find registry credentials on disk: slipstreamd reads
    // $DOCKER_CONFIG/config.json (it inherits this environment); nothing is there.
    no_docker_config_ = TempDir::Create("cri-proxy-nodocker-");
    ASSERT_TRUE(no_docker_config_.ok());
    ::setenv("DOCKER_CONFIG", no_docker_config_->path().c_str(), 1);
    CriIntegrationTest::SetUp();
  }

  void PushImages() override {
    // The proxy forwards to the containerd the fixture starts next.
    absl::StrAppend(&slipstreamd_config_, "[cri]\nenable_image_service = true\n",
                    "containerd_address = \"", containerd_socket_, "\"\n");
    // The lazy image: busybox, then the indexed layer under /big.
    std::string big = RandomLayer("big");
    lazy_ref_ = absl::StrCat(registry_->host(), "/slipstream/lazy:1");
    lazy_image_ = Push({BusyboxLayer("l1", {"sh", "cat", "sha256sum"}), big}, {}, {"/bin/sh"},
                       lazy_ref_, tmp_->Join("lazy-layout"));
    ASSERT_EQ(lazy_image_.layers.size(), 2u);
    ASSERT_GT(lazy_image_.layers[1].descriptor.size, kMinLayerSize);
    ASSERT_NO_FATAL_FAILURE(PushSociIndex(lazy_ref_, kMinLayerSize));
    // The parallel image: its own busybox layer (other applets, so other chainIDs) and a file.
    std::string extra = tmp_->Join("extra");
    ASSERT_TRUE(MakeDirs(extra + "/etc").ok());
    ASSERT_TRUE(WriteFileAtomic(extra + "/etc/parallel", "parallel image\n").ok());
    parallel_ref_ = absl::StrCat(registry_->host(), "/slipstream/parallel:1");
    parallel_image_ = Push({BusyboxLayer("p1", {"sh", "cat"}), extra}, {}, {"/bin/sh"},
                           parallel_ref_, tmp_->Join("parallel-layout"));
    ASSERT_EQ(parallel_image_.layers.size(), 2u);
  }

  // A layer directory with kRandomFiles files under /big/bin; their sha256 in random_sha256_.
  std::string RandomLayer(const std::string& name) {
    std::string dir = tmp_->Join(name);
    EXPECT_TRUE(MakeDirs(dir + "/big/bin").ok());
    std::mt19937_64 rng(7);
    random_sha256_.clear();
    for (int i = 0; i < kRandomFiles; ++i) {
      std::string bytes = RandomBytes(rng, kRandomFileSize);
      random_sha256_.push_back(std::string(Sha256Of(bytes).hex()));
      EXPECT_TRUE(WriteFileAtomic(absl::StrCat(dir, "/big/bin/r", i), bytes).ok());
    }
    return dir;
  }

  // `slipstream cri pull REF` through slipstreamd's image service.
  SubprocessResult PullViaProxy(const std::string& ref, const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"pull", ref, "--image-endpoint", slip_socket_};
    args.insert(args.end(), extra.begin(), extra.end());
    return Cli(args);
  }

  // The label `slipstream.io/mode` of the committed snapshot `chain_id` ("" when absent).
  std::string SnapshotInfo(const Digest& chain_id) {
    return Ctr({"snapshots", "--snapshotter", "slipstream", "info", chain_id.str()});
  }

  static std::vector<Digest> Chains(const testkit::BuiltImage& image) {
    std::vector<Digest> diff_ids;
    for (const testkit::BuiltLayer& l : image.layers) diff_ids.push_back(l.diff_id);
    return plugin::ChainIds(diff_ids);
  }

  // `sha256sum FILE` in a new container of `ref` (already pulled: `cri run` finds it).
  void ExpectSha256(const std::string& ref, const std::string& file, const std::string& want) {
    SubprocessResult run = Cli({"run", ref}, {"/bin/sha256sum", file});
    EXPECT_EQ(run.exit_code, 0) << run.stderr_data;
    EXPECT_EQ(run.stdout_data, absl::StrCat(want, "  ", file, "\n"));
  }

  std::unique_ptr<cri::CriClient> Client(const std::string& socket) {
    cri::CriClientOptions options;
    options.runtime_endpoint = socket;
    auto client = cri::CriClient::Connect(options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  absl::StatusOr<TempDir> no_docker_config_ = absl::UnknownError("unset");
  std::string lazy_ref_, parallel_ref_;
  testkit::BuiltImage lazy_image_, parallel_image_;
  std::vector<std::string> random_sha256_;
};

// Images sorted by id: containerd's list order is not stable.
v1::ListImagesResponse Sorted(v1::ListImagesResponse list) {
  std::sort(list.mutable_images()->begin(), list.mutable_images()->end(),
            [](const v1::Image& a, const v1::Image& b) { return a.id() < b.id(); });
  return list;
}

TEST_F(CriProxyTest, PodAnnotationsChooseTheModeAndImageCallsPassThrough) {
  // 1. The annotations choose the mode of each image; the default would be containerd's pull.
  SubprocessResult lazy = PullViaProxy(lazy_ref_, {"--annotation", "slipstream.io/pull-mode=lazy"});
  ASSERT_EQ(lazy.exit_code, 0) << lazy.stdout_data << lazy.stderr_data;
  SubprocessResult parallel =
      PullViaProxy(parallel_ref_, {"--annotation", "slipstream.io/pull-mode=parallel"});
  ASSERT_EQ(parallel.exit_code, 0) << parallel.stdout_data << parallel.stderr_data;

  const std::vector<Digest> lazy_chains = Chains(lazy_image_);
  std::string big_info = SnapshotInfo(lazy_chains[1]);
  EXPECT_THAT(big_info, HasSubstr("\"slipstream.io/mode\": \"lazy\"")) << big_info;
  for (const Digest& chain : Chains(parallel_image_)) {
    std::string info = SnapshotInfo(chain);
    EXPECT_THAT(info, HasSubstr("\"slipstream.io/mode\": \"parallel\"")) << info;
    EXPECT_THAT(info, HasSubstr("Committed")) << info;
  }
  // Neither image's layers went through containerd's content store.
  std::string content = Ctr({"content", "ls", "-q"});
  for (const auto* image : {&lazy_image_, &parallel_image_}) {
    for (const testkit::BuiltLayer& layer : image->layers) {
      EXPECT_THAT(content, Not(HasSubstr(layer.descriptor.digest.str())));
    }
  }
  std::string log = it::Tail(tmp_->Join("slipstreamd.log"));
  EXPECT_THAT(log, HasSubstr("lazy layer mounted"));
  EXPECT_THAT(log, HasSubstr("source=\"pod annotation\""));

  // 2. List, Status and FsInfo through the proxy answer what containerd answers.
  auto direct = Client(containerd_socket_);
  auto proxied = Client(slip_socket_);
  ASSERT_TRUE(direct && proxied);
  auto list_direct = direct->ListImages();
  auto list_proxied = proxied->ListImages();
  ASSERT_TRUE(list_direct.ok() && list_proxied.ok()) << list_proxied.status();
  EXPECT_GE(list_proxied->images_size(), 2);
  EXPECT_TRUE(MessageDifferencer::Equals(Sorted(*list_direct), Sorted(*list_proxied)))
      << list_proxied->DebugString();
  v1::ImageStatusRequest status;
  status.mutable_image()->set_image(lazy_ref_);
  status.set_verbose(true);
  auto status_direct = direct->ImageStatus(status);
  auto status_proxied = proxied->ImageStatus(status);
  ASSERT_TRUE(status_direct.ok() && status_proxied.ok()) << status_proxied.status();
  ASSERT_TRUE(status_proxied->has_image());
  EXPECT_TRUE(MessageDifferencer::Equals(*status_direct, *status_proxied))
      << status_proxied->ShortDebugString();
  auto fs_direct = direct->ImageFsInfo();
  auto fs_proxied = proxied->ImageFsInfo();
  ASSERT_TRUE(fs_direct.ok() && fs_proxied.ok()) << fs_proxied.status();
  ASSERT_GE(fs_proxied->image_filesystems_size(), 1);
  ASSERT_EQ(fs_direct->image_filesystems_size(), fs_proxied->image_filesystems_size());
  // Usage numbers are sampled by containerd over time; the filesystem is the same.
  EXPECT_EQ(fs_direct->image_filesystems(0).fs_id().mountpoint(),
            fs_proxied->image_filesystems(0).fs_id().mountpoint());

  // 3. RemoveImage through the proxy removes the image in containerd.
  v1::RemoveImageRequest remove;
  remove.mutable_image()->set_image(parallel_ref_);
  ASSERT_TRUE(proxied->RemoveImage(remove).ok());
  v1::ImageStatusRequest gone;
  gone.mutable_image()->set_image(parallel_ref_);
  auto gone_status = direct->ImageStatus(gone);
  ASSERT_TRUE(gone_status.ok()) << gone_status.status();
  EXPECT_FALSE(gone_status->has_image());
  // An absent image's status also passes through as "no image", not an error.
  auto gone_proxied = proxied->ImageStatus(gone);
  ASSERT_TRUE(gone_proxied.ok()) << gone_proxied.status();
  EXPECT_FALSE(gone_proxied->has_image());

  // 4. A bad annotation value is refused with a clear error, and nothing is pulled.
  SubprocessResult bad =
      PullViaProxy(parallel_ref_, {"--annotation", "slipstream.io/pull-mode=eager"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.stderr_data, HasSubstr("slipstream.io/pull-mode=\"eager\"")) << bad.stderr_data;
  EXPECT_THAT(bad.stderr_data, HasSubstr("lazy, parallel, containerd")) << bad.stderr_data;
  EXPECT_THAT(bad.stderr_data, HasSubstr("INVALID_ARGUMENT")) << bad.stderr_data;
  auto still_gone = direct->ImageStatus(gone);
  ASSERT_TRUE(still_gone.ok());
  EXPECT_FALSE(still_gone->has_image());
}

// A registry with htpasswd Basic auth and a lazily pulled image of it.
class CriProxyAuthTest : public CriProxyTest {
 protected:
  void PushImages() override {
    absl::StrAppend(&slipstreamd_config_, "[cri]\nenable_image_service = true\n",
                    "containerd_address = \"", containerd_socket_, "\"\n");
    auto reg = testkit::RegistryFixture::Start({.auth = testkit::RegistryAuth::kBasic});
    ASSERT_TRUE(reg.ok()) << reg.status();
    auth_registry_ = std::move(*reg);
    // Plain HTTP to it, for containerd and slipstreamd alike.
    std::string dir = absl::StrCat(hosts_dir_, "/", auth_registry_->host());
    ASSERT_TRUE(MakeDirs(dir).ok());
    std::string url = auth_registry_->url();
    ASSERT_TRUE(WriteFileAtomic(dir + "/hosts.toml",
                                absl::StrCat("server = \"", url, "\"\n\n[host.\"", url,
                                             "\"]\n  capabilities = [\"pull\", \"resolve\"]\n"))
                    .ok());

    std::string big = RandomLayer("big");
    testkit::ImageSpec spec;
    for (const std::string& d : {BusyboxLayer("l1", {"sh", "sha256sum"}), big}) {
      spec.layers.push_back({.source_dir = d, .tree = {.uid = 0, .gid = 0}});
    }
    spec.cmd = {"/bin/sh"};
    spec.env = {"PATH=/bin"};
    auto built = testkit::BuildImage(spec, tmp_->Join("auth-layout"));
    ASSERT_TRUE(built.ok()) << built.status();
    lazy_image_ = *built;
    auto creds = std::make_shared<remote::StaticCredentials>();
    creds->Set(auth_registry_->host(),
               {.username = auth_registry_->username(), .password = auth_registry_->password()});
    auto client = remote::RegistryClient::Create({.credentials = creds});
    ASSERT_TRUE(client.ok()) << client.status();
    lazy_ref_ = absl::StrCat(auth_registry_->host(), "/private/app:1");
    auto ref = remote::Reference::Parse(lazy_ref_);
    ASSERT_TRUE(ref.ok());
    auto pushed = testkit::PushImage(**client, *built, *ref);
    ASSERT_TRUE(pushed.ok()) << pushed.status();

    // The index push authenticates with a docker config that only it reads, removed after.
    std::string push_config = tmp_->Join("push-docker/config.json");
    ASSERT_TRUE(MakeDirs(tmp_->Join("push-docker")).ok());
    std::string basic = absl::Base64Escape(
        absl::StrCat(auth_registry_->username(), ":", auth_registry_->password()));
    ASSERT_TRUE(WriteFileAtomic(push_config,
                                absl::StrCat("{\"auths\": {\"", auth_registry_->host(),
                                             "\": {\"auth\": \"", basic, "\"}}}\n"))
                    .ok());
    ASSERT_NO_FATAL_FAILURE(PushSociIndex(lazy_ref_, kMinLayerSize, push_config));
    ASSERT_EQ(::unlink(push_config.c_str()), 0);
  }

  std::unique_ptr<testkit::RegistryFixture> auth_registry_;
};

TEST_F(CriProxyAuthTest, CredentialsFromThePullRequestServeLazyReads) {
  // Without credentials neither containerd nor slipstreamd gets in.
  SubprocessResult anonymous =
      PullViaProxy(lazy_ref_, {"--annotation", "slipstream.io/pull-mode=lazy"});
  EXPECT_NE(anonymous.exit_code, 0) << anonymous.stdout_data;

  const std::string user_pass =
      absl::StrCat(auth_registry_->username(), ":", auth_registry_->password());
  SubprocessResult pull = PullViaProxy(
      lazy_ref_, {"--annotation", "slipstream.io/pull-mode=lazy", "--auth", user_pass});
  ASSERT_EQ(pull.exit_code, 0) << pull.stdout_data << pull.stderr_data;
  std::string big_info = SnapshotInfo(Chains(lazy_image_)[1]);
  EXPECT_THAT(big_info, HasSubstr("\"slipstream.io/mode\": \"lazy\"")) << big_info;

  // Containers read files of the lazy layer: slipstreamd fetches them with the credentials.
  ExpectSha256(lazy_ref_, "/big/bin/r3", random_sha256_[3]);
  ExpectSha256(lazy_ref_, absl::StrCat("/big/bin/r", kRandomFiles - 1),
               random_sha256_[kRandomFiles - 1]);

  // The log names the registry and the kind of credential, never the password.
  std::string log = it::Tail(tmp_->Join("slipstreamd.log"));
  EXPECT_THAT(log, HasSubstr("credentials=username/password"));
  EXPECT_THAT(log, Not(HasSubstr(auth_registry_->password())));
}

}  // namespace
}  // namespace slipstream
