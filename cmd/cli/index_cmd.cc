// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/index_cmd.h"

#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/fd.h"
#include "common/status.h"
#include "index/soci_index.h"
#include "index/ztoc_reader.h"
#include "nlohmann/json.hpp"

namespace slipstream::cli {
namespace {

void AddBuildFlags(CLI::App* cmd, int64_t* span_size, int64_t* min_layer_size) {
  cmd->add_option("--span-size", *span_size, "uncompressed bytes between checkpoints")
      ->capture_default_str();
  cmd->add_option("--min-layer-size", *min_layer_size,
                  "layers with fewer compressed bytes get no zTOC")
      ->capture_default_str();
}

void PrintZtocs(const index::SociIndex& built, std::ostream& out) {
  out << "Image:    " << built.image.ref.String() << " (manifest "
      << built.image.manifest_digest.Short() << ")\n";
  out << "Index:    " << built.manifest_digest.str() << " ("
      << (built.version == index::SociVersion::kV2 ? "v2" : "v1") << ")\n";
  out << "zTOCs:    " << built.ztocs.size() << " of " << built.image.manifest.layers.size()
      << " layers\n";
  out << absl::StrFormat("  %-19s %-19s %10s %7s %8s\n", "LAYER", "ZTOC", "ZTOC SIZE", "SPANS",
                         "ENTRIES");
  for (const index::BuiltZtoc& z : built.ztocs) {
    out << absl::StrFormat("  %-19s %-19s %10s %7d %8d\n", z.layer.digest.Short(),
                           z.descriptor.digest.Short(), HumanBytes(z.descriptor.size), z.spans,
                           z.entries);
  }
}

void PrintDiscovered(const index::DiscoveredIndex& found, std::ostream& out) {
  out << "Image:    " << found.image.ref.String() << " (manifest "
      << found.image.manifest_digest.Short() << ")\n";
  out << "Index:    " << found.digest.str() << " ("
      << (found.version == index::SociVersion::kV2 ? "v2" : "v1") << ", found by "
      << found.source << ")\n";
  out << absl::StrFormat("  %-19s %-71s %10s\n", "LAYER", "ZTOC", "SIZE");
  for (const remote::Descriptor& d : found.Ztocs()) {
    auto it = d.annotations.find(std::string(index::kAnnotationLayerDigest));
    std::string layer = it == d.annotations.end() ? "?" : it->second.substr(0, 19);
    out << absl::StrFormat("  %-19s %-71s %10s\n", layer, d.digest.str(), HumanBytes(d.size));
  }
}

nlohmann::json ZtocJson(const index::Ztoc& z) {
  nlohmann::json entries = nlohmann::json::array();
  for (const index::FileMetadata& e : z.entries) {
    nlohmann::json j = {{"name", e.name},
                        {"type", e.type},
                        {"uncompressed_offset", e.uncompressed_offset},
                        {"uncompressed_size", e.uncompressed_size},
                        {"mode", e.mode},
                        {"uid", e.uid},
                        {"gid", e.gid},
                        {"mod_time", e.mod_time}};
    if (!e.linkname.empty()) j["linkname"] = e.linkname;
    entries.push_back(std::move(j));
  }
  nlohmann::json digests = nlohmann::json::array();
  for (const Digest& d : z.span_digests) digests.push_back(d.str());
  nlohmann::json spans = nlohmann::json::array();
  for (int64_t i = 0; i < z.SpanCount(); ++i) {
    spans.push_back({{"compressed_start", z.SpanCompressedStart(i)},
                     {"compressed_end", z.SpanCompressedEnd(i)},
                     {"uncompressed_start", z.SpanUncompressedStart(i)},
                     {"uncompressed_end", z.SpanUncompressedEnd(i)}});
  }
  return {{"version", z.version},
          {"build_tool_identifier", z.build_tool_identifier},
          {"compressed_archive_size", z.compressed_archive_size},
          {"uncompressed_archive_size", z.uncompressed_archive_size},
          {"compression_algorithm",
           z.compression == index::CompressionAlgorithm::kGzip ? "gzip" : "uncompressed"},
          {"span_size", z.span_size},
          {"max_span_id", z.SpanCount() - 1},
          {"span_digests", std::move(digests)},
          {"spans", std::move(spans)},
          {"files", std::move(entries)}};
}

void PrintZtoc(const index::Ztoc& z, std::ostream& out) {
  out << "Version:        " << z.version << "\n";
  out << "Build tool:     " << z.build_tool_identifier << "\n";
  out << "Compression:    "
      << (z.compression == index::CompressionAlgorithm::kGzip ? "gzip" : "uncompressed") << "\n";
  out << "Size:           " << HumanBytes(z.compressed_archive_size) << " compressed, "
      << HumanBytes(z.uncompressed_archive_size) << " uncompressed\n";
  out << "Spans:          " << z.SpanCount() << " (span size " << HumanBytes(z.span_size)
      << ")\n";
  out << "Files:          " << z.entries.size() << "\n";
  out << absl::StrFormat("  %-8s %12s %12s  %s\n", "TYPE", "OFFSET", "SIZE", "NAME");
  for (const index::FileMetadata& e : z.entries) {
    out << absl::StrFormat("  %-8s %12d %12d  %s\n", e.type, e.uncompressed_offset,
                           e.uncompressed_size, e.name);
  }
}

void PrintConverted(const remote::Reference& dst, const index::ConvertedImage& done,
                    std::ostream& out) {
  out << "pushed " << dst.String() << "@" << done.image_index_digest.str()
      << "\n  image manifest " << done.image_manifest_digest.str() << "\n  SOCI index     "
      << done.index_manifest_digest.str() << "\n";
}

// The descriptor of zTOC `digest` in the index found for `image`.
absl::StatusOr<remote::Descriptor> FindZtoc(const index::DiscoveredIndex& found,
                                            const Digest& digest) {
  for (const remote::Descriptor& d : found.Ztocs()) {
    if (d.digest == digest) return d;
  }
  return absl::NotFoundError(
      absl::StrCat("zTOC ", digest.str(), " is not in SOCI index ", found.digest.str()));
}

// Reads `path` from the top-most layer holding it, through that layer's zTOC.
absl::Status GetFile(remote::RegistryClient& client, const index::DiscoveredIndex& found,
                     const std::string& path, const std::string& output, std::ostream& out,
                     std::ostream& err) {
  const remote::Manifest& image = found.image.manifest;
  const remote::Reference& repo = found.image.ref;
  for (auto layer = image.layers.rbegin(); layer != image.layers.rend(); ++layer) {
    const remote::Descriptor* zd = found.ZtocFor(layer->digest);
    if (zd == nullptr) continue;
    SS_ASSIGN_OR_RETURN(index::Ztoc ztoc, index::FetchZtoc(client, repo, *zd));
    std::unique_ptr<remote::BlobReader> blob = client.OpenBlob(repo, *layer);
    index::ZtocReader reader(std::make_shared<const index::Ztoc>(std::move(ztoc)), *blob);
    const index::FileMetadata* entry = reader.Find(path);
    if (entry == nullptr) continue;
    index::ReadStats stats;
    SS_ASSIGN_OR_RETURN(std::string data,
                        reader.ReadFile(*entry, 0, entry->uncompressed_size, &stats));
    if (output.empty()) {
      out << data;
    } else {
      SS_RETURN_IF_ERROR(WriteFileAtomic(output, data));
    }
    err << "read " << path << " (" << HumanBytes(static_cast<int64_t>(data.size()))
        << ") from layer " << layer->digest.Short() << ": fetched "
        << stats.compressed_bytes_fetched << " bytes ("
        << HumanBytes(stats.compressed_bytes_fetched) << ") of " << HumanBytes(layer->size)
        << " in " << stats.fetches << " requests, " << stats.spans_decoded
        << " spans decoded\n";
    return absl::OkStatus();
  }
  return absl::NotFoundError(absl::StrCat(
      path, " is in no layer indexed by SOCI index ", found.digest.str(),
      " (layers without a zTOC are not searched)"));
}

}  // namespace

void IndexCommand::Register(CLI::App* app, RegistryFlags* registry_flags) {
  index_ = app->add_subcommand("index", "Build, publish and inspect SOCI indexes");
  index_->require_subcommand(1);
  create_ = index_->add_subcommand("create", "Build the zTOCs of an image and print them");
  create_->add_option("IMAGE", image_, "image reference")->required();
  AddBuildFlags(create_, &span_size_, &min_layer_size_);
  convert_ = index_->add_subcommand(
      "convert", "Build a v2 SOCI index and push the image with it under DST");
  convert_->add_option("SRC", image_, "source image reference")->required();
  convert_->add_option("DST", destination_, "destination reference (with a tag)")->required();
  AddBuildFlags(convert_, &span_size_, &min_layer_size_);
  push_ = index_->add_subcommand(
      "push", "Build a SOCI index and publish it for IMAGE: v2 under IMAGE's own tag, or v1 "
              "as a referrer of its manifest");
  push_->add_option("IMAGE", image_, "image reference (with a tag for v2)")->required();
  push_->add_flag("--v1", v1_, "publish a v1 index (referrers tag) instead of converting to v2");
  AddBuildFlags(push_, &span_size_, &min_layer_size_);
  list_ = index_->add_subcommand("list", "Show the SOCI index found for an image");
  list_->add_option("IMAGE", image_, "image reference")->required();
  index_info_ = index_->add_subcommand("info", "Print a SOCI index manifest");
  index_info_->add_option("DIGEST", digest_, "index manifest digest")->required();
  index_info_->add_option("--image", image_, "image reference")->required();

  ztoc_ = app->add_subcommand("ztoc", "Inspect zTOCs and read files through them");
  ztoc_->require_subcommand(1);
  ztoc_info_ = ztoc_->add_subcommand("info", "Print a zTOC of an image's SOCI index");
  ztoc_info_->add_option("DIGEST", digest_, "zTOC digest")->required();
  ztoc_info_->add_option("--image", image_, "image reference")->required();
  ztoc_info_->add_flag("--json", json_, "print JSON");
  get_file_ = ztoc_->add_subcommand(
      "get-file", "Read one file through the zTOCs, without pulling the layer");
  get_file_->add_option("IMAGE", image_, "image reference")->required();
  get_file_->add_option("PATH", path_, "file path in the image")->required();
  get_file_->add_option("-o,--output", output_, "write the file here instead of stdout");

  for (CLI::App* cmd : {create_, convert_, push_, list_, index_info_, ztoc_info_, get_file_}) {
    registry_flags->AddTo(cmd);
  }
}

bool IndexCommand::parsed() const {
  return (index_ != nullptr && index_->parsed()) || (ztoc_ != nullptr && ztoc_->parsed());
}

absl::Status IndexCommand::Run(remote::RegistryClient& client, const remote::Platform& platform,
                               std::ostream& out, std::ostream& err) {
  SS_ASSIGN_OR_RETURN(remote::Reference image, remote::Reference::Parse(image_));
  index::SociIndexOptions options;
  options.span_size = span_size_;
  options.min_layer_size = min_layer_size_;
  options.platform = platform;
  if (::isatty(STDERR_FILENO) != 0) {
    // One bar per layer, redrawn in place whenever its percentage moves; a newline once the
    // layer has streamed through completely.
    auto last = std::make_shared<std::pair<std::string, int>>();
    options.on_progress = [&err, last](const remote::Descriptor& layer, int64_t read) {
      const int pct = layer.size > 0 ? static_cast<int>(100 * read / layer.size) : 100;
      if (last->first == layer.digest.str() && last->second == pct) return;
      *last = {layer.digest.str(), pct};
      const int filled = pct * 30 / 100;
      err << absl::StrFormat("\r\x1b[2Kindexing %s [%s%s] %3d%% of %.1f MiB",
                             layer.digest.Short(), std::string(filled, '#'),
                             std::string(30 - filled, '.'), pct, layer.size / 1048576.0);
      if (read >= layer.size) err << "\n";
      err << std::flush;
    };
  }

  if (create_->parsed()) {
    SS_ASSIGN_OR_RETURN(index::SociIndex built, index::BuildSociIndex(client, image, options));
    PrintZtocs(built, out);
    return absl::OkStatus();
  }
  if (convert_->parsed()) {
    SS_ASSIGN_OR_RETURN(remote::Reference dst, remote::Reference::Parse(destination_));
    SS_ASSIGN_OR_RETURN(index::SociIndex built, index::BuildSociIndex(client, image, options));
    PrintZtocs(built, err);
    SS_ASSIGN_OR_RETURN(index::ConvertedImage done, index::PushSociIndexV2(client, built, dst));
    PrintConverted(dst, done, out);
    return absl::OkStatus();
  }
  if (push_->parsed() && !v1_) {
    // v2 in place: the image's tag moves to a new image index listing the SOCI index.
    if (image.tag.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "index push ", image.String(),
          ": a v2 index is published under the image's tag; give one, use --v1, or use "
          "`index convert SRC DST`"));
    }
    SS_ASSIGN_OR_RETURN(index::SociIndex built, index::BuildSociIndex(client, image, options));
    PrintZtocs(built, err);
    SS_ASSIGN_OR_RETURN(index::ConvertedImage done, index::PushSociIndexV2(client, built, image));
    PrintConverted(image, done, out);
    return absl::OkStatus();
  }
  if (push_->parsed()) {
    options.version = index::SociVersion::kV1;
    SS_ASSIGN_OR_RETURN(index::SociIndex built, index::BuildSociIndex(client, image, options));
    PrintZtocs(built, err);
    SS_ASSIGN_OR_RETURN(Digest pushed, index::PushSociIndexV1(client, built));
    out << "pushed SOCI index " << pushed.str() << " for " << image.Locator() << "@"
        << built.image.manifest_digest.str() << " (tag "
        << index::ReferrersTag(built.image.manifest_digest) << ")\n";
    return absl::OkStatus();
  }

  std::optional<Digest> explicit_digest;
  if (index_info_->parsed()) {
    SS_ASSIGN_OR_RETURN(explicit_digest, Digest::Parse(digest_));
  }
  SS_ASSIGN_OR_RETURN(index::DiscoveredIndex found,
                      index::DiscoverSociIndex(client, image, platform, explicit_digest));
  if (list_->parsed()) {
    PrintDiscovered(found, out);
    return absl::OkStatus();
  }
  if (index_info_->parsed()) {
    out << nlohmann::json::parse(found.body, nullptr, /*allow_exceptions=*/false).dump(2)
        << "\n";
    return absl::OkStatus();
  }
  if (ztoc_info_->parsed()) {
    SS_ASSIGN_OR_RETURN(Digest digest, Digest::Parse(digest_));
    SS_ASSIGN_OR_RETURN(remote::Descriptor zd, FindZtoc(found, digest));
    SS_ASSIGN_OR_RETURN(index::Ztoc ztoc, index::FetchZtoc(client, found.image.ref, zd));
    if (json_) {
      out << ZtocJson(ztoc).dump(2) << "\n";
    } else {
      PrintZtoc(ztoc, out);
    }
    return absl::OkStatus();
  }
  return GetFile(client, found, path_, output_, out, err);
}

}  // namespace slipstream::cli
