// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace slipstream {

struct SubprocessOptions {
  // Extra or overriding environment variables; the rest is inherited.
  std::map<std::string, std::string> env;
  // Working directory; empty keeps ours.
  std::string cwd;
  // Bytes written to the child's stdin, which is then closed.
  std::string stdin_data;
  // Kill the child (SIGKILL) after this long; InfiniteDuration waits forever.
  absl::Duration timeout = absl::InfiniteDuration();
  // Upper bound on captured stdout/stderr each; more is discarded.
  size_t max_output = 16u << 20;
};

struct SubprocessResult {
  int exit_code = -1;    // exit status, or -1 when killed by a signal
  int term_signal = 0;   // the signal that ended it, or 0
  std::string stdout_data;
  std::string stderr_data;
};

// Runs argv[0] (looked up in PATH) to completion, capturing stdout and stderr.
// NotFound when the program does not exist; DeadlineExceeded on timeout. A non-zero exit is
// not an error here: callers inspect exit_code. Thread-safe (uses posix_spawn-like fork/exec
// with close-on-exec everywhere).
absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               const SubprocessOptions& options = {});

// A long-running child process (a registry, containerd, ...). stdout and stderr go to
// `log_path` (appended) when given, else /dev/null. The destructor kills (SIGTERM, then
// SIGKILL after 5 s) and reaps it. Move-only; not thread-safe.
class ChildProcess {
 public:
  static absl::StatusOr<ChildProcess> Start(const std::vector<std::string>& argv,
                                            const std::string& log_path = "",
                                            const std::map<std::string, std::string>& env = {});
  ChildProcess(ChildProcess&& o) noexcept : pid_(o.pid_) { o.pid_ = -1; }
  ChildProcess& operator=(ChildProcess&& o) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  // True while the child has not exited (reaps it if it has).
  bool Running();
  // Sends `sig`, waits up to `grace` for exit, then SIGKILLs. Returns the exit status as
  // waitpid reports it.
  int Stop(int sig = 15, absl::Duration grace = absl::Seconds(5));

 private:
  explicit ChildProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
};

}  // namespace slipstream
