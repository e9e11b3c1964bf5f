// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon/metrics_endpoint.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "common/net.h"
#include "common/status.h"

namespace slipstream::daemon {
namespace {

// Background completion as Prometheus sees it: per-layer series would grow with every image
// ever pulled, so the layers are summed (per-layer detail is `slipstream status`).
void AddLazyProgress(const void* owner, const fuse::LayerFs* fs,
                     const plugin::LazyPullProvider* lazy) {
  metrics::Registry& r = metrics::Global();
  r.AddGaugeCallback(
      "slipstream_lazy_layers",
      "Lazy mode: lazy layers by state (remote, completing, local, local_fuse_in_use, stopped).",
      owner, [lazy] {
        // Every state always has a series, so a layer moving on is a 1 -> 0, never a gap.
        std::vector<std::pair<std::string, int64_t>> counts = {
            {"remote", 0}, {"completing", 0}, {"local", 0}, {"local_fuse_in_use", 0},
            {"stopped", 0}};
        for (const plugin::LazyLayerInfo& l : lazy->Layers()) {
          std::string state = l.state == "local, FUSE in use" ? "local_fuse_in_use" : l.state;
          for (auto& [name, n] : counts) {
            if (name == state) ++n;
          }
        }
        std::vector<metrics::Sample> samples;
        for (const auto& [name, n] : counts) {
          samples.push_back({{{"state", name}}, static_cast<double>(n)});
        }
        return samples;
      });
  r.AddGaugeCallback("slipstream_lazy_compressed_bytes",
                     "Lazy mode: compressed bytes of the lazy layers, fetched so far and in "
                     "total; fetched/total is the background completion progress.",
                     owner, [fs] {
                       int64_t fetched = 0;
                       int64_t total = 0;
                       for (const fuse::LayerStatus& s : fs->AllStatus()) {
                         fetched += s.progress.compressed_bytes_fetched;
                         total += s.progress.compressed_bytes_total;
                       }
                       return std::vector<metrics::Sample>{
                           {{{"kind", "fetched"}}, static_cast<double>(fetched)},
                           {{{"kind", "total"}}, static_cast<double>(total)}};
                     });
}

HttpServerResponse Answer(const HttpServerRequest& request) {
  if (request.path != "/metrics") return HttpServerResponse::Text(404, "not found: try /metrics\n");
  if (request.method != "GET" && request.method != "HEAD") {
    HttpServerResponse r = HttpServerResponse::Text(405, "only GET\n");
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  return HttpServerResponse::Text(200, metrics::Global().RenderText(), metrics::kTextContentType);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(
    const std::string& address, const fuse::LayerFs* layer_fs,
    const plugin::LazyPullProvider* lazy) {
  std::string ip;
  int port = 0;
  absl::Status parsed = SplitHostPort(address, &ip, &port);
  if (!parsed.ok()) return Annotate(parsed, "metrics address");
  HttpServerOptions options;
  options.bind_ip = ip;
  options.max_connections = 4;  // scrapers, not clients: a few at most
  options.max_request_body = 4096;
  std::unique_ptr<MetricsEndpoint> endpoint(new MetricsEndpoint());
  absl::StatusOr<std::unique_ptr<HttpServer>> server = HttpServer::Start(&Answer, options, port);
  if (!server.ok()) {
    return Annotate(server.status(), absl::StrCat("metrics endpoint on ", address));
  }
  endpoint->server_ = *std::move(server);
  if (layer_fs != nullptr && lazy != nullptr) AddLazyProgress(endpoint.get(), layer_fs, lazy);
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() {
  if (server_ != nullptr) server_->Stop();  // no scrape runs a callback after this
  metrics::Global().RemoveCallbacks(this);
}

}  // namespace slipstream::daemon
