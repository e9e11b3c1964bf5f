// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "fuse/fd_holder_spawn.h"
#include "fuse/fuse_server.h"
#include "fuse/layer_fs.h"

namespace slipstream::fuse {

struct DurableMountOptions {
  std::string mountpoint;
  // The fd holder keeping the connection while no daemon serves it. An empty socket_path
  // means none: a fresh mount every time, unmounted by Close().
  HolderStartOptions holder;
  // Close() leaves the mount and the holder's descriptor in place (requests queue in the
  // kernel for the next server) instead of unmounting. Only possible with a holder.
  bool keep_mount_on_exit = true;
  // The kernel's read-ahead window for the mount (SetKernelReadAhead), set on every Open,
  // fresh or resumed; 0 leaves it as it is.
  int64_t kernel_read_ahead = 0;
  FuseServerOptions server;
};

// Lazy mode's FUSE mount, made to outlive the daemon: the /dev/fuse descriptor of the mount
// is also kept by slipstream-fuse-holder (fuse/fd_holder_client.h), so that neither a crash
// nor a restart of the daemon ends the connection, and the next daemon serves the same
// mount again instead of mounting a new one. Open containers' files, overlay lowerdirs and
// the kernel's cached dentries stay valid, because a LayerFs restored with the same layer
// ids answers for the same inode numbers. See docs/lazy-fuse.md, "Restart".
//
// Owned by the daemon; borrows the LayerFs, which must outlive it. Open/Close from one
// thread; the FuseServer serves on its own threads.
class DurableMount {
 public:
  // Serves `fs` at `options.mountpoint`:
  //  - when the holder (connected, or started: ConnectOrStartHolder) has a live connection
  //    for the mountpoint and a FUSE filesystem is still mounted there, that connection is
  //    served again (FuseServer::Serve(..., initialized = true), which also has the kernel
  //    resend requests a killed server had read but not answered) — no new mount;
  //  - otherwise whatever is mounted there (a dead mount: ENOTCONN) is detached, a new
  //    FUSE filesystem is mounted and its descriptor handed to the holder.
  // A holder that cannot be reached or started is logged and the mount made without one
  // (it then ends with this process). Call after the LayerFs knows its layers (restored),
  // since requests start at once. Errors: those of MountFuse/FuseServer, naming the
  // mountpoint.
  static absl::StatusOr<std::unique_ptr<DurableMount>> Open(LayerFs* fs,
                                                            DurableMountOptions options);
  // Close().
  ~DurableMount();
  DurableMount(const DurableMount&) = delete;
  DurableMount& operator=(const DurableMount&) = delete;

  // Stops serving. With keep_mount_on_exit and a holder: detaches (every request a thread
  // had taken is answered; the mount and the holder's descriptor stay). Otherwise unmounts
  // (FuseServer::Stop) and tells the holder to forget the descriptor. Idempotent.
  void Close();

  FuseServer& server() { return *server_; }
  // The canonical mountpoint (the holder's key).
  const std::string& mountpoint() const { return mountpoint_; }
  // True when Open served a connection the holder kept (a restart), false for a new mount.
  bool resumed() const { return resumed_; }
  // True when the holder keeps this connection.
  bool held() const { return held_; }

 private:
  DurableMount(std::string mountpoint, DurableMountOptions options)
      : mountpoint_(std::move(mountpoint)), options_(std::move(options)) {}
  // Serves the connection the holder kept, if it is alive and still mounted. False when
  // there is none to resume.
  bool TryResume(LayerFs* fs, FdHolderClient& holder);
  absl::Status MountFresh(LayerFs* fs, FdHolderClient* holder);

  const std::string mountpoint_;
  const DurableMountOptions options_;
  std::unique_ptr<FuseServer> server_;
  bool resumed_ = false;
  bool held_ = false;
  bool closed_ = false;
};

// What an operator does to take a kept mount down for good (docs/lazy-fuse.md, "Restart"):
// unmounts `mountpoint` (aborting the connection when it is busy) and asks the fd holder on
// `holder_socket` to exit, closing whatever it holds. OK when nothing is mounted there and no
// holder listens; errors of the unmount or of the holder's answer otherwise.
absl::Status TearDownKeptMount(const std::string& mountpoint, const std::string& holder_socket);

}  // namespace slipstream::fuse
