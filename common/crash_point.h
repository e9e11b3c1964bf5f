// SPDX-License-Identifier: Apache-2.0
// Named crash points for the chaos tests: `CrashPoint("pull.layer.verified")` marks a moment
// of the product where a SIGKILL must never lose or corrupt data. It does nothing unless the
// environment variable SLIPSTREAM_CRASH_AT=<name>[:<nth>] (read once, at process start) names
// it; then the nth hit of that point (1 by default, counted across all threads) writes one
// line to stderr ("crash point <name> hit <nth>: SIGKILL") and kills the process with
// SIGKILL, as the OOM killer or a node drain would.
//
// Cost when unset: one relaxed atomic load per call. The names in use are listed in
// docs/reliability.md ("Crashes and load").
#pragma once

#include <atomic>
#include <string_view>

#include "absl/status/status.h"

namespace slipstream {

namespace crash_point_internal {
// True when SLIPSTREAM_CRASH_AT named a point; written at static initialization (or by
// ArmCrashPoint), read by every CrashPoint call.
extern std::atomic<bool> armed;
// The slow path: counts a hit of `name` and kills the process at the armed hit.
void Hit(std::string_view name);
}  // namespace crash_point_internal

// Marks the crash point `name` (a string literal; dotted, lower case: "<area>.<moment>").
// Thread-safe; never returns when it is the armed point's nth hit.
inline void CrashPoint(std::string_view name) {
  if (crash_point_internal::armed.load(std::memory_order_relaxed)) crash_point_internal::Hit(name);
}

// Arms the point `spec` names ("<name>" or "<name>:<nth>", nth >= 1) in place of what the
// environment said, and resets the hit count; an empty spec disarms. For tests (the process
// reads SLIPSTREAM_CRASH_AT itself at start). InvalidArgument for a malformed spec (then
// nothing is armed). Not to be called while other threads pass crash points.
absl::Status ArmCrashPoint(std::string_view spec);

}  // namespace slipstream
