// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "remote/blob_reader.h"
#include "unpack/decompressor.h"

namespace slipstream::unpack {

struct LayerUnpackOptions {
  GzipBackend gzip_backend = GzipBackend::kIsal;
  // Parse the tar and write files on a second thread, fed through a bounded BytePipe, while
  // the calling thread hashes and decompresses: two cores per layer instead of one.
  bool untar_thread = true;
  // Live counters for progress displays, updated while the layer unpacks (relaxed stores;
  // null = not kept): uncompressed tar bytes produced so far and tar entries written.
  std::atomic<int64_t>* live_uncompressed_bytes = nullptr;
  std::atomic<int64_t>* live_entries = nullptr;
  // false: the bytes written are not hashed (their producer verifies them itself, e.g. a
  // tar stream assembled from verified zTOC spans); the expected digest must then be empty
  // and the result's digest is empty.
  bool hash_input = true;
  // Hash the input (the blob digest) on a thread of its own, fed through a bounded BytePipe,
  // so the decompressing thread, usually the slowest stage, only copies the bytes.
  bool hash_thread = true;
};

// What an unpacked layer turned out to be.
struct LayerUnpackResult {
  Digest digest;               // sha256 of the blob as received
  Digest diff_id;              // sha256 of the uncompressed tar stream
  Compression compression = Compression::kNone;  // as declared by the media type
  int64_t compressed_bytes = 0;
  int64_t uncompressed_bytes = 0;
  int64_t entries = 0;
};

// Turns one layer blob into an overlayfs-ready directory, streaming: compressed bytes go in
// with Write() as they arrive (in order), through the decompressor, the tar reader and the
// LayerWriter, while the blob digest and the diffID are computed on the way. Everything is
// written into "<dest>.partial-XXXXXX" next to `dest`; Finish() verifies both digests and
// only then renames it to `dest`. On any failure, or when the unpacker is destroyed before
// Finish() succeeded, the partial directory is removed, so `dest` either is complete and
// verified or does not exist.
//
// Owned by the code that pulls the layer. Not thread-safe (one producer). Errors are sticky.
class LayerUnpacker {
 public:
  // Prepares to unpack a blob with `media_type` (an OCI or Docker layer type) into `dest`,
  // which must not exist; its parent must. An empty `expected_digest` or `expected_diff_id`
  // skips that check (for tests and local tars). InvalidArgument for an unknown media type or
  // a non-sha256 digest, AlreadyExists when `dest` exists.
  static absl::StatusOr<std::unique_ptr<LayerUnpacker>> Create(
      std::string_view media_type, const Digest& expected_digest, const Digest& expected_diff_id,
      const std::string& dest, const LayerUnpackOptions& options = {});
  ~LayerUnpacker();
  LayerUnpacker(const LayerUnpacker&) = delete;
  LayerUnpacker& operator=(const LayerUnpacker&) = delete;

  // Feeds the next bytes of the blob. DataLoss for a corrupt or undecodable stream,
  // InvalidArgument for malformed or malicious tar members (naming them), or the errno
  // status of a failed write; the partial directory is already gone when it returns an error.
  absl::Status Write(std::string_view compressed);

  // Ends the input, checks the streams ended cleanly and both digests match (DataLoss
  // otherwise, naming expected and actual), and moves the layer into place.
  absl::StatusOr<LayerUnpackResult> Finish();

  // The temp directory being written (for tests).
  const std::string& partial_dir() const { return partial_; }

 private:
  struct Pipeline;
  LayerUnpacker(std::string dest, std::string partial, Digest expected_digest,
                Digest expected_diff_id, Compression compression);

  absl::Status Fail(absl::Status s);
  absl::StatusOr<LayerUnpackResult> FinishImpl();

  const std::string dest_;
  const std::string partial_;
  const Digest expected_digest_;
  const Digest expected_diff_id_;
  const Compression compression_;
  std::unique_ptr<Pipeline> pipeline_;
  bool hash_input_ = true;
  bool done_ = false;
  absl::Status status_;
};

// Unpacks the whole of `blob` (read sequentially in 4 MiB pieces) into `dest`, checking the
// blob digest against blob.digest() and the diffID against `expected_diff_id`.
absl::StatusOr<LayerUnpackResult> UnpackLayer(remote::BlobReader& blob, std::string_view media_type,
                                              const Digest& expected_diff_id,
                                              const std::string& dest,
                                              const LayerUnpackOptions& options = {});

// Same, reading the blob from the file descriptor `fd` until end of file.
absl::StatusOr<LayerUnpackResult> UnpackLayerFromFd(int fd, std::string_view media_type,
                                                    const Digest& expected_digest,
                                                    const Digest& expected_diff_id,
                                                    const std::string& dest,
                                                    const LayerUnpackOptions& options = {});

}  // namespace slipstream::unpack
