// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/image.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/temp_dir.h"
#include "remote/media_types.h"
#include "testkit/image_builder.h"

namespace slipstream::cli {
namespace {

absl::StatusOr<remote::Compression> ParseCompression(const std::string& name) {
  if (name == "gzip") return remote::Compression::kGzip;
  if (name == "zstd") return remote::Compression::kZstd;
  if (name == "none") return remote::Compression::kNone;
  return absl::InvalidArgumentError(
      absl::StrCat("--compression ", name, ": want gzip, zstd or none"));
}

}  // namespace

void ImageCommand::Register(CLI::App* app, RegistryFlags* registry_flags) {
  CLI::App* image = app->add_subcommand("image", "Build and push OCI images (test bench)");
  image->require_subcommand(1);
  build_ = image->add_subcommand("build", "Build an image from directories or tars and push it");
  build_->add_option("--dir", dirs_, "a directory to turn into a layer (repeatable, in order)");
  build_->add_option("--tar", tars_, "an uncompressed tar to use as a layer (after the --dir layers)");
  build_->add_option("--compression", compression_, "gzip, zstd or none")->capture_default_str();
  build_->add_option("--gzip-members-every-mib", gzip_members_every_mib_,
                     "start a new gzip member every N MiB of tar (multi-member layers)");
  build_->add_option("--cmd", cmd_, "the image's default command");
  build_->add_option("--work-dir", work_dir_,
                     "keep the OCI layout here (reused between runs); default: a temp dir");
  build_->add_option("--push", push_, "reference to push to")->required();
  registry_flags->AddTo(build_);
}

absl::Status ImageCommand::Run(remote::RegistryClient& client, const remote::Platform& platform,
                               std::ostream& out) {
  if (build_ == nullptr || !build_->parsed()) return absl::InvalidArgumentError("image: no subcommand");
  if (dirs_.empty() && tars_.empty()) {
    return absl::InvalidArgumentError("image build: give at least one --dir or --tar");
  }
  SS_ASSIGN_OR_RETURN(remote::Reference ref, remote::Reference::Parse(push_));
  SS_ASSIGN_OR_RETURN(remote::Compression compression, ParseCompression(compression_));

  testkit::ImageSpec spec;
  spec.platform = platform;
  spec.cmd = cmd_;
  auto add_layer = [&](testkit::LayerSpec layer) {
    layer.compression = compression;
    layer.gzip_members_every = int64_t{gzip_members_every_mib_} << 20;
    spec.layers.push_back(std::move(layer));
  };
  for (const std::string& dir : dirs_) add_layer({.source_dir = dir});
  for (const std::string& tar : tars_) add_layer({.source_tar = tar});

  std::optional<TempDir> temp;
  std::string work = work_dir_;
  if (work.empty()) {
    SS_ASSIGN_OR_RETURN(temp, TempDir::Create("slipstream-image-"));
    work = temp->path();
  }
  SS_ASSIGN_OR_RETURN(testkit::BuiltImage built, testkit::BuildImage(spec, work));
  SS_ASSIGN_OR_RETURN(Digest pushed, testkit::PushImage(client, built, ref));
  out << "pushed " << ref.Locator() << ":" << ref.tag << "@" << pushed.str() << " ("
      << built.layers.size() << " layers)\n";
  return absl::OkStatus();
}

}  // namespace slipstream::cli
