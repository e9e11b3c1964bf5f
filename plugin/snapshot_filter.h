// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// A parsed set of containerd filter expressions, as sent in ListSnapshotsRequest.filters.
// Each string is a comma-separated conjunction of selectors; the strings are OR-ed; no strings
// at all match everything. Selector syntax (containerd's `filters` package):
//   fieldpath               presence:  labels."containerd.io/gc.root"
//   fieldpath == value      equality:  parent==sha256:abc, kind=="committed"
//   fieldpath != value
//   fieldpath ~= regexp     ECMAScript regexp search, value quoted with "", // or ||
// Field paths on snapshots: name, parent, kind (view|active|committed), labels.<key> (a key
// with dots must be quoted). Immutable after parsing; Match is thread-safe.
class SnapshotFilter {
 public:
  // InvalidArgument naming the offending filter and position on a syntax error.
  static absl::StatusOr<SnapshotFilter> Parse(const std::vector<std::string>& filters);

  bool Match(const SnapshotInfo& info) const;

  enum class Op { kPresent, kEqual, kNotEqual, kMatches };
  struct Selector {
    std::vector<std::string> fieldpath;
    Op op = Op::kPresent;
    std::string value;
    std::shared_ptr<const std::regex> regex;  // for kMatches
  };

 private:
  // Outer vector: OR; inner: AND.
  std::vector<std::vector<Selector>> alternatives_;
};

}  // namespace slipstream::plugin
