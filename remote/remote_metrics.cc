// SPDX-License-Identifier: Apache-2.0
#include "remote/remote_metrics.h"

namespace slipstream::remote {

const RemoteMetrics& Metrics() {
  static const RemoteMetrics* m = [] {
    metrics::Registry& r = metrics::Global();
    return new RemoteMetrics{
        r.AddCounterFamily("slipstream_registry_requests_total",
                           "HTTP requests to registries by outcome (status class or error).",
                           {"outcome"}),
        r.AddCounter("slipstream_registry_bytes_total",
                     "Response body bytes received from registries."),
        r.AddHistogram("slipstream_registry_request_seconds",
                       "Duration of registry HTTP requests, to the last body byte.",
                       metrics::LatencyBuckets()),
        r.AddCounter("slipstream_chunk_cache_hits_total",
                     "Chunk cache lookups served from disk."),
        r.AddCounter("slipstream_chunk_cache_misses_total",
                     "Chunk fetches started for chunks missing from the cache."),
    };
  }();
  return *m;
}

}  // namespace slipstream::remote
