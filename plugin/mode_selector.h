// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace slipstream::plugin {

// How a remote Prepare is served.
enum class PullMode {
  kParallel,    // the parallel pull engine (RemotePullProvider)
  kLazy,        // lazy FUSE layers (LazyPullProvider, which falls back to parallel)
  kContainerd,  // containerd fetches and applies the layer itself
};

// Parses "parallel", "lazy" or "containerd". InvalidArgument otherwise.
absl::StatusOr<PullMode> ParsePullMode(const std::string& text);

// The pod annotation through which a workload picks its pull mode (CRI PullImage's
// sandbox_config.annotations).
inline constexpr char kPullModeAnnotation[] = "slipstream.io/pull-mode";

// The pull mode a pod asked for through kPullModeAnnotation, given the annotation's value
// (null when the pod has no such annotation: nullopt). InvalidArgument naming the annotation,
// the value and the allowed values when it is not "parallel", "lazy" or "containerd".
absl::StatusOr<std::optional<PullMode>> PullModeFromAnnotation(const std::string* value);

// "parallel", "lazy" or "containerd".
const char* PullModeName(PullMode mode);

// One `[[mode_rules]]` entry of the daemon config: images whose registry and repository match
// the glob patterns (fnmatch(3) without FNM_PATHNAME: `*` also matches '/'; "" or "*" match
// everything) get `mode`.
struct ModeRule {
  std::string registry;    // e.g. "*.dkr.ecr.*.amazonaws.com", "docker.io"
  std::string repository;  // e.g. "ml/*", "library/ubuntu"
  PullMode mode = PullMode::kParallel;
};

// Where a chosen mode came from.
enum class ModeSource { kPodAnnotation, kRule, kDefault };

// Chooses the pull mode of an image. Precedence: the choice a pod recorded through the CRI
// proxy's PullImage (its annotation) > the first matching rule > the default mode.
//
// Pod choices are keyed by the normalized reference (remote::Reference::String(), e.g.
// "docker.io/library/ubuntu:22.04"), which is also how containerd spells the
// `containerd.io/snapshot/cri.image-ref` label of the pull's Prepares. A choice is needed only
// while its pull runs, so the table is bounded: past `max_choices` entries the oldest
// recorded choice is dropped. Concurrent pulls of one reference with different annotations:
// the last recorded choice wins. Owned by the daemon; thread-safe.
class ModeSelector {
 public:
  ModeSelector(PullMode default_mode, std::vector<ModeRule> rules, size_t max_choices = 4096);

  // Records that the pull of `image_ref` asked for `mode`; nullopt forgets an earlier choice
  // (a pod without the annotation gets the rules and the default again). A reference that
  // does not parse is ignored (nothing can match it later).
  void RecordPodChoice(std::string_view image_ref, std::optional<PullMode> mode);

  // The mode of `image_ref` (any spelling remote::Reference::Parse accepts) and where it came
  // from. A reference that does not parse gets the default mode.
  struct Choice {
    PullMode mode;
    ModeSource source;
  };
  Choice ModeFor(std::string_view image_ref) const;

  PullMode default_mode() const { return default_mode_; }
  const std::vector<ModeRule>& rules() const { return rules_; }

 private:
  struct Recorded {
    PullMode mode;
    uint64_t sequence;  // insertion order, to drop the oldest
  };

  const PullMode default_mode_;
  const std::vector<ModeRule> rules_;
  const size_t max_choices_;
  mutable absl::Mutex mu_;
  std::map<std::string, Recorded, std::less<>> choices_ ABSL_GUARDED_BY(mu_);
  uint64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 0;
};

// fnmatch(3)-style glob without FNM_PATHNAME; "" matches everything. Exposed for tests.
bool GlobMatches(const std::string& pattern, const std::string& text);

}  // namespace slipstream::plugin
