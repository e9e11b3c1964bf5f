// SPDX-License-Identifier: Apache-2.0
#include "fuse/fd_holder_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"

namespace slipstream::fuse {
namespace {

// Runs between fork and exec: async-signal-safe calls only.
[[noreturn]] void ExecDetached(const char* binary, char* const argv[], int null_fd, int log_fd) {
  if (::setsid() < 0) ::_exit(126);
  const pid_t grandchild = ::fork();
  if (grandchild != 0) ::_exit(grandchild < 0 ? 126 : 0);
  // The daemon blocks SIGTERM/SIGINT for its sigwait; exec would pass that mask on.
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (::dup2(null_fd, 0) < 0 || ::dup2(log_fd, 1) < 0 || ::dup2(log_fd, 2) < 0) ::_exit(126);
  ::close_range(3, ~0U, 0);
  if (::chdir("/") != 0) ::_exit(126);
  ::execv(binary, argv);
  ::_exit(127);
}

absl::Status StartHolder(const std::string& binary, const HolderStartOptions& options) {
  if (::access(binary.c_str(), X_OK) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("fuse holder binary ", binary));
  }
  SS_ASSIGN_OR_RETURN(UniqueFd null_fd, OpenFile("/dev/null", O_RDWR));
  const std::string log_path = options.log_path.empty() ? "/dev/null" : options.log_path;
  SS_ASSIGN_OR_RETURN(UniqueFd log_fd, OpenFile(log_path, O_WRONLY | O_CREAT | O_APPEND, 0640));
  // Everything the child needs is prepared before fork: it may not allocate.
  std::string arg0 = binary, flag = "--socket", socket = options.socket_path;
  std::vector<char*> argv = {arg0.data(), flag.data(), socket.data(), nullptr};
  const pid_t child = ::fork();
  if (child < 0) return LastErrnoStatus("fork");
  if (child == 0) ExecDetached(binary.c_str(), argv.data(), null_fd.get(), log_fd.get());
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return LastErrnoStatus("waitpid");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat("starting the fuse holder failed (status ", status, ")"));
  }
  log::Info("fuse holder started", {{"binary", binary}, {"socket", options.socket_path}});
  return absl::OkStatus();
}

}  // namespace

std::string DefaultHolderBinary() {
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return "slipstream-fuse-holder";
  std::string dir(self, static_cast<size_t>(n));
  dir.resize(dir.rfind('/') + 1);
  return dir + "slipstream-fuse-holder";
}

absl::StatusOr<FdHolderClient> ConnectOrStartHolder(const HolderStartOptions& options) {
  absl::StatusOr<FdHolderClient> client = FdHolderClient::Connect(options.socket_path);
  if (client.ok() || !absl::IsUnavailable(client.status())) return client;
  SS_RETURN_IF_ERROR(
      StartHolder(options.binary.empty() ? DefaultHolderBinary() : options.binary, options));
  // The holder binds its socket right after starting; wait for it, bounded.
  const absl::Time deadline = absl::Now() + options.timeout;
  while (true) {
    client = FdHolderClient::Connect(options.socket_path);
    if (client.ok() || !absl::IsUnavailable(client.status())) return client;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("the fuse holder started but never answered on ", options.socket_path,
                       " (see ", options.log_path, ")"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace slipstream::fuse
