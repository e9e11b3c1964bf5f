// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http_server.h"
#include "fuse/layer_fs.h"
#include "plugin/lazy_pull_provider.h"

namespace slipstream::daemon {

// slipstreamd's Prometheus endpoint: `GET /metrics` answers metrics::Global() in the text
// exposition format (everything the registry client, chunk cache, parallel engine and FUSE
// adapter record), plus lazy mode's background completion read at scrape time: lazy layers
// by state (from `lazy`) and the compressed bytes of those still in the FUSE mount fetched
// out of their total (from `layer_fs`). Other paths are 404, other methods 405. Owned by the
// daemon; `layer_fs` and `lazy` (both null when lazy mode is off) must outlive it.
// Thread-safe (one HTTP thread per scraper connection).
class MetricsEndpoint {
 public:
  // Listens on `address`, "IPv4:PORT" (port 0: any free port). InvalidArgument for a
  // malformed address, Unavailable when the port is taken.
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(
      const std::string& address, const fuse::LayerFs* layer_fs,
      const plugin::LazyPullProvider* lazy);
  ~MetricsEndpoint();
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // "IPv4:PORT" as bound (the real port when 0 was asked for).
  std::string address() const { return server_->host(); }

 private:
  MetricsEndpoint() = default;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace slipstream::daemon
