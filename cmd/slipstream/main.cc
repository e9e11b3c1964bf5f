// SPDX-License-Identifier: Apache-2.0
// The `slipstream` CLI: wires subcommands to library functions; no logic lives here.
#include <unistd.h>

#include <iostream>

#include "CLI/CLI.hpp"
#include "cmd/cli/containerd_config.h"
#include "cmd/cli/cri_cmd.h"
#include "cmd/cli/doctor.h"
#include "cmd/cli/fetch.h"
#include "cmd/cli/image.h"
#include "cmd/cli/index_cmd.h"
#include "cmd/cli/inspect.h"
#include "cmd/cli/pull.h"
#include "cmd/cli/registry_flags.h"
#include "cmd/cli/registry_serve.h"
#include "cmd/cli/status.h"
#include "common/log.h"

namespace {

int Report(const absl::Status& st) {
  if (st.ok()) return 0;
  std::cerr << "slipstream: " << st.message() << " [" << absl::StatusCodeToString(st.code())
            << "]\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace slipstream;
  CLI::App app{"slipstream: fast container image pulls for containerd"};
  app.require_subcommand(1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "debug|info|warn|error")->capture_default_str();

  cli::RegistryFlags reg;
  std::string image;

  CLI::App* inspect = app.add_subcommand("inspect", "Print an image's manifest, config and layers");
  bool json = false;
  inspect->add_option("IMAGE", image, "image reference")->required();
  inspect->add_flag("--json", json, "print JSON instead of a table");
  reg.AddTo(inspect);

  CLI::App* fetch = app.add_subcommand("fetch", "Download one layer blob with parallel ranges");
  cli::FetchOptions fopts;
  fetch->add_option("IMAGE", image, "image reference")->required();
  fetch->add_option("--layer", fopts.layer, "layer index (0 = base)")->capture_default_str();
  fetch->add_option("-o,--output", fopts.output, "output file")->required();
  fetch->add_option("--chunk-size", fopts.chunk_size, "bytes per Range request (0 = auto)");
  fetch->add_option("--concurrency", fopts.concurrency, "Range requests in flight (0 = auto)");
  fetch->add_option("--cache-dir", fopts.cache_dir,
                    "chunk cache directory shared by fetches (default: no cache)");
  reg.AddTo(fetch);

  CLI::App* registry = app.add_subcommand("registry", "A throwaway local registry for demos");
  registry->require_subcommand(1);
  CLI::App* serve = registry->add_subcommand("serve", "Run docker-registry on 127.0.0.1 until SIGTERM");
  std::string ready_file;
  serve->add_option("--ready-file", ready_file, "write HOST:PORT here once it answers");

  cli::ImageCommand image_cmd;
  image_cmd.Register(&app, &reg);

  cli::PullCommand pull_cmd;
  pull_cmd.Register(&app, &reg);

  cli::IndexCommand index_cmd;
  index_cmd.Register(&app, &reg);

  cli::CriCommand cri_cmd;
  cri_cmd.Register(&app);

  CLI::App* doctor = app.add_subcommand("doctor", "Check this node's kernel, containerd and slipstreamd setup");
  cli::DoctorOptions dopts;
  bool doctor_json = false;
  doctor->add_option("--containerd-config", dopts.containerd_config, "containerd's config file")
      ->capture_default_str();
  doctor->add_option("--containerd-bin", dopts.containerd_bin, "containerd binary")
      ->capture_default_str();
  doctor->add_option("--address", dopts.address, "slipstreamd's socket")->capture_default_str();
  doctor->add_option("--root", dopts.root, "slipstreamd's root directory")->capture_default_str();
  doctor->add_option("--plugin-name", dopts.plugin_name, "the proxy plugin's name in containerd")
      ->capture_default_str();
  doctor->add_flag("--json", doctor_json, "print JSON instead of lines");

  CLI::App* status = app.add_subcommand("status", "Show slipstreamd's mode and lazy layers' progress");
  std::string status_address = "/run/slipstream/slipstream.sock";
  bool status_json = false;
  status->add_option("--address", status_address, "slipstreamd's socket")->capture_default_str();
  status->add_flag("--json", status_json, "print JSON instead of a table");

  CLI::App* ctd_config = app.add_subcommand("containerd-config", "Edit containerd's config");
  CLI::App* enable = ctd_config->add_subcommand(
      "enable", "Make a containerd config use slipstream (proxy plugin, CRI snapshotter, "
                "annotations; 2.x: transfer service), keeping the rest");
  ctd_config->require_subcommand(1);
  std::string enable_in = "/etc/containerd/config.toml";
  std::string enable_out;
  cli::EnableOptions eopts;
  enable->add_option("--in", enable_in, "the config to read")->capture_default_str();
  enable->add_option("--out", enable_out, "where to write it (default: --in, backed up once)");
  enable->add_option("--address", eopts.address, "slipstreamd's socket")->capture_default_str();
  enable->add_option("--platform", eopts.platform, "2.x unpack_config platform")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  log::Level level;
  if (!log::ParseLevel(log_level, &level)) {
    std::cerr << "slipstream: unknown --log-level " << log_level << "\n";
    return 2;
  }
  log::SetLevel(level);

  if (cri_cmd.parsed()) {
    absl::StatusOr<int> exit_code = cri_cmd.Run(std::cout, std::cerr);
    return exit_code.ok() ? *exit_code : Report(exit_code.status());
  }
  if (serve->parsed()) return Report(cli::ServeRegistry(ready_file, std::cout));
  if (status->parsed()) return Report(cli::Status(status_address, status_json, std::cout));
  if (doctor->parsed()) return Report(cli::Doctor(dopts, doctor_json, std::cout));
  if (enable->parsed()) {
    return Report(cli::EnableSlipstreamInFile(enable_in, enable_out, eopts, std::cout));
  }

  auto platform = reg.WantedPlatform();
  if (!platform.ok()) return Report(platform.status());
  auto client = reg.MakeClient();
  if (!client.ok()) return Report(client.status());

  if (inspect->parsed()) return Report(cli::Inspect(**client, image, *platform, json, std::cout));
  if (fetch->parsed()) {
    fopts.progress = ::isatty(STDERR_FILENO) != 0;
    return Report(cli::Fetch(**client, image, *platform, fopts, std::cout, std::cerr));
  }
  if (pull_cmd.parsed()) {
    return Report(pull_cmd.Run(**client, *platform, ::isatty(STDERR_FILENO) != 0, std::cout,
                               std::cerr));
  }
  if (index_cmd.parsed()) return Report(index_cmd.Run(**client, *platform, std::cout, std::cerr));
  return Report(image_cmd.Run(**client, *platform, std::cout));
}
