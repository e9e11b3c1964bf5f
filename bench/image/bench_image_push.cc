// SPDX-License-Identifier: Apache-2.0
// bench_image_push: builds an OCI image with one layer per directory (testkit::BuildImage)
// into a work dir, reusing layers built earlier under the same cache keys, and pushes it.
// scripts/bench-image.sh drives it to publish the large benchmark image.
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "remote/platform.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/compress.h"
#include "testkit/image_builder.h"

namespace slipstream::bench {
namespace {

struct Flags {
  std::vector<std::string> layers;
  std::vector<std::string> cache_keys;
  std::string compression = "gzip";
  int level = -1;
  int64_t gzip_members_every_mib = 0;
  std::string work_dir;
  std::string push;
  std::string platform;
  std::string hosts_dir;
  std::vector<std::string> cmd;
};

absl::Status Main(const Flags& flags) {
  if (!flags.cache_keys.empty() && flags.cache_keys.size() != flags.layers.size()) {
    return absl::InvalidArgumentError("give one --cache-key per --layer, or none");
  }
  SS_ASSIGN_OR_RETURN(remote::Compression compression, testkit::ParseCompression(flags.compression));
  testkit::ImageSpec spec;
  if (!flags.platform.empty()) {
    SS_ASSIGN_OR_RETURN(spec.platform, remote::Platform::Parse(flags.platform));
  }
  spec.cmd = flags.cmd;
  for (size_t i = 0; i < flags.layers.size(); ++i) {
    testkit::LayerSpec layer;
    layer.source_dir = flags.layers[i];
    layer.compression = compression;
    layer.level = flags.level;
    layer.gzip_members_every = flags.gzip_members_every_mib << 20;
    // Files owned by whoever unpacked the packages: the image says root, as real ones do.
    layer.tree.uid = 0;
    layer.tree.gid = 0;
    if (!flags.cache_keys.empty()) layer.cache_key = flags.cache_keys[i];
    spec.layers.push_back(std::move(layer));
  }
  SS_ASSIGN_OR_RETURN(testkit::BuiltImage image, testkit::BuildImage(spec, flags.work_dir));
  int64_t total = 0;
  for (const testkit::BuiltLayer& l : image.layers) {
    std::cout << "layer " << l.descriptor.digest.str() << " " << l.descriptor.size
              << " bytes (" << l.uncompressed_size << " uncompressed)\n";
    total += l.descriptor.size;
  }
  std::cout << "manifest " << image.manifest_digest.str() << " total " << total << " bytes\n";
  if (flags.push.empty()) return absl::OkStatus();

  SS_ASSIGN_OR_RETURN(remote::Reference ref, remote::Reference::Parse(flags.push));
  remote::RegistryClientOptions options;
  options.hosts_dir = flags.hosts_dir;
  SS_ASSIGN_OR_RETURN(auto client, remote::RegistryClient::Create(std::move(options)));
  SS_ASSIGN_OR_RETURN(Digest pushed, testkit::PushImage(*client, image, ref));
  std::cout << "pushed " << ref.String() << "@" << pushed.str() << "\n";
  return absl::OkStatus();
}

}  // namespace
}  // namespace slipstream::bench

int main(int argc, char** argv) {
  slipstream::bench::Flags f;
  CLI::App app{"bench_image_push: build an OCI image from directories and push it"};
  app.add_option("--layer", f.layers, "directory for one layer (repeat, base first)")->required();
  app.add_option("--cache-key", f.cache_keys, "reuse key per layer (repeat, same order)");
  app.add_option("--compression", f.compression, "gzip|zstd|none")->capture_default_str();
  app.add_option("--level", f.level, "compression level (-1 = default)")->capture_default_str();
  app.add_option("--gzip-members-every-mib", f.gzip_members_every_mib,
                 "start a new gzip member every N MiB (0 = one member)");
  app.add_option("--work-dir", f.work_dir, "OCI layout and layer cache directory")->required();
  app.add_option("--push", f.push, "push to this reference (e.g. 127.0.0.1:5000/bench/big:v1)");
  app.add_option("--platform", f.platform, "os/arch[/variant] (default: this host)");
  app.add_option("--hosts-dir", f.hosts_dir, "containerd certs.d directory (default: none)");
  app.add_option("--cmd", f.cmd, "image Cmd");
  CLI11_PARSE(app, argc, argv);
  absl::Status s = slipstream::bench::Main(f);
  if (!s.ok()) {
    std::cerr << "bench_image_push: " << s << "\n";
    return 1;
  }
  return 0;
}
