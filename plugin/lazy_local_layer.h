// SPDX-License-Identifier: Apache-2.0
// A lazy layer moving from the FUSE mount to local disk: the files a lazy snapshot's
// directory holds for it, the crash recovery of that directory, and the builder that unpacks
// the layer's verified spans into it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/digest.h"
#include "fuse/layer_reader.h"
#include "unpack/layer_unpacker.h"

namespace slipstream::plugin {

// Inside a lazy snapshot's directory (<root>/snapshots/<id>), next to `fs` and `work`:
//   local             the unpacked layer, present only once complete and verified
//   local.new         the unpacker's output before the chainID check (a leftover after a crash)
//   local.new.partial-XXXXXX   the unpacker's temp dir (a leftover after a crash)
//   fs.swap           the new symlink before it replaces `fs` (a leftover after a crash)
//   fuse-released     marker: the kernel forgot every inode of the layer's FUSE copy, so a
//                     restart need not serve it any more
// `fs` is a symlink: absolute, into the FUSE mount, while the layer is served lazily; the
// relative "local" once it is on disk. Overlay lowerdirs and bind mounts name `fs`, so every
// mount made after the switch resolves to the local directory; mounts made before keep the
// FUSE directory they resolved.
inline constexpr char kLocalDirName[] = "local";
inline constexpr char kFuseReleasedName[] = "fuse-released";

// Where a lazy snapshot's content is.
enum class LazyLayerPlace {
  kFuse,   // `fs` points into the FUSE mount
  kLocal,  // `fs` points at `local`
};

// Makes a lazy snapshot's directory consistent after a crash at any point of a switch and
// says where its content is: removes the leftovers listed above (never `local`); when
// `local` exists (it only does once verified) but `fs` does not point at it yet, finishes the
// switch. Errors of the file system calls (annotated with the path).
absl::StatusOr<LazyLayerPlace> RecoverLocalLayer(const std::string& snapshot_dir);

// Points `<dir>/fs` at `<dir>/local` atomically (a new symlink renamed over it): a reader
// of `fs` sees either the old target or the new one. FailedPrecondition when `local` is not
// a directory.
absl::Status SwitchToLocal(const std::string& snapshot_dir);

// Whether the fuse-released marker exists; writing it (durably, idempotent).
bool FuseReleased(const std::string& snapshot_dir);
absl::Status MarkFuseReleased(const std::string& snapshot_dir);

// Unpacks one lazy layer into `<dir>/local`, in steps, from its uncompressed tar stream as
// the layer's LayerReader serves it: spans already in the span cache are copied, the others
// fetched (through the chunk cache when there is one) and verified against their zTOC
// digests as any read is, so reading the whole stream is also what completes the layer.
// The stream goes through unpack::LayerUnpacker (overlay-ready: whiteouts, opaque dirs,
// xattrs, owners, modes, hardlinks) into `local.new`; Finish() checks that the diffID of
// the whole stream, chained onto `parent_chain`, gives the snapshot's chainID, renames
// `local.new` to `local` and switches `fs` (SwitchToLocal). A builder destroyed before
// Finish() succeeded leaves no `local`; a crash leaves only leftovers RecoverLocalLayer
// removes.
//
// Owned by the lazy provider's background completion; not thread-safe (one thread steps it
// at a time).
class LocalLayerBuilder {
 public:
  // For the snapshot in `snapshot_dir` whose chainID is `chain` on top of `parent_chain`
  // (empty for a bottom layer). AlreadyExists when `local` exists; the unpacker's errors.
  static absl::StatusOr<std::unique_ptr<LocalLayerBuilder>> Create(const std::string& snapshot_dir,
                                                                   const Digest& chain,
                                                                   const std::string& parent_chain);
  ~LocalLayerBuilder();
  LocalLayerBuilder(const LocalLayerBuilder&) = delete;
  LocalLayerBuilder& operator=(const LocalLayerBuilder&) = delete;

  // Reads up to `step_bytes` more of the stream through `reader` and unpacks them. Returns
  // true once the whole stream is in (then call Finish). The reader's errors (Unavailable,
  // DataLoss, ...) and the unpacker's; after an error the builder is unusable.
  absl::StatusOr<bool> Step(fuse::LayerReader& reader, int64_t step_bytes);

  // Checks the stream (DataLoss when the diffID does not give the chainID, naming both),
  // puts `local` in place and switches `fs` to it. Returns the diffID.
  absl::StatusOr<Digest> Finish();

  // Uncompressed bytes unpacked so far.
  int64_t offset() const { return offset_; }

 private:
  LocalLayerBuilder(std::string dir, Digest chain, std::string parent_chain,
                    std::unique_ptr<unpack::LayerUnpacker> unpacker);

  const std::string dir_;
  const Digest chain_;
  const std::string parent_chain_;
  std::unique_ptr<unpack::LayerUnpacker> unpacker_;
  int64_t offset_ = 0;
  bool finished_ = false;
};

}  // namespace slipstream::plugin
