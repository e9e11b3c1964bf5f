// SPDX-License-Identifier: Apache-2.0
// LayerFs: open files, reads (with read-ahead) and handle adoption after a restart.
#include "fuse/layer_fs.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "common/strings.h"
#include "fuse/layer_fs_internal.h"

namespace slipstream::fuse {

absl::StatusOr<std::shared_ptr<LayerFs::OpenFile>> LayerFs::NewOpenFile(uint64_t ino) const {
  if (ino == kRootIno) return absl::InvalidArgumentError("the root is a directory");
  SS_ASSIGN_OR_RETURN(std::shared_ptr<Layer> layer, LayerOf(ino));
  SS_ASSIGN_OR_RETURN(const LayerTree::Node* node, NodeOf(*layer, ino));
  if (node->kind != NodeKind::kFile) {
    return absl::InvalidArgumentError(absl::StrCat("inode ", ino, " is not a regular file"));
  }
  auto file = std::make_shared<OpenFile>();
  file->ino = ino;
  if (const index::FileMetadata* e = layer->tree->EntryOf(*node); e != nullptr) {
    file->data_offset = e->uncompressed_offset;
    file->size = e->uncompressed_size;
  }
  file->layer = std::move(layer);
  return file;
}

absl::StatusOr<uint64_t> LayerFs::Open(uint64_t ino, int flags) {
  if ((flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC) != 0) {
    return absl::FailedPreconditionError("the layer filesystem is read-only");
  }
  SS_ASSIGN_OR_RETURN(std::shared_ptr<OpenFile> file, NewOpenFile(ino));
  {
    absl::MutexLock lock(&file->layer->mu);
    ++file->layer->open_files;
  }
  absl::MutexLock lock(&mu_);
  uint64_t handle = next_handle_++;
  handles_[handle] = std::move(file);
  return handle;
}

absl::StatusOr<std::shared_ptr<LayerFs::OpenFile>> LayerFs::FindOrAdoptHandle(uint64_t ino,
                                                                              uint64_t handle) {
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = handles_.find(handle);
    if (it != handles_.end()) {
      if (it->second->ino != ino) {
        return absl::InvalidArgumentError(
            absl::StrCat("handle ", handle, " is not open on inode ", ino));
      }
      return it->second;
    }
  }
  // A handle this process never issued: the file was opened through a previous server of
  // the same connection (a daemon restart). Inodes are stable, so serve it from the inode.
  SS_ASSIGN_OR_RETURN(std::shared_ptr<OpenFile> file, NewOpenFile(ino));
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = handles_.try_emplace(handle, file);
  if (inserted) {
    absl::MutexLock layer_lock(&file->layer->mu);
    ++file->layer->open_files;
  } else if (it->second->ino != ino) {
    return absl::InvalidArgumentError(
        absl::StrCat("handle ", handle, " is not open on inode ", ino));
  }
  return it->second;
}

absl::StatusOr<std::string> LayerFs::Read(uint64_t ino, uint64_t handle, int64_t offset,
                                          int64_t size) {
  SS_ASSIGN_OR_RETURN(std::shared_ptr<OpenFile> file, FindOrAdoptHandle(ino, handle));
  if (offset < 0 || size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("read of ", size, " bytes at ", offset));
  }
  if (offset >= file->size || size == 0) return std::string();
  const int64_t length = std::min(size, file->size - offset);
  LayerReader& reader = *file->layer->reader;
  last_read_ns_.store(absl::GetCurrentTimeNanos(), std::memory_order_relaxed);
  const int64_t end = offset + length;
  int64_t furthest = file->furthest_end.load(std::memory_order_relaxed);
  while (end > furthest &&
         !file->furthest_end.compare_exchange_weak(furthest, end, std::memory_order_relaxed)) {
  }
  const int64_t window = options_.sequential_window;
  const bool sequential = furthest < 0 ? offset == 0
                                       : offset >= furthest - window && offset <= furthest + window;
  if (sequential && options_.readahead_spans > 0) {
    // Before this read's own fetch, so that the spans after it are fetched meanwhile.
    const index::Ztoc& z = reader.ztoc();
    const int64_t current = z.SpanForUncompressedOffset(file->data_offset + end - 1);
    const int64_t file_last = z.SpanForUncompressedOffset(file->data_offset + file->size - 1);
    const int64_t last = std::min<int64_t>(current + options_.readahead_spans, file_last);
    // A full window is topped up in batches of half of it, not one span per read, so that
    // each fetch covers several spans; the rest of a window cut short by the file's end
    // goes at once.
    const int64_t batch = last == current + options_.readahead_spans
                              ? std::max<int64_t>(1, options_.readahead_spans / 2)
                              : 1;
    if (last > current) reader.ReadAhead(current + 1, last, batch);
  }
  SS_ASSIGN_OR_RETURN(std::string data, reader.Read(file->data_offset + offset, length));
  return data;
}

absl::Status LayerFs::Release(uint64_t ino, uint64_t handle) {
  std::shared_ptr<OpenFile> file;
  {
    absl::MutexLock lock(&mu_);
    auto it = handles_.find(handle);
    if (it == handles_.end() || it->second->ino != ino) {
      return absl::InvalidArgumentError(
          absl::StrCat("no open handle ", handle, " of inode ", ino));
    }
    file = std::move(it->second);
    handles_.erase(it);
  }
  {
    absl::MutexLock lock(&file->layer->mu);
    --file->layer->open_files;
  }
  MaybeRetire(file->layer);
  return absl::OkStatus();
}

}  // namespace slipstream::fuse
