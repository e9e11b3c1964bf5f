// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "cmd/cli/registry_flags.h"
#include "remote/platform.h"
#include "remote/registry_client.h"

namespace slipstream::cli {

// `slipstream index …` and `slipstream ztoc …`: build, publish and inspect SOCI indexes.
//   index create IMAGE [--span-size N] [--min-layer-size N]   build and print the zTOCs
//   index convert SRC DST [...]                                publish v2 under DST's tag
//   index push IMAGE [...]                                     publish v2 under IMAGE's tag
//   index push IMAGE --v1 [...]                                publish v1 (referrers tag)
//   index list IMAGE                                           the index found for IMAGE
//   index info DIGEST --image IMAGE                            print an index manifest
//   ztoc info DIGEST --image IMAGE [--json]                    print a zTOC (JSON: entries,
//                                                              span ranges and digests)
//   ztoc get-file IMAGE PATH [-o FILE]                         read a file through the zTOCs
// Every subcommand also takes the registry flags (--platform, --hosts-dir, --docker-config).
// Owns its flag values; not thread-safe.
class IndexCommand {
 public:
  // Adds the `index` and `ztoc` subcommands to `app`.
  void Register(CLI::App* app, RegistryFlags* registry_flags);
  // True when `index` or `ztoc` was the parsed subcommand.
  bool parsed() const;
  // Runs the parsed subcommand: results to `out`, progress and fetch statistics to `err`.
  // Errors of index::BuildSociIndex / DiscoverSociIndex / the registry; InvalidArgument for
  // bad arguments; NotFound for a path or zTOC digest that is not there.
  absl::Status Run(remote::RegistryClient& client, const remote::Platform& platform,
                   std::ostream& out, std::ostream& err);

 private:
  CLI::App* index_ = nullptr;
  CLI::App* ztoc_ = nullptr;
  CLI::App* create_ = nullptr;
  CLI::App* convert_ = nullptr;
  CLI::App* push_ = nullptr;
  CLI::App* list_ = nullptr;
  CLI::App* index_info_ = nullptr;
  CLI::App* ztoc_info_ = nullptr;
  CLI::App* get_file_ = nullptr;

  std::string image_;
  std::string destination_;
  std::string digest_;
  std::string path_;
  std::string output_;
  int64_t span_size_ = 4 << 20;
  int64_t min_layer_size_ = 10 << 20;
  bool v1_ = false;
  bool json_ = false;
};

}  // namespace slipstream::cli
