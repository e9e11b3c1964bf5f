// SPDX-License-Identifier: Apache-2.0
// ModeSelector (pod annotation > [[mode_rules]] > default_mode, glob rules, normalized
// references, the bounded choice table) and the ModeRouter that asks it per Prepare.
#include "plugin/mode_selector.h"

#include <string>
#include <vector>

#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugin/lazy_pull_provider.h"
#include "plugin/mode_router.h"
#include "plugin/remote_pull_provider.h"

namespace slipstream::plugin {
namespace {

using ::testing::HasSubstr;

TEST(PullModeFromAnnotationTest, ParsesTheThreeModesAndRejectsOthers) {
  EXPECT_EQ(*PullModeFromAnnotation(nullptr), std::nullopt);
  for (const auto& [text, mode] : std::vector<std::pair<std::string, PullMode>>{
           {"lazy", PullMode::kLazy},
           {"parallel", PullMode::kParallel},
           {"containerd", PullMode::kContainerd}}) {
    auto got = PullModeFromAnnotation(&text);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(*got, mode) << text;
    EXPECT_EQ(PullModeName(mode), text);
  }
  for (const std::string bad : {"", "Lazy", "eager", "lazy "}) {
    auto got = PullModeFromAnnotation(&bad);
    ASSERT_TRUE(absl::IsInvalidArgument(got.status())) << "\"" << bad << "\"";
    EXPECT_THAT(std::string(got.status().message()), HasSubstr(kPullModeAnnotation));
    EXPECT_THAT(std::string(got.status().message()), HasSubstr("lazy, parallel, containerd"));
  }
}

TEST(GlobMatchesTest, StarCrossesSlashesAndEmptyMatchesAll) {
  EXPECT_TRUE(GlobMatches("*.dkr.ecr.*.amazonaws.com", "123456789012.dkr.ecr.us-west-2.amazonaws.com"));
  EXPECT_FALSE(GlobMatches("*.dkr.ecr.*.amazonaws.com", "ghcr.io"));
  EXPECT_TRUE(GlobMatches("ml/*", "ml/train"));
  EXPECT_TRUE(GlobMatches("ml/*", "ml/team/train"));
  EXPECT_FALSE(GlobMatches("ml/*", "library/ml"));
  EXPECT_TRUE(GlobMatches("", "anything/at/all"));
  EXPECT_TRUE(GlobMatches("library/ubuntu", "library/ubuntu"));
  EXPECT_FALSE(GlobMatches("library/ubuntu", "library/ubuntu2"));
}

TEST(ModeSelectorTest, PodAnnotationBeatsRulesBeatDefault) {
  ModeSelector selector(PullMode::kParallel,
                        {{.registry = "*.dkr.ecr.*.amazonaws.com", .repository = "ml/*",
                          .mode = PullMode::kLazy},
                         {.registry = "*.dkr.ecr.*.amazonaws.com", .mode = PullMode::kContainerd},
                         // Never reached for ECR ml/ images: the first match wins.
                         {.repository = "ml/*", .mode = PullMode::kParallel}});
  const std::string ecr_ml = "123.dkr.ecr.eu-west-1.amazonaws.com/ml/train:7";
  const std::string ecr_web = "123.dkr.ecr.eu-west-1.amazonaws.com/web/app:1";

  ModeSelector::Choice c = selector.ModeFor(ecr_ml);
  EXPECT_EQ(c.mode, PullMode::kLazy);
  EXPECT_EQ(c.source, ModeSource::kRule);
  EXPECT_EQ(selector.ModeFor(ecr_web).mode, PullMode::kContainerd);
  c = selector.ModeFor("ubuntu:22.04");
  EXPECT_EQ(c.mode, PullMode::kParallel);
  EXPECT_EQ(c.source, ModeSource::kDefault);

  selector.RecordPodChoice(ecr_ml, PullMode::kParallel);
  c = selector.ModeFor(ecr_ml);
  EXPECT_EQ(c.mode, PullMode::kParallel);
  EXPECT_EQ(c.source, ModeSource::kPodAnnotation);
  // Only that reference: another tag of the repository still follows the rules.
  EXPECT_EQ(selector.ModeFor("123.dkr.ecr.eu-west-1.amazonaws.com/ml/train:8").mode,
            PullMode::kLazy);

  selector.RecordPodChoice(ecr_ml, std::nullopt);
  EXPECT_EQ(selector.ModeFor(ecr_ml).source, ModeSource::kRule);
}

TEST(ModeSelectorTest, ChoicesAreKeyedByTheNormalizedReference) {
  ModeSelector selector(PullMode::kParallel, {});
  selector.RecordPodChoice("ubuntu", PullMode::kLazy);
  EXPECT_EQ(selector.ModeFor("docker.io/library/ubuntu:latest").mode, PullMode::kLazy);
  EXPECT_EQ(selector.ModeFor("index.docker.io/library/ubuntu").mode, PullMode::kLazy);
  EXPECT_EQ(selector.ModeFor("ubuntu:22.04").mode, PullMode::kParallel);
  const std::string digest = "sha256:" + std::string(64, 'a');
  selector.RecordPodChoice("ghcr.io/org/app@" + digest, PullMode::kContainerd);
  EXPECT_EQ(selector.ModeFor("ghcr.io/org/app@" + digest).mode, PullMode::kContainerd);
  // Unparsable references are ignored and get the default.
  selector.RecordPodChoice("Not A Reference", PullMode::kLazy);
  EXPECT_EQ(selector.ModeFor("Not A Reference").source, ModeSource::kDefault);
}

TEST(ModeSelectorTest, TheOldestChoiceIsDroppedPastTheBound) {
  ModeSelector selector(PullMode::kParallel, {}, /*max_choices=*/3);
  for (int i = 0; i < 4; ++i) selector.RecordPodChoice("img" + std::to_string(i), PullMode::kLazy);
  EXPECT_EQ(selector.ModeFor("img0").source, ModeSource::kDefault);
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(selector.ModeFor("img" + std::to_string(i)).mode, PullMode::kLazy) << i;
  }
  // Re-recording refreshes an entry: img1 is now the newest, img2 goes next.
  selector.RecordPodChoice("img1", PullMode::kContainerd);
  selector.RecordPodChoice("img4", PullMode::kLazy);
  EXPECT_EQ(selector.ModeFor("img1").mode, PullMode::kContainerd);
  EXPECT_EQ(selector.ModeFor("img2").source, ModeSource::kDefault);
}

// Records the Prepares it gets and answers kCommitted.
class RecordingProvider final : public RemoteLayerProvider {
 public:
  void Prepare(const RemotePrepareRequest& request, Done done) override {
    requests.push_back(request);
    std::move(done)(RemoteOutcome::kCommitted);
  }
  std::vector<RemotePrepareRequest> requests;
};

TEST(ModeRouterTest, RoutesEachImageByTheSelectorsChoice) {
  ModeSelector selector(PullMode::kContainerd, {{.repository = "ml/*", .mode = PullMode::kLazy}});
  selector.RecordPodChoice("registry.example/web/app:1", PullMode::kParallel);
  RecordingProvider parallel, lazy;
  ModeRouter router(&selector, {.parallel = &parallel, .lazy = &lazy});
  // The router times every Prepare a provider takes (registering the family again returns it).
  metrics::Family<metrics::Histogram>& timed = metrics::Global().AddHistogramFamily(
      "slipstream_prepare_seconds", "", {"mode", "outcome"}, {});
  const int64_t parallel_timed = timed.With({"parallel", "committed"}).Read().count;
  const int64_t lazy_timed = timed.With({"lazy", "committed"}).Read().count;
  auto prepare = [&](const std::string& image) {
    RemotePrepareRequest request;
    request.key = "k8s.io/1/extract " + image;
    request.labels[kSnapshotRefLabel] = "sha256:" + std::string(64, 'c');
    if (!image.empty()) request.labels[kCriImageRefLabel] = image;
    absl::StatusOr<RemoteOutcome> outcome = absl::UnknownError("not answered");
    router.Prepare(request, [&](absl::StatusOr<RemoteOutcome> r) { outcome = std::move(r); });
    EXPECT_TRUE(outcome.ok()) << image;
    return outcome.ok() ? *outcome : RemoteOutcome::kNotHandled;
  };
  EXPECT_EQ(prepare("registry.example/web/app:1"), RemoteOutcome::kCommitted);
  ASSERT_EQ(parallel.requests.size(), 1u);
  EXPECT_EQ(parallel.requests[0].labels.at(kModeLabel), "parallel");
  EXPECT_EQ(parallel.requests[0].labels.at(kCriImageRefLabel), "registry.example/web/app:1");

  EXPECT_EQ(prepare("registry.example/ml/train:1"), RemoteOutcome::kCommitted);
  ASSERT_EQ(lazy.requests.size(), 1u);
  // The lazy provider labels its own layers; a local fallback layer must not claim "lazy".
  EXPECT_EQ(lazy.requests[0].labels.count(kModeLabel), 0u);

  EXPECT_EQ(prepare("registry.example/other:1"), RemoteOutcome::kNotHandled);
  EXPECT_EQ(prepare(""), RemoteOutcome::kNotHandled);  // no cri.image-ref: the default
  EXPECT_EQ(parallel.requests.size(), 1u);
  EXPECT_EQ(lazy.requests.size(), 1u);
  EXPECT_EQ(timed.With({"parallel", "committed"}).Read().count - parallel_timed, 1);
  EXPECT_EQ(timed.With({"lazy", "committed"}).Read().count - lazy_timed, 1);

  // A chosen mode without a provider leaves the layer to containerd.
  ModeRouter bare(&selector, {});
  RemotePrepareRequest request;
  request.labels[kCriImageRefLabel] = "registry.example/ml/train:1";
  absl::StatusOr<RemoteOutcome> outcome = absl::UnknownError("not answered");
  bare.Prepare(request, [&](absl::StatusOr<RemoteOutcome> r) { outcome = std::move(r); });
  ASSERT_TRUE(outcome.ok());
  EXPECT_EQ(*outcome, RemoteOutcome::kNotHandled);
}

}  // namespace
}  // namespace slipstream::plugin
