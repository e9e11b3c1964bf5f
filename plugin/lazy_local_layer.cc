// SPDX-License-Identifier: Apache-2.0
#include "plugin/lazy_local_layer.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::plugin {
namespace {

constexpr char kNewDirName[] = "local.new";
constexpr char kSwapName[] = "fs.swap";
// The uncompressed tar stream: the spans are inflated already.
constexpr char kTarMediaType[] = "application/vnd.oci.image.layer.v1.tar";

std::string Join(const std::string& dir, const char* name) { return absl::StrCat(dir, "/", name); }

bool IsDir(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

absl::StatusOr<std::string> ReadLink(const std::string& path) {
  std::string target(4096, '\0');
  const ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
  if (n < 0) return LastErrnoStatus(absl::StrCat("readlink ", path));
  target.resize(static_cast<size_t>(n));
  return target;
}

absl::Status FsyncPath(const std::string& path, int flags) {
  UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus(absl::StrCat("open ", path));
  if (::fsync(fd.get()) != 0) return LastErrnoStatus(absl::StrCat("fsync ", path));
  return absl::OkStatus();
}

}  // namespace

absl::Status SwitchToLocal(const std::string& snapshot_dir) {
  const std::string local = Join(snapshot_dir, kLocalDirName);
  if (!IsDir(local)) {
    return absl::FailedPreconditionError(absl::StrCat(local, " is not a directory"));
  }
  const std::string swap = Join(snapshot_dir, kSwapName);
  const std::string fs = Join(snapshot_dir, "fs");
  if (::unlink(swap.c_str()) != 0 && errno != ENOENT) {
    return LastErrnoStatus(absl::StrCat("unlink ", swap));
  }
  // Relative: the snapshot directory may be renamed (removal) and stays self-contained.
  if (::symlink(kLocalDirName, swap.c_str()) != 0) {
    return LastErrnoStatus(absl::StrCat("symlink ", swap));
  }
  if (::rename(swap.c_str(), fs.c_str()) != 0) {
    absl::Status s = LastErrnoStatus(absl::StrCat("rename ", swap, " to ", fs));
    (void)::unlink(swap.c_str());
    return s;
  }
  return FsyncPath(snapshot_dir, O_RDONLY | O_DIRECTORY);
}

absl::StatusOr<LazyLayerPlace> RecoverLocalLayer(const std::string& snapshot_dir) {
  std::vector<std::string> leftovers;
  {
    DIR* d = ::opendir(snapshot_dir.c_str());
    if (d == nullptr) return LastErrnoStatus(absl::StrCat("opendir ", snapshot_dir));
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name == kSwapName || name.rfind(kNewDirName, 0) == 0) leftovers.push_back(name);
    }
    ::closedir(d);
  }
  for (const std::string& name : leftovers) {
    SS_RETURN_IF_ERROR(RemoveAll(absl::StrCat(snapshot_dir, "/", name)));
  }
  if (!IsDir(Join(snapshot_dir, kLocalDirName))) return LazyLayerPlace::kFuse;
  absl::StatusOr<std::string> target = ReadLink(Join(snapshot_dir, "fs"));
  if (!target.ok() || *target != kLocalDirName) {
    // Killed between putting `local` in place and the switch: `local` is verified.
    SS_RETURN_IF_ERROR(SwitchToLocal(snapshot_dir));
  }
  return LazyLayerPlace::kLocal;
}

bool FuseReleased(const std::string& snapshot_dir) {
  return ::access(Join(snapshot_dir, kFuseReleasedName).c_str(), F_OK) == 0;
}

absl::Status MarkFuseReleased(const std::string& snapshot_dir) {
  return WriteFileAtomic(Join(snapshot_dir, kFuseReleasedName), "");
}

absl::StatusOr<std::unique_ptr<LocalLayerBuilder>> LocalLayerBuilder::Create(
    const std::string& snapshot_dir, const Digest& chain, const std::string& parent_chain) {
  if (IsDir(Join(snapshot_dir, kLocalDirName))) {
    return absl::AlreadyExistsError(absl::StrCat(snapshot_dir, " already has a local copy"));
  }
  // A previous attempt's output (stopped by an error or a crash) is not trusted.
  SS_RETURN_IF_ERROR(RemoveAll(Join(snapshot_dir, kNewDirName)));
  unpack::LayerUnpackOptions options;
  // The spans are verified one by one as they are read; the diffID covers the whole stream.
  options.hash_input = false;
  // One thread: this runs at the lowest priority behind container reads anyway.
  options.untar_thread = false;
  SS_ASSIGN_OR_RETURN(std::unique_ptr<unpack::LayerUnpacker> unpacker,
                      unpack::LayerUnpacker::Create(kTarMediaType, Digest(), Digest(),
                                                    Join(snapshot_dir, kNewDirName), options));
  return std::unique_ptr<LocalLayerBuilder>(
      new LocalLayerBuilder(snapshot_dir, chain, parent_chain, std::move(unpacker)));
}

LocalLayerBuilder::LocalLayerBuilder(std::string dir, Digest chain, std::string parent_chain,
                                     std::unique_ptr<unpack::LayerUnpacker> unpacker)
    : dir_(std::move(dir)),
      chain_(std::move(chain)),
      parent_chain_(std::move(parent_chain)),
      unpacker_(std::move(unpacker)) {}

LocalLayerBuilder::~LocalLayerBuilder() {
  // The unpacker removes its partial dir itself; an unchecked local.new goes too.
  unpacker_.reset();
  if (!finished_) (void)RemoveAll(Join(dir_, kNewDirName));
}

absl::StatusOr<bool> LocalLayerBuilder::Step(fuse::LayerReader& reader, int64_t step_bytes) {
  if (unpacker_ == nullptr) return absl::FailedPreconditionError("local layer builder failed");
  const int64_t total = reader.ztoc().uncompressed_archive_size;
  if (offset_ >= total) return true;
  // Whole spans, so a span the step needs is fetched once and not cut between two steps.
  const index::Ztoc& z = reader.ztoc();
  const int64_t first = z.SpanForUncompressedOffset(offset_);
  int64_t last = first;
  while (last + 1 < z.SpanCount() &&
         z.SpanUncompressedEnd(last + 1) - offset_ <= std::max<int64_t>(step_bytes, 1)) {
    ++last;
  }
  const int64_t end = std::min(total, z.SpanUncompressedEnd(last));
  absl::StatusOr<std::string> data = reader.Read(offset_, end - offset_);
  absl::Status status = data.status();
  if (status.ok() && static_cast<int64_t>(data->size()) != end - offset_) {
    status = absl::DataLossError(absl::StrCat("layer stream ended at ", offset_ + data->size(),
                                              ", the zTOC says ", total));
  }
  if (status.ok()) status = unpacker_->Write(*data);
  if (!status.ok()) {
    unpacker_.reset();
    return status;
  }
  offset_ = end;
  return offset_ >= total;
}

absl::StatusOr<Digest> LocalLayerBuilder::Finish() {
  if (unpacker_ == nullptr) return absl::FailedPreconditionError("local layer builder failed");
  absl::StatusOr<unpack::LayerUnpackResult> result = unpacker_->Finish();
  unpacker_.reset();
  if (!result.ok()) return result.status();
  const Digest diff_id = result->diff_id;
  const Digest chain =
      parent_chain_.empty() ? diff_id
                            : Sha256Of(absl::StrCat(parent_chain_, " ", diff_id.str()));
  if (chain != chain_) {
    return absl::DataLossError(absl::StrCat("local copy of ", chain_.str(), ": diffID ",
                                            diff_id.str(), " gives chainID ", chain.str()));
  }
  const std::string fresh = Join(dir_, kNewDirName);
  const std::string local = Join(dir_, kLocalDirName);
  // Durable before it is named `local`: after a power loss `local` is complete or absent.
  {
    UniqueFd fd(::open(fresh.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return LastErrnoStatus(absl::StrCat("open ", fresh));
    if (::syncfs(fd.get()) != 0) return LastErrnoStatus(absl::StrCat("syncfs ", fresh));
  }
  if (::rename(fresh.c_str(), local.c_str()) != 0) {
    return LastErrnoStatus(absl::StrCat("rename ", fresh, " to ", local));
  }
  finished_ = true;
  SS_RETURN_IF_ERROR(SwitchToLocal(dir_));
  return diff_id;
}

}  // namespace slipstream::plugin
