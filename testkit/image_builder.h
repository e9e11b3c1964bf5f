// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "remote/manifest.h"
#include "remote/media_types.h"
#include "remote/platform.h"
#include "remote/reference.h"
#include "remote/registry_client.h"
#include "testkit/tar_writer_tree.h"

// Builds OCI images from directories, tar files or TarWriter output, writes them as an OCI
// image layout on disk and pushes them with slipstream's registry client. Used by
// integration tests, the benchmarks and the CLI's `image build`.
namespace slipstream::testkit {

// One layer to build. Set exactly one of source_dir, source_tar and tar_bytes.
struct LayerSpec {
  std::string source_dir;  // a directory tree, walked with AddDirectoryTree(tree)
  std::string source_tar;  // an uncompressed tar file, taken as is
  std::string tar_bytes;   // an uncompressed tar stream in memory (e.g. from TarWriter)
  remote::Compression compression = remote::Compression::kGzip;
  int level = -1;                  // compression level; -1 = library default
  int64_t gzip_members_every = 0;  // gzip: start a new member every N uncompressed bytes
  int64_t zstd_frames_every = 0;   // zstd: start a new frame every N uncompressed bytes
  TreeOptions tree;                // how source_dir is read
  std::map<std::string, std::string> annotations;  // copied into the layer descriptor
  // When non-empty, a layer built earlier in the same work_dir with the same key (and the
  // same compression) is reused instead of rebuilt. The caller owns the key's meaning, e.g.
  // "<dir>@<stamp of the tree's last rebuild>".
  std::string cache_key;
};

// An image to build. Configs carry only what tests and benchmarks need.
struct ImageSpec {
  std::vector<LayerSpec> layers;
  // Empty os/architecture mean this host's platform (remote::Platform::Host()).
  remote::Platform platform;
  std::vector<std::string> entrypoint, cmd, env;
  std::string working_dir;
  std::string created;                             // RFC 3339; empty = field omitted
  std::map<std::string, std::string> annotations;  // manifest annotations
  int parallel_layers = 2;                         // layers compressed at the same time
};

// A compressed layer blob on disk and what the image says about it.
struct BuiltLayer {
  remote::Descriptor descriptor;  // media type, digest and size of the compressed blob
  Digest diff_id;                 // sha256 of the uncompressed tar
  int64_t uncompressed_size = 0;
  std::string path;               // <work_dir>/blobs/sha256/<hex>
};

// An image built into an OCI image layout (<work_dir>/oci-layout, index.json, blobs/). The
// files stay on disk as long as the work dir does; the struct is a plain value.
struct BuiltImage {
  remote::Manifest manifest;
  std::string manifest_json;      // exactly the bytes pushed and hashed
  Digest manifest_digest;
  std::string config_json;
  Digest config_digest;
  remote::Platform platform;
  std::vector<BuiltLayer> layers;
  std::vector<std::string> layer_files;  // layers[i].path, in layer order

  // The manifest's descriptor, with its platform, as an index lists it.
  remote::Descriptor ManifestDescriptor() const;
};

// Several platform images under one OCI image index.
struct BuiltIndex {
  remote::ImageIndex index;
  std::string index_json;
  Digest index_digest;
  std::vector<BuiltImage> images;
};

// Builds one layer into <work_dir>/blobs/sha256/: the tar streams through a hasher (diff_id)
// and the compressor into a temp file that is hashed as it is written and renamed to its
// digest, so a layer of any size needs only a few MiB of memory. InvalidArgument when not
// exactly one source is set; the source's errno statuses (NotFound naming the path, ...).
absl::StatusOr<BuiltLayer> BuildLayer(const LayerSpec& spec, const std::string& work_dir);

// Builds every layer (up to spec.parallel_layers at once), the config (platform, rootfs
// diff_ids, env/entrypoint/cmd/working dir, one history entry per layer) and the OCI
// manifest, writes them as an OCI image layout in `work_dir` (created if needed; index.json
// names the manifest) and returns what was built. The same spec and sources give the same
// digests. InvalidArgument for a spec without layers; errors of BuildLayer otherwise.
absl::StatusOr<BuiltImage> BuildImage(const ImageSpec& spec, const std::string& work_dir);

// Puts `images` (built into the same `work_dir`) under one OCI image index, writes it to the
// layout and points index.json at it. InvalidArgument for an empty list.
absl::StatusOr<BuiltIndex> BuildIndex(std::vector<BuiltImage> images,
                                      const std::string& work_dir);

// Pushes `image` to ref.registry/ref.repository: layers (streamed from their files), then the
// config, then the manifest under ref's tag (or by digest when ref has no tag). Returns the
// manifest digest. Registry errors as RegistryClient reports them, annotated with what was
// being pushed; DataLoss if the registry reports a different manifest digest.
absl::StatusOr<Digest> PushImage(remote::RegistryClient& client, const BuiltImage& image,
                                 const remote::Reference& ref);

// Pushes every image of `index` (by digest) and then the index under ref's tag. Returns the
// index digest.
absl::StatusOr<Digest> PushIndex(remote::RegistryClient& client, const BuiltIndex& index,
                                 const remote::Reference& ref);

}  // namespace slipstream::testkit
