// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/pull.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "common/status.h"
#include "plugin/pull_image.h"
#include "remote/chunk_cache.h"

namespace slipstream::cli {
namespace {

constexpr int kBarWidth = 24;

std::string Bar(int64_t done, int64_t total) {
  const int filled = total <= 0 ? kBarWidth
                                : static_cast<int>(std::min<int64_t>(kBarWidth, done * kBarWidth / total));
  return absl::StrCat("[", std::string(static_cast<size_t>(filled), '#'),
                      std::string(static_cast<size_t>(kBarWidth - filled), '.'), "]");
}

std::string StateName(int state) {
  switch (static_cast<plugin::LayerState>(state)) {
    case plugin::LayerState::kQueued: return "queued";
    case plugin::LayerState::kUnpacking: return "unpacking";
    case plugin::LayerState::kDone: return "done";
    case plugin::LayerState::kFailed: return "failed";
  }
  return "?";
}

// Renders one line per layer; the bar shows the unpacked share, the text both sides.
std::string Render(const plugin::PullJob& job) {
  std::ostringstream s;
  for (size_t i = 0; i < job.layer_count(); ++i) {
    const plugin::LayerProgress& p = job.progress(i);
    const int64_t size = job.request(i).blob.size;
    const int64_t fetched = p.bytes_fetched.load(std::memory_order_relaxed);
    const int64_t unpacked = p.bytes_unpacked.load(std::memory_order_relaxed);
    s << absl::StrFormat("\x1b[2K%3d %s %s fetched %9s unpacked %9s / %9s",
                         static_cast<int>(i), job.request(i).blob.digest.Short(),
                         Bar(unpacked, size), HumanBytes(fetched), HumanBytes(unpacked),
                         HumanBytes(size));
    const int state = p.state.load(std::memory_order_relaxed);
    s << "  " << StateName(state);
    if (static_cast<plugin::LayerState>(state) != plugin::LayerState::kQueued) {
      s << absl::StrFormat(" -> %s, %d files",
                           HumanBytes(p.bytes_decompressed.load(std::memory_order_relaxed)),
                           p.files_written.load(std::memory_order_relaxed));
    }
    s << "\n";
  }
  return s.str();
}

// Redraws the bars on `err` until stopped; the lines are rewritten in place.
class ProgressDisplay {
 public:
  ProgressDisplay(plugin::PullJob& job, std::ostream& err) : job_(job), err_(err) {
    thread_ = std::thread([this] {
      bool first = true;
      do {
        Draw(first);
        first = false;
      } while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(200)));
      Draw(false);
    });
  }
  ~ProgressDisplay() {
    stop_.Notify();
    thread_.join();
  }

 private:
  void Draw(bool first) {
    if (!first) err_ << "\x1b[" << job_.layer_count() << "A";
    err_ << Render(job_) << std::flush;
  }

  plugin::PullJob& job_;
  std::ostream& err_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace

absl::Status Pull(remote::RegistryClient& client, const std::string& image,
                  const remote::Platform& platform, const PullCliOptions& options,
                  std::ostream& out, std::ostream& err) {
  if (options.dest.empty()) return absl::InvalidArgumentError("pull: --dest DIR is required");
  SS_ASSIGN_OR_RETURN(remote::Reference ref, remote::Reference::Parse(image));

  std::unique_ptr<remote::ChunkCache> cache;
  if (!options.cache_dir.empty()) {
    SS_ASSIGN_OR_RETURN(cache, remote::ChunkCache::Open({.dir = options.cache_dir}));
  }
  plugin::ImagePullOptions popts;
  popts.dest = options.dest;
  popts.cache = cache.get();
  popts.rootfs = options.rootfs;
  popts.use_soci_index = options.soci;
  popts.span_inflate_threads = options.inflate_threads;
  popts.pull.unpack.untar_thread = !options.one_thread_per_layer;
  popts.pull.unpack.hash_thread = !options.one_thread_per_layer;
  popts.pull.tuning = {.chunk_size = options.chunk_size,
                       .requests = options.concurrency,
                       .unpackers = options.unpackers};
  std::unique_ptr<ProgressDisplay> display;
  if (options.progress) {
    popts.on_started = [&](plugin::PullJob& job) {
      display = std::make_unique<ProgressDisplay>(job, err);
    };
    // The display reads the job, which PullImage destroys before it returns.
    popts.on_finished = [&](plugin::PullJob&) { display.reset(); };
  }
  absl::StatusOr<plugin::ImagePullResult> r = plugin::PullImage(client, ref, platform, popts);
  display.reset();
  SS_RETURN_IF_ERROR(r.status());
  const double secs = absl::ToDoubleSeconds(r->elapsed);
  out << absl::StrFormat(
      "pulled %s: %d layers, %s compressed, %s unpacked in %.2fs (%.1f MiB/s) into %s\n",
      r->ref.String(), static_cast<int>(r->layers.size()), HumanBytes(r->compressed_bytes),
      HumanBytes(r->uncompressed_bytes), secs,
      secs > 0 ? static_cast<double>(r->compressed_bytes) / secs / (1 << 20) : 0.0,
      options.dest);
  return absl::OkStatus();
}

void PullCommand::Register(CLI::App* app, RegistryFlags* registry_flags) {
  cmd_ = app->add_subcommand("pull", "Pull an image's layers in parallel into a directory");
  cmd_->add_option("IMAGE", image_, "image reference")->required();
  cmd_->add_option("--dest", options_.dest, "output directory")->required();
  cmd_->add_option("--chunk-size", options_.chunk_size, "bytes per Range request (0 = auto)");
  cmd_->add_option("--concurrency", options_.concurrency,
                   "Range requests in flight across the image (0 = auto)");
  cmd_->add_option("--unpackers", options_.unpackers, "layers unpacked at once (0 = cores)");
  cmd_->add_flag("--rootfs", options_.rootfs, "also merge the layers into DIR/rootfs");
  cmd_->add_option("--cache-dir", options_.cache_dir, "chunk cache directory (default: none)");
  cmd_->add_flag("--soci", options_.soci,
                 "use the image's SOCI index, when it has one, to inflate spans in parallel");
  cmd_->add_option("--inflate-threads", options_.inflate_threads,
                   "threads inflating spans of one indexed layer (0 = cores)");
  cmd_->add_flag("--one-thread-per-layer", options_.one_thread_per_layer,
                 "inflate and untar each layer on one thread (no separate untar thread)");
  registry_flags->AddTo(cmd_);
}

absl::Status PullCommand::Run(remote::RegistryClient& client, const remote::Platform& platform,
                              bool progress, std::ostream& out, std::ostream& err) {
  PullCliOptions options = options_;
  options.progress = progress;
  return Pull(client, image_, platform, options, out, err);
}

}  // namespace slipstream::cli
