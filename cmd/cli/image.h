// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "cmd/cli/registry_flags.h"
#include "remote/registry_client.h"

namespace slipstream::cli {

// `slipstream image build`: turns directories or tar files into an OCI image (one layer
// each, gzip / zstd / uncompressed) and pushes it with slipstream's own push code. Used by
// the demo, the test bench and the benchmarks. Owns its flag values; not thread-safe.
class ImageCommand {
 public:
  // Adds the `image` subcommand (and `image build`) to `app`.
  void Register(CLI::App* app, RegistryFlags* registry_flags);
  // Runs the parsed subcommand. Precondition: Register() was called and `image` parsed.
  absl::Status Run(remote::RegistryClient& client, const remote::Platform& platform,
                   std::ostream& out);

 private:
  CLI::App* build_ = nullptr;
  std::vector<std::string> dirs_;
  std::vector<std::string> tars_;
  std::string compression_ = "gzip";
  std::string push_;
  std::string work_dir_;
  std::vector<std::string> cmd_;
  int gzip_members_every_mib_ = 0;
};

}  // namespace slipstream::cli
