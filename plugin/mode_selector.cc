// SPDX-License-Identifier: Apache-2.0
#include "plugin/mode_selector.h"

#include <fnmatch.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "remote/reference.h"

namespace slipstream::plugin {

absl::StatusOr<PullMode> ParsePullMode(const std::string& text) {
  if (text == "parallel") return PullMode::kParallel;
  if (text == "lazy") return PullMode::kLazy;
  if (text == "containerd") return PullMode::kContainerd;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown pull mode \"", text, "\" (parallel, lazy or containerd)"));
}

absl::StatusOr<std::optional<PullMode>> PullModeFromAnnotation(const std::string* value) {
  if (value == nullptr) return std::nullopt;
  absl::StatusOr<PullMode> mode = ParsePullMode(*value);
  if (!mode.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("pod annotation ", kPullModeAnnotation, "=\"",
                                                   *value,
                                                   "\": allowed values are lazy, parallel, containerd"));
  }
  return *mode;
}

const char* PullModeName(PullMode mode) {
  switch (mode) {
    case PullMode::kParallel:
      return "parallel";
    case PullMode::kLazy:
      return "lazy";
    case PullMode::kContainerd:
      return "containerd";
  }
  return "unknown";
}

bool GlobMatches(const std::string& pattern, const std::string& text) {
  return pattern.empty() || ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

ModeSelector::ModeSelector(PullMode default_mode, std::vector<ModeRule> rules, size_t max_choices)
    : default_mode_(default_mode), rules_(std::move(rules)), max_choices_(max_choices) {}

void ModeSelector::RecordPodChoice(std::string_view image_ref, std::optional<PullMode> mode) {
  absl::StatusOr<remote::Reference> ref = remote::Reference::Parse(image_ref);
  if (!ref.ok()) return;
  std::string key = ref->String();
  absl::MutexLock lock(&mu_);
  if (!mode.has_value()) {
    choices_.erase(key);
    return;
  }
  choices_.insert_or_assign(std::move(key), Recorded{*mode, next_sequence_++});
  if (choices_.size() <= max_choices_) return;
  // A linear scan: the bound is small and recording happens once per pull.
  auto oldest = choices_.begin();
  for (auto it = choices_.begin(); it != choices_.end(); ++it) {
    if (it->second.sequence < oldest->second.sequence) oldest = it;
  }
  choices_.erase(oldest);
}

ModeSelector::Choice ModeSelector::ModeFor(std::string_view image_ref) const {
  absl::StatusOr<remote::Reference> ref = remote::Reference::Parse(image_ref);
  if (!ref.ok()) return {default_mode_, ModeSource::kDefault};
  {
    absl::MutexLock lock(&mu_);
    auto it = choices_.find(ref->String());
    if (it != choices_.end()) return {it->second.mode, ModeSource::kPodAnnotation};
  }
  for (const ModeRule& rule : rules_) {
    if (GlobMatches(rule.registry, ref->registry) && GlobMatches(rule.repository, ref->repository)) {
      return {rule.mode, ModeSource::kRule};
    }
  }
  return {default_mode_, ModeSource::kDefault};
}

}  // namespace slipstream::plugin
