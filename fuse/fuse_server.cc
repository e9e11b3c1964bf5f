// SPDX-License-Identifier: Apache-2.0
#include "fuse/fuse_server.h"

#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "fuse/fuse_ops.h"

namespace slipstream::fuse {
namespace {

// The unique id of the synthetic FUSE_INIT: even (bit 0 marks interrupt replies) and never
// issued by the kernel, so the kernel drops libfuse's answer to it with ENOENT, silently.
constexpr uint64_t kPrimeUnique = 0x7ffffffffffffffeull;

// FUSE_NOTIFY_RESEND (Linux 6.9, protocol 7.40): the kernel queues again every request that
// was read from the connection but never answered. Debian 12's headers predate it.
constexpr int32_t kFuseNotifyResend = 7;

}  // namespace

FuseServer::FuseServer(LayerFs* fs, std::string mountpoint, FuseServerOptions options)
    : fs_(fs), mountpoint_(std::move(mountpoint)), options_(std::move(options)) {}

FuseServer::~FuseServer() { Stop(); }

absl::StatusOr<std::unique_ptr<FuseServer>> FuseServer::Mount(LayerFs* fs,
                                                              const std::string& mountpoint,
                                                              FuseServerOptions options) {
  SS_ASSIGN_OR_RETURN(UniqueFd fd, MountFuse(mountpoint, options.mount));
  std::unique_ptr<FuseServer> server(new FuseServer(fs, mountpoint, std::move(options)));
  absl::Status started = server->Start(std::move(fd), /*initialized=*/false);
  if (!started.ok()) {
    // Nobody will serve the new mount: take it away again.
    (void)UnmountFuse(mountpoint);
    return started;
  }
  return server;
}

absl::StatusOr<std::unique_ptr<FuseServer>> FuseServer::Serve(LayerFs* fs, UniqueFd fuse_fd,
                                                              const std::string& mountpoint,
                                                              FuseServerOptions options,
                                                              bool initialized) {
  if (!fuse_fd.valid()) return absl::InvalidArgumentError("no FUSE connection descriptor");
  std::unique_ptr<FuseServer> server(new FuseServer(fs, mountpoint, std::move(options)));
  SS_RETURN_IF_ERROR(server->Start(std::move(fuse_fd), initialized));
  return server;
}

absl::Status FuseServer::Start(UniqueFd fuse_fd, bool initialized) {
  // Threads poll the connection together with the stop eventfd, so the descriptor is
  // non-blocking: a thread that loses the race for a request gets EAGAIN and polls again.
  int flags = ::fcntl(fuse_fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fuse_fd.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    return LastErrnoStatus("fcntl O_NONBLOCK on the FUSE connection");
  }
  stop_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!stop_fd_.valid()) return LastErrnoStatus("eventfd");

  std::vector<const char*> argv = {"slipstream"};
  if (options_.debug) argv.push_back("-d");
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  session_ = fuse_session_new(&args, &FuseOperations(), sizeof(fuse_lowlevel_ops), this);
  fuse_opt_free_args(&args);  // libfuse copies the arguments it parses
  if (session_ == nullptr) return absl::InternalError("fuse_session_new failed");
  const std::string dev = absl::StrCat("/dev/fd/", fuse_fd.get());
  if (fuse_session_mount(session_, dev.c_str()) != 0) {
    fuse_session_destroy(session_);
    session_ = nullptr;
    return absl::InternalError(absl::StrCat("fuse_session_mount ", dev, " failed"));
  }
  fuse_fd_ = fuse_fd.Release();  // the session closes it
  if (initialized) {
    PrimeInit();
    ResendUnanswered();
  }
  {
    absl::MutexLock lock(&notifier_->mu);
    notifier_->session = session_;
  }
  fs_->SetRemovalObserver([notifier = notifier_](std::string_view name) {
    absl::MutexLock lock(&notifier->mu);
    if (notifier->session == nullptr) return;
    // ENOENT only means the kernel had not cached the entry.
    int err = fuse_lowlevel_notify_inval_entry(notifier->session, kRootIno, name.data(),
                                               name.size());
    if (err != 0 && err != -ENOENT) {
      log::Warn("invalidating a removed layer's entry", {{"layer", name}, {"errno", -err}});
    }
  });
  const int threads = std::max(1, options_.threads);
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
  log::Info("FUSE server started", {{"mountpoint", mountpoint_},
                                    {"threads", threads},
                                    {"handover", initialized}});
  return absl::OkStatus();
}

void FuseServer::PrimeInit() {
  struct {
    fuse_in_header header;
    fuse_init_in init;
  } message;
  std::memset(&message, 0, sizeof(message));
  message.header.len = sizeof(message);
  message.header.opcode = FUSE_INIT;
  message.header.unique = kPrimeUnique;
  message.init.major = FUSE_KERNEL_VERSION;
  message.init.minor = FUSE_KERNEL_MINOR_VERSION;
  message.init.max_readahead = 128 << 10;
  // What a current kernel offers; libfuse derives its own settings from it. The kernel
  // keeps what it negotiated with the first server.
  message.init.flags = FUSE_ASYNC_READ | FUSE_POSIX_LOCKS | FUSE_ATOMIC_O_TRUNC |
                       FUSE_EXPORT_SUPPORT | FUSE_BIG_WRITES | FUSE_DONT_MASK |
                       FUSE_FLOCK_LOCKS | FUSE_AUTO_INVAL_DATA | FUSE_DO_READDIRPLUS |
                       FUSE_READDIRPLUS_AUTO | FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS |
                       FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS;
  fuse_buf buf;
  std::memset(&buf, 0, sizeof(buf));
  buf.mem = &message;
  buf.size = sizeof(message);
  fuse_session_process_buf(session_, &buf);
}

void FuseServer::ResendUnanswered() {
  fuse_out_header notify;
  std::memset(&notify, 0, sizeof(notify));
  notify.len = sizeof(notify);
  notify.error = kFuseNotifyResend;  // unique 0: a notification, its code in `error`
  if (::write(fuse_fd_, &notify, sizeof(notify)) == static_cast<ssize_t>(sizeof(notify))) {
    log::Info("FUSE requests of the previous server resent");
    return;
  }
  // Older kernels answer EINVAL. Requests a killed server had read then never get an
  // answer: their readers wait until they are killed (docs/lazy-fuse.md, "Restart").
  log::Warn("the kernel cannot resend unanswered FUSE requests (needs Linux 6.9)",
            {{"error", std::strerror(errno)}});
}

void FuseServer::Loop() {
  fuse_buf buf;
  std::memset(&buf, 0, sizeof(buf));
  pollfd fds[2] = {{fuse_fd_, POLLIN, 0}, {stop_fd_.get(), POLLIN, 0}};
  while (true) {
    fds[0].revents = fds[1].revents = 0;
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      log::Error("poll on the FUSE connection", {{"error", std::strerror(errno)}});
      break;
    }
    if (fds[1].revents != 0) break;
    if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
      disconnected_ = true;  // unmounted or aborted
      break;
    }
    int res = fuse_session_receive_buf(session_, &buf);
    if (res == -EAGAIN || res == -EINTR) continue;
    if (res <= 0) {
      // 0: the connection ended (ENODEV); <0: a read error libfuse already reported.
      disconnected_ = true;
      break;
    }
    fuse_session_process_buf(session_, &buf);
  }
  std::free(buf.mem);
}

void FuseServer::Shutdown() {
  stopped_ = true;
  {
    absl::MutexLock lock(&notifier_->mu);
    notifier_->session = nullptr;
  }
  if (stop_fd_.valid()) {
    uint64_t one = 1;
    if (::write(stop_fd_.get(), &one, sizeof(one)) != sizeof(one)) {
      log::Error("waking the FUSE threads", {{"error", std::strerror(errno)}});
    }
  }
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  if (session_ != nullptr) {
    fuse_session_destroy(session_);
    session_ = nullptr;
    fuse_fd_ = -1;
  }
}

void FuseServer::Stop() {
  if (stopped_) return;
  if (!mountpoint_.empty()) {
    absl::Status s = UnmountFuse(mountpoint_);
    if (!s.ok()) log::Warn("unmounting the layer filesystem", {{"error", s.ToString()}});
  }
  Shutdown();
  log::Info("FUSE server stopped", {{"mountpoint", mountpoint_}, {"requests", requests()}});
}

UniqueFd FuseServer::Detach() {
  if (stopped_ || fuse_fd_ < 0) return UniqueFd();
  UniqueFd dup(::fcntl(fuse_fd_, F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) {
    log::Error("dup of the FUSE connection", {{"error", std::strerror(errno)}});
  }
  Shutdown();
  return dup;
}

}  // namespace slipstream::fuse
