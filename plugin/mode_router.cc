// SPDX-License-Identifier: Apache-2.0
#include "plugin/mode_router.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace slipstream::plugin {

absl::StatusOr<PullMode> ParsePullMode(const std::string& text) {
  if (text == "parallel") return PullMode::kParallel;
  if (text == "lazy") return PullMode::kLazy;
  if (text == "containerd") return PullMode::kContainerd;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown pull mode \"", text, "\" (parallel, lazy or containerd)"));
}

PullMode ModeRouter::ModeFor(const RemotePrepareRequest&) const { return default_mode_; }

void ModeRouter::Prepare(const RemotePrepareRequest& request, Done done) {
  RemoteLayerProvider* provider = nullptr;
  switch (ModeFor(request)) {
    case PullMode::kParallel:
      provider = providers_.parallel;
      break;
    case PullMode::kLazy:
      provider = providers_.lazy;
      break;
    case PullMode::kContainerd:
      break;
  }
  if (provider == nullptr) {
    std::move(done)(RemoteOutcome::kNotHandled);
    return;
  }
  provider->Prepare(request, std::move(done));
}

}  // namespace slipstream::plugin
