// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

// Owns one file descriptor and closes it on destruction. Move-only; not thread-safe.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) Reset(o.Release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Opens `path` with open(2) flags (O_CLOEXEC is always added). Errors carry the path.
absl::StatusOr<UniqueFd> OpenFile(const std::string& path, int flags, int mode = 0644);

// Writes all of `data` at the current offset, retrying on EINTR and short writes.
absl::Status WriteAll(int fd, std::string_view data);
// Writes all of `data` at `offset` with pwrite(2).
absl::Status PwriteAll(int fd, std::string_view data, uint64_t offset);
// Reads exactly `length` bytes at `offset`; OutOfRange if the file ends first.
absl::Status PreadExact(int fd, char* buf, size_t length, uint64_t offset);

// Reads a whole file. NotFound when it does not exist; ResourceExhausted over `max_bytes`.
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             size_t max_bytes = 64u << 20);
// Writes `data` to `path` atomically: a temp file in the same directory, fsync, rename,
// fsync of the directory. The file is either the old one or the new one after a crash.
// Durability::kProcessCrash leaves out both fsyncs: still all-or-nothing when the process
// dies, but a power loss may leave an empty or missing file (for data that can be fetched
// again, where an fsync of many MiB would sit on a latency-critical path).
enum class Durability { kPowerLoss, kProcessCrash };
absl::Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644,
                             Durability durability = Durability::kPowerLoss);

// mkdir -p. OK when the directory already exists.
absl::Status MakeDirs(const std::string& path, int mode = 0755);
// rm -rf without following symlinks. OK when `path` does not exist.
absl::Status RemoveAll(const std::string& path);

}  // namespace slipstream
