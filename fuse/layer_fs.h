// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fuse/fs_types.h"
#include "fuse/layer_reader.h"
#include "fuse/layer_tree.h"
#include "fuse/read_ahead_pool.h"
#include "fuse/span_cache.h"
#include "index/ztoc.h"
#include "remote/blob_reader.h"

namespace slipstream::fuse {

struct LayerFsOptions {
  // Budget of the in-memory cache of inflated spans, shared by all layers.
  int64_t span_cache_bytes = int64_t{256} << 20;
  // Read-ahead: threads, queued requests, and how many spans past the one a sequential read
  // ends in are fetched in the background (0 disables read-ahead).
  int readahead_threads = 2;
  size_t readahead_queue = 16;
  int readahead_spans = 4;
  // The kernel sends the reads of one read-ahead window at once and they may arrive in any
  // order: a read that starts within this distance of the furthest end read so far in its
  // file (or at the file's start) counts as sequential.
  int64_t sequential_window = int64_t{8} << 20;
  // Per-layer reader settings (coalescing cap, bound on waiting for another reader's fetch).
  LayerReaderOptions reader;
};

// State of one layer as `slipstream status` and the metrics will show it.
struct LayerStatus {
  std::string name;
  uint32_t layer_id = 0;
  Digest blob;
  LayerProgress progress;
  LayerCounters counters;
  int64_t open_files = 0;
  int64_t skipped_entries = 0;  // zTOC entries the tree left out (see LayerTree)
};

// The lazy layer filesystem: one read-only tree whose root holds one directory per layer,
// each serving the files of a layer straight from its zTOC and compressed blob (fetched on
// first read through a LayerReader). Overlay lower directories point at MOUNT/<name>. This is
// the filesystem logic only, as a plain C++ class with no libfuse types; FuseServer
// translates FUSE requests into these calls.
//
// Inodes: the root is 1, a layer's inodes are (layer_id << 32) | n with n from its LayerTree,
// so the same layer_id and zTOC give the same inode numbers in any process. No file
// descriptor is held per inode or per open file.
//
// Lookup counts follow the FUSE protocol (libfuse's passthrough_hp): Lookup and each entry
// ReadDir hands out with `plus` add one to the inode's count, Forget subtracts. A removed
// layer disappears from the root at once but its inodes stay valid until the kernel has
// forgotten all of them (lazy removal); its layer_id cannot be reused until then.
//
// The filesystem is read-only: no method writes, and the adapter answers every writing
// request with EROFS.
//
// Errors (the adapter maps them with StatusToErrno): NotFound for unknown names and inodes
// (also those of a layer already forgotten), InvalidArgument for an operation on the wrong
// kind of inode (Lookup in a file, ReadLink of a directory, ...) or bad handles, and for
// reads the LayerReader's errors (Unavailable, DataLoss, DeadlineExceeded, ... → EIO).
//
// Owned by the daemon (or a test); must outlive the FuseServer serving it. Thread-safe: every
// method may be called from any thread at any time, AddLayer/RemoveLayer while mounted.
// Lock order: mu_ before a layer's mutex before the LayerReader's; no I/O under any of them.
class LayerFs {
 public:
  explicit LayerFs(LayerFsOptions options = {});
  ~LayerFs();
  LayerFs(const LayerFs&) = delete;
  LayerFs& operator=(const LayerFs&) = delete;

  // Adds a layer as directory `name` of the root. `layer_id` (1 .. 2^32-1) picks its inode
  // range; `ztoc` must be validated and describe `blob`. InvalidArgument for a bad name
  // (empty, ".", "..", containing '/' or NUL, longer than 255 bytes), layer_id 0 or a tree
  // the zTOC cannot give (too many entries); AlreadyExists when the name or the id is in use
  // (an id stays in use until a removed layer is fully forgotten).
  absl::Status AddLayer(const std::string& name, uint32_t layer_id,
                        std::shared_ptr<const index::Ztoc> ztoc,
                        std::unique_ptr<remote::BlobReader> blob);

  // Removes layer `name` from the root. NotFound when there is none; FailedPrecondition while
  // files of it are open (nothing changes then). Its inodes stay valid until forgotten.
  absl::Status RemoveLayer(std::string_view name);

  // Called (outside any lock) after RemoveLayer took `name` out of the root, so the adapter
  // can tell the kernel to drop its cached entry. Set before mounting.
  void SetRemovalObserver(std::function<void(std::string_view name)> observer);

  // Called (outside any lock) when a removed layer is finally retired: nothing of it is open
  // and the kernel has forgotten every inode of it, so its reader, tree and cached spans are
  // dropped and its id is free. Called at most once per layer, from RemoveLayer or from the
  // Forget that ended it (a FUSE request thread: keep it short). Set before use.
  void SetRetireObserver(std::function<void(const std::string& name, uint32_t layer_id)> observer);

  // The reader of layer `name` (for background completion: UnfetchedSpans, FeedSpan,
  // Progress), or nullptr.
  std::shared_ptr<LayerReader> Reader(std::string_view name) const;
  // Status of one layer (NotFound when absent) or of all layers, ordered by layer_id.
  absl::StatusOr<LayerStatus> Status(std::string_view name) const;
  std::vector<LayerStatus> AllStatus() const;

  // --- FUSE operations ---

  // The child `name` of directory `parent`; adds one lookup to it.
  absl::StatusOr<Attr> Lookup(uint64_t parent, std::string_view name);
  // Drops `nlookup` lookups of `ino`. FailedPrecondition when it has fewer (the count is
  // then cleared); NotFound for an unknown inode. The root is never counted.
  absl::Status Forget(uint64_t ino, uint64_t nlookup);
  absl::StatusOr<Attr> GetAttr(uint64_t ino);
  // Lists directory `ino` from cookie `offset` (0 = start), calling `add` for each entry
  // until it returns false (the reply buffer is full; that entry is not consumed). "." and
  // ".." come first. With `plus`, each consumed entry other than "." and ".." adds a lookup.
  // Cookies are stable: inside a layer the tree never changes, and in the root they are
  // derived from layer ids, so adding or removing layers between calls skips or repeats
  // no other layer.
  absl::Status ReadDir(uint64_t ino, int64_t offset, bool plus,
                       absl::FunctionRef<bool(const DirEntry&)> add);
  absl::StatusOr<std::string> ReadLink(uint64_t ino);
  // Opens regular file `ino` for reading; returns the handle for Read and Release.
  // FailedPrecondition when `flags` ask for write access.
  absl::StatusOr<uint64_t> Open(uint64_t ino, int flags);
  // Up to `size` bytes of the file at `offset` (fewer at its end). Sequential reads trigger
  // read-ahead. A handle this process never issued is adopted for regular file `ino` (it
  // was opened through a previous server of the same FUSE connection, before a restart);
  // InvalidArgument for a handle open on another inode. Handle numbers start at the
  // process's start time in nanoseconds, so two processes' handles do not collide.
  absl::StatusOr<std::string> Read(uint64_t ino, uint64_t handle, int64_t offset, int64_t size);
  absl::Status Release(uint64_t ino, uint64_t handle);
  // The value of xattr `name`, or nullopt when the inode has no such attribute (the adapter
  // answers ENODATA).
  absl::StatusOr<std::optional<std::string>> GetXattr(uint64_t ino, std::string_view name);
  // The inode's xattr names, in order.
  absl::StatusOr<std::vector<std::string>> ListXattr(uint64_t ino);
  FsStats StatFs() const;

  // --- accounting, for tests and status ---

  // The kernel's lookup count of `ino` as this filesystem tracks it (0 when unknown).
  uint64_t LookupCount(uint64_t ino) const;
  // Open handles over all layers.
  int64_t OpenFiles() const;
  // When the last Read of any file ended (the Unix epoch before the first), so background
  // work can yield to the reads containers wait for.
  absl::Time LastRead() const {
    return absl::FromUnixNanos(last_read_ns_.load(std::memory_order_relaxed));
  }
  const SpanCache& span_cache() const { return cache_; }

 private:
  struct Layer;
  struct OpenFile;

  // The layer owning `ino` (removed ones included while remembered), or NotFound.
  absl::StatusOr<std::shared_ptr<Layer>> LayerOf(uint64_t ino) const;
  // A new (unregistered) open file of regular file `ino`.
  absl::StatusOr<std::shared_ptr<OpenFile>> NewOpenFile(uint64_t ino) const;
  // The open file of `handle`, adopting unknown handles (see Read).
  absl::StatusOr<std::shared_ptr<OpenFile>> FindOrAdoptHandle(uint64_t ino, uint64_t handle);
  // The node of a layer inode, or NotFound.
  absl::StatusOr<const LayerTree::Node*> NodeOf(const Layer& layer, uint64_t ino) const;
  Attr RootAttr() const;
  absl::Status ReadRootDir(int64_t offset, bool plus, absl::FunctionRef<bool(const DirEntry&)> add);
  // Adds one lookup to a node of `layer`.
  void Ref(Layer& layer, uint32_t number);
  // Forgets a removed layer once nothing refers to it any more.
  void MaybeRetire(const std::shared_ptr<Layer>& layer);

  const LayerFsOptions options_;
  const absl::Time created_;
  SpanCache cache_;
  ReadAheadPool pool_;

  mutable absl::Mutex mu_;
  std::map<std::string, uint32_t, std::less<>> names_ ABSL_GUARDED_BY(mu_);  // name -> id
  // Every remembered layer, including removed ones the kernel still refers to.
  std::map<uint32_t, std::shared_ptr<Layer>> layers_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<OpenFile>> handles_ ABSL_GUARDED_BY(mu_);
  uint64_t next_handle_ ABSL_GUARDED_BY(mu_);
  std::function<void(std::string_view)> removal_observer_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> last_read_ns_{0};
  std::function<void(const std::string&, uint32_t)> retire_observer_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::fuse
