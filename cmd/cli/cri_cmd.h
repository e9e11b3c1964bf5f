// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cri/client.h"
#include "cri/run_once.h"

namespace slipstream::cli {

// `slipstream cri pull IMAGE`: PullImage through the image endpoint, with `annotations` as
// the pod annotations of the request's sandbox_config and `auth` ("user:pass", empty = none).
// Prints "Pulled IMAGE as <image_ref> in <seconds> s" to `out`. InvalidArgument for an auth
// without ':'; otherwise the RPC's error.
absl::Status CriPull(cri::CriClient& client, const std::string& image,
                     const std::map<std::string, std::string>& annotations, const std::string& auth,
                     std::ostream& out);

// `slipstream cri images`: one row per name (tag, else digest) with image ID and size.
absl::Status CriImages(cri::CriClient& client, std::ostream& out);

// `slipstream cri rmi IMAGE`: NotFound when the runtime does not have the image; otherwise
// removes it and prints "Deleted: IMAGE".
absl::Status CriRemoveImage(cri::CriClient& client, const std::string& image, std::ostream& out);

// `slipstream cri run IMAGE -- CMD...`: cri::RunOnce, then the container's stdout to `out`
// and stderr to `err`; with `output_time`, then a line "first output: <Unix time in ns>" to
// `err`, when the runtime logged the command's first output (for benchmarks: it excludes
// the polling for the exit and the pod's teardown). Returns the container's exit code (the
// process's exit status), or RunOnce's error.
absl::StatusOr<int> CriRun(cri::CriClient& client, const std::string& image,
                           const std::vector<std::string>& argv, const cri::RunOptions& options,
                           std::ostream& out, std::ostream& err, bool output_time = false);

// Wires `slipstream cri pull|images|rmi|run` into the CLI. Every subcommand takes
// --endpoint (runtime socket) and --image-endpoint (default: --endpoint). Owns its flag
// values; not thread-safe.
class CriCommand {
 public:
  // Adds the `cri` subcommand tree to `app`.
  void Register(CLI::App* app);
  // True when `cri` was the parsed subcommand.
  bool parsed() const { return cri_ != nullptr && cri_->parsed(); }
  // Runs the parsed subcommand; returns the process exit status (0, or the container's exit
  // code for `run`). InvalidArgument for malformed --annotation/--auth/--env values or
  // endpoints; otherwise the errors of the functions above.
  absl::StatusOr<int> Run(std::ostream& out, std::ostream& err);

 private:
  void AddEndpointFlags(CLI::App* cmd);

  CLI::App* cri_ = nullptr;
  CLI::App* pull_ = nullptr;
  CLI::App* images_ = nullptr;
  CLI::App* rmi_ = nullptr;
  CLI::App* run_ = nullptr;

  cri::CriClientOptions client_options_;
  std::string image_;
  std::vector<std::string> annotations_;  // "k=v"
  std::string auth_;                      // "user:pass"
  std::vector<std::string> env_;          // "K=V"
  std::vector<std::string> command_;
  double exit_timeout_seconds_ = 300;
  bool output_time_ = false;
};

}  // namespace slipstream::cli
