// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "re2/re2.h"
#include "plugin/snapshot_types.h"

namespace slipstream::plugin {

// A parsed set of containerd filter expressions, as sent in ListSnapshotsRequest.filters.
// Each string is a comma-separated conjunction of selectors; the strings are OR-ed; no strings
// at all match everything. Selector syntax (containerd's `filters` package):
//   fieldpath               presence:  labels."containerd.io/gc.root"
//   fieldpath == value      equality:  parent==sha256:abc, kind=="committed"
//   fieldpath != value
//   fieldpath ~= regexp     RE2 regexp search (Go regexp syntax, as containerd), value
//                           quoted with "", // or ||; linear time, whatever the pattern
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
    std::shared_ptr<const re2::RE2> regex;  // for kMatches
  };

 private:
  // Outer vector: OR; inner: AND.
  std::vector<std::vector<Selector>> alternatives_;
};

}  // namespace slipstream::plugin
