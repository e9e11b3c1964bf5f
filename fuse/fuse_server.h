// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/fd.h"
#include "fuse/fuse_mount.h"
#include "fuse/layer_fs.h"

struct fuse_session;

namespace slipstream::fuse {

struct FuseServerOptions {
  // Request threads: fixed, each waiting on the connection and answering one request at a
  // time. Reads block on registry fetches, so a few threads keep other requests moving.
  int threads = 8;
  // How long the kernel may cache entries and attributes. The layers never change, so long
  // timeouts are safe; removed layers are invalidated explicitly.
  absl::Duration entry_timeout = absl::Hours(1);
  absl::Duration attr_timeout = absl::Hours(1);
  // Mount options for Mount().
  FuseMountOptions mount;
  // libfuse's per-request trace on stderr.
  bool debug = false;
};

// The libfuse3 low-level adapter in front of a LayerFs: it reads requests from a FUSE
// connection on its own threads, translates each into a LayerFs call and answers it exactly
// once (FuseReply), mapping errors with StatusToErrno (a failed read is logged once, here,
// and answered EIO). Writing requests are answered EROFS. Directory entries and attributes
// are cached by the kernel for `entry_timeout`/`attr_timeout`, file pages and layer
// directory listings across opens; symlink targets too. Readdirplus is served.
//
// The connection either comes from Mount() (mount(2) of a new filesystem) or is handed in
// by Serve() (a /dev/fuse descriptor someone else mounted, e.g. a helper process that keeps
// the connection alive across daemon restarts). Detach() gives the descriptor back without
// unmounting, for the next server.
//
// While serving, it is the LayerFs's removal observer: a removed layer's entry is dropped
// from the kernel's cache at once (one server per LayerFs at a time).
//
// Owns its threads and the libfuse session; borrows the LayerFs, which must outlive it.
// Stop()/Detach() and the destructor must not race each other; everything else is internal.
class FuseServer {
 public:
  // Mounts a new read-only filesystem at `mountpoint` (FuseMountOptions: allow_other,
  // default_permissions, fsname=slipstream) and starts serving it. Errors from MountFuse, or
  // Internal when libfuse cannot create its session.
  static absl::StatusOr<std::unique_ptr<FuseServer>> Mount(LayerFs* fs,
                                                           const std::string& mountpoint,
                                                           FuseServerOptions options = {});

  // Serves the FUSE connection `fuse_fd` (libfuse's "/dev/fd/N" form of
  // fuse_session_mount). `mountpoint` is where it is mounted (only used by Stop to unmount;
  // empty leaves unmounting to the owner of the mount). `initialized`: the connection already
  // went through FUSE_INIT with a previous server (a handover); the session is then primed
  // with a synthetic INIT instead of waiting for one, and the kernel is asked to resend the
  // requests the previous server read but never answered (a SIGKILLed daemon's in-flight
  // reads; Linux 6.9+, logged otherwise). Internal when libfuse refuses.
  static absl::StatusOr<std::unique_ptr<FuseServer>> Serve(LayerFs* fs, UniqueFd fuse_fd,
                                                           const std::string& mountpoint,
                                                           FuseServerOptions options = {},
                                                           bool initialized = false);

  // Stop().
  ~FuseServer();
  FuseServer(const FuseServer&) = delete;
  FuseServer& operator=(const FuseServer&) = delete;

  // Unmounts the filesystem (aborting the connection if it is busy, see UnmountFuse), stops
  // the threads (each finishes the request it is answering) and closes the connection.
  // Idempotent.
  void Stop();

  // Stops the threads without unmounting and returns a duplicate of the connection's
  // descriptor: requests keep queueing in the kernel until another FuseServer serves it
  // (Serve(..., initialized = true)). Every request a thread had taken is answered first,
  // so none is lost. Invalid fd when already stopped.
  UniqueFd Detach();

  const std::string& mountpoint() const { return mountpoint_; }
  // Requests answered so far (forgets included).
  int64_t requests() const { return requests_.load(); }
  // True when the connection ended on its own (unmounted or aborted from outside).
  bool disconnected() const { return disconnected_.load(); }

  // Internal: the request handlers (a C function table) reach the server through these.
  struct Handlers;
  LayerFs& fs() { return *fs_; }
  const FuseServerOptions& options() const { return options_; }
  void CountRequest() { ++requests_; }

 private:
  FuseServer(LayerFs* fs, std::string mountpoint, FuseServerOptions options);
  absl::Status Start(UniqueFd fuse_fd, bool initialized);
  // Feeds libfuse a FUSE_INIT as the kernel would send it, for a handed-over connection.
  void PrimeInit();
  // Has the kernel queue again the requests a previous server read but never answered
  // (it was killed mid-request): FUSE_NOTIFY_RESEND. Before any thread reads.
  void ResendUnanswered();
  void Loop();
  // Wakes and joins the threads; destroys the session (closing the connection).
  void Shutdown();

  // Lets LayerFs's removal observer reach the session, and stop reaching it on shutdown
  // even if a removal is being announced at that moment.
  struct Notifier {
    absl::Mutex mu;
    struct fuse_session* session ABSL_GUARDED_BY(mu) = nullptr;
  };

  LayerFs* const fs_;
  const std::shared_ptr<Notifier> notifier_ = std::make_shared<Notifier>();
  const std::string mountpoint_;
  const FuseServerOptions options_;
  struct fuse_session* session_ = nullptr;
  int fuse_fd_ = -1;   // owned by the session once Start succeeded
  UniqueFd stop_fd_;   // eventfd: readable once the threads must exit
  std::vector<std::thread> threads_;
  std::atomic<int64_t> requests_{0};
  std::atomic<bool> disconnected_{false};
  bool stopped_ = false;
};

}  // namespace slipstream::fuse
