// SPDX-License-Identifier: Apache-2.0
// LayerFs's private types, shared by its source files (layer_fs.cc: layers and status;
// layer_fs_nodes.cc: lookups, attributes, directories, xattrs; layer_fs_files.cc: open files
// and reads). Not for use outside LayerFs.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "fuse/layer_fs.h"

namespace slipstream::fuse {

// One layer of the filesystem; shared by the layer table, open files and in-flight calls.
struct LayerFs::Layer {
  std::string name;
  uint32_t id = 0;
  std::shared_ptr<const LayerTree> tree;
  std::shared_ptr<LayerReader> reader;

  mutable absl::Mutex mu;
  absl::flat_hash_map<uint32_t, uint64_t> lookups ABSL_GUARDED_BY(mu);  // node number -> count
  int64_t open_files ABSL_GUARDED_BY(mu) = 0;
  bool removed ABSL_GUARDED_BY(mu) = false;
};

// One open regular file (an open handle).
struct LayerFs::OpenFile {
  std::shared_ptr<Layer> layer;
  uint64_t ino = 0;
  int64_t data_offset = 0;  // where the file's bytes start in the uncompressed tar stream
  int64_t size = 0;
  // The furthest end of a read so far (where a sequential reader goes on); -1 before the
  // first read.
  std::atomic<int64_t> furthest_end{-1};
};

namespace layer_fs_internal {

// NotFound naming `ino`.
absl::Status UnknownInode(uint64_t ino);

}  // namespace layer_fs_internal
}  // namespace slipstream::fuse
