// SPDX-License-Identifier: Apache-2.0
#include "common/temp_dir.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"

namespace slipstream {

absl::StatusOr<TempDir> TempDir::Create(const std::string& prefix, const std::string& parent) {
  std::string base = parent;
  if (base.empty()) {
    const char* env = std::getenv("TMPDIR");
    base = env != nullptr && *env != '\0' ? env : "/tmp";
  }
  std::string templ = absl::StrCat(base, "/", prefix, "XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    return LastErrnoStatus(absl::StrCat("mkdtemp ", templ));
  }
  return TempDir(std::move(templ));
}

TempDir& TempDir::operator=(TempDir&& o) noexcept {
  if (this != &o) {
    TempDir old(std::move(*this));
    path_ = std::move(o.path_);
    o.path_.clear();
  }
  return *this;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  absl::Status st = RemoveAll(path_);
  if (!st.ok()) log::Warn("temp dir not removed", {{"path", path_}, {"error", st.ToString()}});
}

}  // namespace slipstream
