// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace slipstream {

// A directory created with mkdtemp(3) and removed recursively on destruction.
// Move-only; not thread-safe.
class TempDir {
 public:
  // Creates "<parent>/<prefix>XXXXXX". `parent` defaults to $TMPDIR or /tmp.
  static absl::StatusOr<TempDir> Create(const std::string& prefix = "slipstream-",
                                        const std::string& parent = "");
  TempDir(TempDir&& o) noexcept : path_(std::move(o.path_)) { o.path_.clear(); }
  TempDir& operator=(TempDir&& o) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // "<path>/<name>".
  std::string Join(const std::string& name) const { return path_ + "/" + name; }

 private:
  explicit TempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace slipstream
