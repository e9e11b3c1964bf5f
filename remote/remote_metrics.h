// SPDX-License-Identifier: Apache-2.0
#pragma once

#include "common/metrics.h"

namespace slipstream::remote {

// The registry client's and chunk cache's metrics, registered in metrics::Global() on first
// use. Shared by both pull modes, so the figures cover every fetch of the process.
struct RemoteMetrics {
  // HTTP requests to registries by outcome: "2xx", "3xx", "4xx", "5xx", or "error" when no
  // response arrived (connection refused, timeout, abort).
  metrics::Family<metrics::Counter>& requests;
  // Response body bytes received from registries (blobs, manifests, tokens).
  metrics::Counter& bytes_fetched;
  // How long each request took, from start to the last body byte.
  metrics::Histogram& request_seconds;
  // Chunk cache lookups answered from disk, and fetches started for missing chunks (one per
  // single-flight group: readers joining a fetch in progress count in neither).
  metrics::Counter& cache_hits;
  metrics::Counter& cache_misses;
};

// The process's RemoteMetrics. Thread-safe.
const RemoteMetrics& Metrics();

}  // namespace slipstream::remote
