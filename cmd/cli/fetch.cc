// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/fetch.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cmd/cli/registry_flags.h"
#include "common/fd.h"
#include "common/status.h"
#include "remote/chunk_cache.h"

namespace slipstream::cli {

absl::Status Fetch(remote::RegistryClient& client, const std::string& image,
                   const remote::Platform& platform, const FetchOptions& options,
                   std::ostream& out, std::ostream& err) {
  if (options.output.empty()) return absl::InvalidArgumentError("fetch: -o FILE is required");
  SS_ASSIGN_OR_RETURN(remote::Reference ref, remote::Reference::Parse(image));
  SS_ASSIGN_OR_RETURN(auto resolved, client.ResolveImage(ref, platform));
  const auto& layers = resolved.manifest.layers;
  if (options.layer < 0 || static_cast<size_t>(options.layer) >= layers.size()) {
    return absl::OutOfRangeError(absl::StrCat("fetch ", ref.String(), ": layer ", options.layer,
                                              " does not exist (image has ", layers.size(),
                                              " layers)"));
  }
  const remote::Descriptor& blob = layers[options.layer];
  SS_ASSIGN_OR_RETURN(UniqueFd fd,
                      OpenFile(options.output, O_RDWR | O_CREAT | O_TRUNC, 0644));

  remote::ParallelFetchOptions popts;
  popts.chunk_size = options.chunk_size;
  popts.concurrency = options.concurrency;
  std::unique_ptr<remote::ChunkCache> cache;
  if (!options.cache_dir.empty()) {
    SS_ASSIGN_OR_RETURN(cache, remote::ChunkCache::Open({.dir = options.cache_dir,
                                                         .max_bytes = options.cache_max_bytes}));
    popts.cache = cache.get();
  }
  absl::Time start = absl::Now();
  if (options.progress) {
    // Redraw at most ~10 times a second; the callback runs on fetch threads.
    auto last = std::make_shared<std::atomic<int64_t>>(0);
    popts.progress = [&err, last, start, size = blob.size](int64_t done) {
      int64_t now_ms = absl::ToInt64Milliseconds(absl::Now() - start);
      if (done != size && now_ms - last->load() < 100) return;
      last->store(now_ms);
      err << absl::StrFormat("\r%s / %s  %5.1f%%", HumanBytes(done), HumanBytes(size),
                             size > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(size) : 100.0)
          << std::flush;
    };
  }
  absl::Status st = client.DownloadBlob(ref, blob, fd.get(), popts);
  if (options.progress) err << "\n";
  if (st.ok() && ::ftruncate(fd.get(), blob.size) != 0) {
    st = LastErrnoStatus(absl::StrCat("truncate ", options.output));
  }
  if (!st.ok()) {
    ::unlink(options.output.c_str());
    return st;
  }
  double secs = absl::ToDoubleSeconds(absl::Now() - start);
  out << absl::StrFormat("fetched %s (%s) to %s in %.2fs, %.1f MiB/s\n", blob.digest.str(),
                         HumanBytes(blob.size), options.output, secs,
                         secs > 0 ? static_cast<double>(blob.size) / secs / (1 << 20) : 0.0);
  if (cache != nullptr) {
    remote::ChunkCacheStats stats = cache->stats();
    out << absl::StrFormat("chunk cache %s: %d hits (%s), %d misses (%s)\n", options.cache_dir,
                           stats.hits, HumanBytes(stats.hit_bytes), stats.misses,
                           HumanBytes(stats.miss_bytes));
  }
  return absl::OkStatus();
}

}  // namespace slipstream::cli
