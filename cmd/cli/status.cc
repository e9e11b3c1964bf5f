// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/status.h"

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "slipstream/v1/status.grpc.pb.h"

namespace slipstream::cli {
namespace {

std::string Mib(int64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

}  // namespace

absl::Status Status(const std::string& address, bool json, std::ostream& out) {
  auto channel = grpc::CreateChannel("unix://" + address, grpc::InsecureChannelCredentials());
  auto stub = slipstream::v1::Status::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  slipstream::v1::GetStatusResponse r;
  grpc::Status st = stub->Get(&ctx, slipstream::v1::GetStatusRequest(), &r);
  if (!st.ok()) {
    return absl::UnavailableError(absl::StrCat("slipstreamd at ", address, ": ",
                                               st.error_message(), " (gRPC code ",
                                               static_cast<int>(st.error_code()), ")"));
  }
  if (json) {
    std::string text;
    google::protobuf::util::JsonPrintOptions options;
    options.add_whitespace = true;
    options.always_print_primitive_fields = true;
    if (!google::protobuf::util::MessageToJsonString(r, &text, options).ok()) {
      return absl::InternalError("status response does not convert to JSON");
    }
    out << text;
    return absl::OkStatus();
  }
  out << "slipstreamd " << address << ": mode " << r.default_mode() << ", "
      << r.parallel_pulls_started() << " parallel pulls started";
  if (!r.fuse_mount().empty()) out << ", FUSE at " << r.fuse_mount();
  if (!r.metrics_address().empty()) {
    out << ", metrics at http://" << r.metrics_address() << "/metrics";
  }
  out << "\n";
  for (const slipstream::v1::ParallelImage& i : r.parallel_images()) {
    const char* state = !i.resolved()                          ? "resolving"
                        : i.failed() > 0                        ? "failed"
                        : i.done() == i.pulled()                ? "done"
                                                                : "pulling";
    out << absl::StrFormat("image %s (%s): %s, %d/%d layers pulled, %d already present\n",
                           i.image_ref(), i.manifest().substr(0, 19), state, i.done(),
                           i.pulled(), i.layers() - i.pulled());
  }
  if (r.lazy_layers().empty()) {
    if (!r.fuse_mount().empty()) out << "no lazy layers\n";
    return absl::OkStatus();
  }
  out << absl::StrFormat("%-16s %-19s %14s %23s %6s %6s %4s  %4s  %s\n", "LAYER", "BLOB", "SPANS",
                         "FETCHED", "HITS", "ERRORS", "OPEN", "", "STATE");
  for (const slipstream::v1::LazyLayer& l : r.lazy_layers()) {
    const double pct =
        l.spans_total() > 0 ? 100.0 * static_cast<double>(l.spans_fetched()) / l.spans_total() : 0;
    out << absl::StrFormat("%-16s %-19s %7d/%-6d %10s / %10s %6d %6d %4d  %3.0f%%  %s\n",
                           l.name().substr(0, 16), l.blob().substr(0, 19), l.spans_fetched(),
                           l.spans_total(), Mib(l.compressed_bytes_fetched()),
                           Mib(l.compressed_bytes_total()), l.cache_hits(), l.read_errors(),
                           l.open_files(), pct,
                           l.state().empty() ? "-" : l.state());
    if (!l.local_dir().empty()) out << "  local: " << l.local_dir() << "\n";
    if (!l.error().empty()) out << "  error: " << l.error() << "\n";
  }
  return absl::OkStatus();
}

}  // namespace slipstream::cli
