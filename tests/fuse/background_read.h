// SPDX-License-Identifier: Apache-2.0
// A read that runs on its own thread, for tests that watch it block in the kernel while no
// FUSE server answers (a daemon restart) and then finish once one does.
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "gtest/gtest.h"

namespace slipstream::fuse::testing {

// True once thread `tid` of this process sleeps inside a system call (/proc/.../syscall shows
// its number instead of "running"): a reader blocked on a FUSE request nobody answers yet.
inline bool BlockedInSyscall(pid_t tid) {
  auto text = ReadFileToString(absl::StrCat("/proc/self/task/", tid, "/syscall"));
  return text.ok() && !text->empty() && std::isdigit(static_cast<unsigned char>((*text)[0]));
}

// Runs `read` (which returns the bytes read, or a "<...>" error text) on its own thread; the
// thread's tid is published before it enters the kernel.
class BackgroundRead {
 public:
  explicit BackgroundRead(std::function<std::string()> read)
      : result_(std::async(std::launch::async, [this, read = std::move(read)] {
          tid_ = static_cast<pid_t>(::syscall(SYS_gettid));
          return read();
        })) {}

  // Waits (bounded) until the reader sleeps in the kernel; fails the test if the read
  // finished instead, since nobody should have served it.
  void WaitBlocked() {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (tid_.load() == 0 || !BlockedInSyscall(tid_.load())) {
      ASSERT_LT(absl::Now(), deadline) << "the reader never blocked";
      ASSERT_NE(result_.wait_for(std::chrono::seconds(0)), std::future_status::ready)
          << "the read finished although nobody served it: " << result_.get().substr(0, 200);
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  bool Done(std::chrono::seconds within) {
    return result_.wait_for(within) == std::future_status::ready;
  }
  std::string Get() { return result_.get(); }

 private:
  std::atomic<pid_t> tid_{0};
  std::future<std::string> result_;
};

}  // namespace slipstream::fuse::testing
