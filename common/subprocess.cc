// SPDX-License-Identifier: Apache-2.0
#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/status.h"

extern char** environ;

namespace slipstream {
namespace {

// argv/envp arrays for posix_spawn, built before the spawn so the child side does nothing
// but exec (posix_spawn is safe in a multithreaded process, fork+malloc is not).
struct SpawnArgs {
  std::vector<std::string> env_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  SpawnArgs(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view kv = *e;
      std::string key(kv.substr(0, kv.find('=')));
      if (env.count(key) == 0) env_storage.emplace_back(kv);
    }
    for (const auto& [k, v] : env) env_storage.push_back(absl::StrCat(k, "=", v));
    for (std::string& s : env_storage) envp.push_back(s.data());
    envp.push_back(nullptr);
  }
};

absl::Status MakePipe(UniqueFd* read_end, UniqueFd* write_end) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return LastErrnoStatus("pipe2");
  read_end->Reset(fds[0]);
  write_end->Reset(fds[1]);
  return absl::OkStatus();
}

absl::StatusOr<pid_t> Spawn(const std::vector<std::string>& argv,
                            const std::map<std::string, std::string>& env, const std::string& cwd,
                            int in_fd, int out_fd, int err_fd) {
  if (argv.empty()) return absl::InvalidArgumentError("spawn: empty argv");
  SpawnArgs args(argv, env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Children start with default signal dispositions and an empty mask, whatever ours are.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, argv[0].c_str(), &actions, &attr, args.argv.data(),
                          args.envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoToStatus(rc, absl::StrCat("spawn ", argv[0]));
  return pid;
}

int WaitPid(pid_t pid, int options, int* status) {
  int rc;
  do {
    rc = ::waitpid(pid, status, options);
  } while (rc < 0 && errno == EINTR);
  return rc;
}

void FillExit(int status, SubprocessResult* r) {
  if (WIFEXITED(status)) {
    r->exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r->term_signal = WTERMSIG(status);
  }
}

// write(2) to a pipe whose reader may have exited, without letting SIGPIPE kill the whole
// process: the signal is blocked for this thread during the write, and a SIGPIPE it raised
// is consumed before unblocking. Callers see EPIPE instead.
ssize_t WriteNoSigpipe(int fd, std::string_view data) {
  sigset_t pipe_set, old;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  ssize_t n = ::write(fd, data.data(), data.size());
  int saved = errno;
  if (n < 0 && errno == EPIPE) {
    struct timespec zero = {0, 0};
    while (sigtimedwait(&pipe_set, nullptr, &zero) < 0 && errno == EINTR) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return n;
}

}  // namespace

absl::StatusOr<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                               const SubprocessOptions& options) {
  UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
  SS_RETURN_IF_ERROR(MakePipe(&in_r, &in_w));
  SS_RETURN_IF_ERROR(MakePipe(&out_r, &out_w));
  SS_RETURN_IF_ERROR(MakePipe(&err_r, &err_w));
  SS_ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, options.env, options.cwd, in_r.get(), out_w.get(),
                                       err_w.get()));
  in_r.Reset();
  out_w.Reset();
  err_w.Reset();
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);

  SubprocessResult result;
  std::string_view to_write = options.stdin_data;
  if (to_write.empty()) in_w.Reset();
  absl::Time deadline = options.timeout == absl::InfiniteDuration()
                            ? absl::InfiniteFuture()
                            : absl::Now() + options.timeout;
  bool timed_out = false;
  char buf[65536];
  while (out_r.valid() || err_r.valid()) {
    struct pollfd fds[3];
    int n = 0;
    int out_idx = -1, err_idx = -1, in_idx = -1;
    if (out_r.valid()) { fds[n] = {out_r.get(), POLLIN, 0}; out_idx = n++; }
    if (err_r.valid()) { fds[n] = {err_r.get(), POLLIN, 0}; err_idx = n++; }
    if (in_w.valid()) { fds[n] = {in_w.get(), POLLOUT, 0}; in_idx = n++; }
    int wait_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    }
    int rc = ::poll(fds, n, wait_ms);
    if (rc < 0) {
      if (errno == EINTR) continue;
      ::kill(pid, SIGKILL);
      WaitPid(pid, 0, nullptr);
      return LastErrnoStatus("poll");
    }
    auto drain = [&](int idx, UniqueFd& fd, std::string& sink) {
      if (idx < 0 || fds[idx].revents == 0) return;
      ssize_t got = ::read(fd.get(), buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) return;
        fd.Reset();
        return;
      }
      size_t room = options.max_output > sink.size() ? options.max_output - sink.size() : 0;
      sink.append(buf, std::min(room, static_cast<size_t>(got)));
    };
    drain(out_idx, out_r, result.stdout_data);
    drain(err_idx, err_r, result.stderr_data);
    if (in_idx >= 0 && fds[in_idx].revents != 0) {
      ssize_t put = WriteNoSigpipe(in_w.get(), to_write);
      if (put > 0) to_write.remove_prefix(static_cast<size_t>(put));
      // EPIPE: the child closed stdin early; that is its business, not an error.
      if (to_write.empty() || (put < 0 && errno != EAGAIN && errno != EINTR)) in_w.Reset();
    }
  }
  if (timed_out) {
    ::kill(pid, SIGKILL);
    WaitPid(pid, 0, nullptr);
    return absl::DeadlineExceededError(absl::StrCat(
        "command \"", absl::StrJoin(argv, " "), "\" timed out after ",
        absl::FormatDuration(options.timeout)));
  }
  int status = 0;
  if (WaitPid(pid, 0, &status) < 0) return LastErrnoStatus("waitpid");
  FillExit(status, &result);
  return result;
}

absl::StatusOr<ChildProcess> ChildProcess::Start(const std::vector<std::string>& argv,
                                                 const std::string& log_path,
                                                 const std::map<std::string, std::string>& env) {
  SS_ASSIGN_OR_RETURN(UniqueFd in, OpenFile("/dev/null", O_RDONLY));
  UniqueFd out;
  if (log_path.empty()) {
    SS_ASSIGN_OR_RETURN(out, OpenFile("/dev/null", O_WRONLY));
  } else {
    SS_ASSIGN_OR_RETURN(out, OpenFile(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644));
  }
  SS_ASSIGN_OR_RETURN(pid_t pid, Spawn(argv, env, "", in.get(), out.get(), out.get()));
  return ChildProcess(pid);
}

ChildProcess& ChildProcess::operator=(ChildProcess&& o) noexcept {
  if (this != &o) {
    if (pid_ > 0) Stop();
    pid_ = o.pid_;
    o.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0) Stop();
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status;
  int rc = WaitPid(pid_, WNOHANG, &status);
  if (rc == pid_) {
    pid_ = -1;
    return false;
  }
  return rc == 0;
}

int ChildProcess::Stop(int sig, absl::Duration grace) {
  if (pid_ <= 0) return -1;
  ::kill(pid_, sig);
  absl::Time deadline = absl::Now() + grace;
  int status = 0;
  for (;;) {
    int rc = WaitPid(pid_, WNOHANG, &status);
    if (rc == pid_ || rc < 0) break;
    if (absl::Now() >= deadline) {
      ::kill(pid_, SIGKILL);
      WaitPid(pid_, 0, &status);
      break;
    }
    // Polling a child's exit has no fd to wait on; 10 ms keeps shutdown prompt and cheap.
    absl::SleepFor(absl::Milliseconds(10));
  }
  pid_ = -1;
  return status;
}

}  // namespace slipstream
