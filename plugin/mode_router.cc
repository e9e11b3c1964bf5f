// SPDX-License-Identifier: Apache-2.0
#include "plugin/mode_router.h"

#include <utility>

#include "absl/time/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "plugin/lazy_pull_provider.h"
#include "plugin/remote_pull_provider.h"

namespace slipstream::plugin {
namespace {

const char* SourceName(ModeSource source) {
  switch (source) {
    case ModeSource::kPodAnnotation:
      return "pod annotation";
    case ModeSource::kRule:
      return "mode rule";
    case ModeSource::kDefault:
      return "default";
  }
  return "unknown";
}

// Times a Prepare that a provider took: what containerd waited for one layer, by mode. A
// kNotHandled answer (the layer left to containerd, e.g. fallback) is counted as such.
RemoteLayerProvider::Done Timed(PullMode mode, RemoteLayerProvider::Done done) {
  static metrics::Family<metrics::Histogram>& seconds = metrics::Global().AddHistogramFamily(
      "slipstream_prepare_seconds",
      "Time containerd waited on a remote Prepare (one layer), by the mode that served it.",
      {"mode", "outcome"}, metrics::LatencyBuckets());
  return [mode, start = absl::Now(), done = std::move(done)](
             absl::StatusOr<RemoteOutcome> outcome) mutable {
    const char* result = !outcome.ok()                               ? "error"
                         : *outcome == RemoteOutcome::kCommitted ? "committed"
                                                                 : "not_handled";
    seconds.With({PullModeName(mode), result}).ObserveDuration(absl::Now() - start);
    std::move(done)(std::move(outcome));
  };
}

}  // namespace

ModeSelector::Choice ModeRouter::Choose(const RemotePrepareRequest& request) const {
  auto image = request.labels.find(kCriImageRefLabel);
  if (image == request.labels.end()) return {selector_->default_mode(), ModeSource::kDefault};
  ModeSelector::Choice choice = selector_->ModeFor(image->second);
  log::Debug("pull mode chosen", {{"image", image->second},
                                  {"key", request.key},
                                  {"mode", PullModeName(choice.mode)},
                                  {"source", SourceName(choice.source)}});
  return choice;
}

PullMode ModeRouter::ModeFor(const RemotePrepareRequest& request) const {
  return Choose(request).mode;
}

void ModeRouter::Prepare(const RemotePrepareRequest& request, Done done) {
  ModeSelector::Choice choice = Choose(request);
  switch (choice.mode) {
    case PullMode::kParallel:
      if (providers_.parallel != nullptr) {
        // The label ends up on the committed snapshot: how an operator (and the tests) see
        // which mode served a layer.
        RemotePrepareRequest labelled = request;
        labelled.labels[kModeLabel] = "parallel";
        providers_.parallel->Prepare(labelled, Timed(choice.mode, std::move(done)));
        return;
      }
      break;
    case PullMode::kLazy:
      if (providers_.lazy != nullptr) {
        providers_.lazy->Prepare(request, Timed(choice.mode, std::move(done)));
        return;
      }
      break;
    case PullMode::kContainerd:
      break;
  }
  std::move(done)(RemoteOutcome::kNotHandled);
}

}  // namespace slipstream::plugin
