// SPDX-License-Identifier: Apache-2.0
#include "common/crash_point.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace slipstream {
namespace crash_point_internal {

std::atomic<bool> armed{false};

namespace {

// The armed point. Written only while `armed` is false (static initialization, or a test
// between runs), so readers that saw `armed` true see a complete value.
std::string armed_name;
int64_t armed_nth = 1;
std::atomic<int64_t> hits{0};

absl::Status Parse(std::string_view spec, std::string* name, int64_t* nth) {
  *nth = 1;
  size_t colon = spec.rfind(':');
  std::string_view n = spec.substr(0, colon);
  if (colon != std::string_view::npos &&
      (!absl::SimpleAtoi(AV(spec.substr(colon + 1)), nth) || *nth < 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("SLIPSTREAM_CRASH_AT: bad hit number in \"", AV(spec), "\""));
  }
  if (n.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SLIPSTREAM_CRASH_AT: no point name in \"", AV(spec), "\""));
  }
  *name = std::string(n);
  return absl::OkStatus();
}

// Reads the environment once, before main and before any thread can pass a point.
[[maybe_unused]] const bool kFromEnvironment = [] {
  const char* spec = ::getenv("SLIPSTREAM_CRASH_AT");
  if (spec == nullptr || *spec == '\0') return false;
  if (!Parse(spec, &armed_name, &armed_nth).ok()) {
    // Not fatal: a chaos run with a typo must not take a production daemon down either.
    static constexpr char kMsg[] = "slipstream: ignoring malformed SLIPSTREAM_CRASH_AT\n";
    (void)!::write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
    return false;
  }
  armed.store(true, std::memory_order_relaxed);
  return true;
}();

}  // namespace

void Hit(std::string_view name) {
  if (name != armed_name) return;
  const int64_t n = hits.fetch_add(1, std::memory_order_relaxed) + 1;
  if (n != armed_nth) return;
  // One write(2), so the line lands whole in the log even with other threads logging.
  const std::string line = absl::StrCat("crash point ", AV(name), " hit ", n, ": SIGKILL\n");
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  ::kill(::getpid(), SIGKILL);
  // SIGKILL cannot be caught; this only waits for the kernel to deliver it.
  for (;;) ::pause();
}

}  // namespace crash_point_internal

absl::Status ArmCrashPoint(std::string_view spec) {
  using namespace crash_point_internal;
  armed.store(false, std::memory_order_relaxed);
  hits.store(0, std::memory_order_relaxed);
  armed_name.clear();
  armed_nth = 1;
  if (spec.empty()) return absl::OkStatus();
  std::string name;
  int64_t nth = 1;
  absl::Status status = Parse(spec, &name, &nth);
  if (!status.ok()) return status;
  armed_name = std::move(name);
  armed_nth = nth;
  armed.store(true, std::memory_order_release);
  return absl::OkStatus();
}

}  // namespace slipstream
