// SPDX-License-Identifier: Apache-2.0
#include "plugin/snapshot_types.h"

#include "absl/strings/str_cat.h"

namespace slipstream::plugin {

std::string_view KindName(SnapshotKind kind) {
  switch (kind) {
    case SnapshotKind::kView:
      return "view";
    case SnapshotKind::kActive:
      return "active";
    case SnapshotKind::kCommitted:
      return "committed";
    case SnapshotKind::kUnknown:
      break;
  }
  return "unknown";
}

absl::Status ValidateLabels(const Labels& labels) {
  for (const auto& [key, value] : labels) {
    if (key.empty()) return absl::InvalidArgumentError("label with an empty key");
    if (key.size() + value.size() > kMaxLabelBytes) {
      // Cut the key in the message: it may itself be the oversized part.
      return absl::InvalidArgumentError(absl::StrCat(
          "label key and value greater than maximum size (", kMaxLabelBytes, " bytes), key: ",
          key.substr(0, 64)));
    }
  }
  return absl::OkStatus();
}

}  // namespace slipstream::plugin
