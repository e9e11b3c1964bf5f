// SPDX-License-Identifier: Apache-2.0
#include "fuse/durable_mount.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status.h"
#include "fuse/fuse_mount.h"
#include "fuse/mountinfo.h"

namespace slipstream::fuse {
namespace {

// An aborted FUSE connection (its mount gone, or aborted through fusectl) polls POLLERR.
// events = 0: nothing is read from it.
bool ConnectionAlive(int fd) {
  pollfd p{fd, 0, 0};
  return ::poll(&p, 1, 0) >= 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0;
}

bool FuseMountedAt(const std::string& mountpoint) {
  absl::StatusOr<std::optional<std::string>> type = CurrentMountTypeAt(mountpoint);
  return type.ok() && type->has_value() && absl::StartsWith(**type, "fuse");
}

}  // namespace

absl::StatusOr<std::unique_ptr<DurableMount>> DurableMount::Open(LayerFs* fs,
                                                                 DurableMountOptions options) {
  // The parent must exist to resolve it; the mountpoint itself may be a dead mount.
  const size_t slash = options.mountpoint.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    SS_RETURN_IF_ERROR(MakeDirs(options.mountpoint.substr(0, slash)));
  }
  SS_ASSIGN_OR_RETURN(std::string mountpoint, CanonicalMountpoint(options.mountpoint));
  std::unique_ptr<DurableMount> mount(new DurableMount(mountpoint, std::move(options)));
  std::optional<FdHolderClient> holder;
  if (!mount->options_.holder.socket_path.empty()) {
    absl::StatusOr<FdHolderClient> client = ConnectOrStartHolder(mount->options_.holder);
    if (client.ok()) {
      holder.emplace(*std::move(client));
    } else {
      log::Warn("no fuse holder: lazy mounts will not survive a slipstreamd restart",
                {{"error", client.status().ToString()}});
    }
  }
  if (!holder.has_value() || !mount->TryResume(fs, *holder)) {
    SS_RETURN_IF_ERROR(mount->MountFresh(fs, holder.has_value() ? &*holder : nullptr));
  }
  if (mount->options_.kernel_read_ahead > 0) {
    // Only slower sequential reads without it: not a reason to refuse the mount.
    absl::Status ra = SetKernelReadAhead(mountpoint, mount->options_.kernel_read_ahead);
    if (!ra.ok()) log::Warn("kernel read-ahead of the FUSE mount not set", {{"error", ra.ToString()}});
  }
  return mount;
}

bool DurableMount::TryResume(LayerFs* fs, FdHolderClient& holder) {
  absl::StatusOr<UniqueFd> kept = holder.Get(mountpoint_);
  if (!kept.ok()) {
    if (!absl::IsNotFound(kept.status())) {
      log::Warn("asking the fuse holder", {{"error", kept.status().ToString()}});
    }
    return false;
  }
  if (!ConnectionAlive(kept->get()) || !FuseMountedAt(mountpoint_)) {
    log::Warn("the fuse holder's connection is stale, mounting afresh",
              {{"mountpoint", mountpoint_}});
    (void)holder.Drop(mountpoint_);
    return false;
  }
  auto server = FuseServer::Serve(fs, *std::move(kept), mountpoint_, options_.server,
                                  /*initialized=*/true);
  if (!server.ok()) {
    log::Warn("serving the kept FUSE connection failed, mounting afresh",
              {{"error", server.status().ToString()}});
    (void)holder.Drop(mountpoint_);
    return false;
  }
  server_ = *std::move(server);
  resumed_ = held_ = true;
  log::Info("FUSE connection resumed from the holder", {{"mountpoint", mountpoint_}});
  return true;
}

absl::Status DurableMount::MountFresh(LayerFs* fs, FdHolderClient* holder) {
  // A crashed run without a holder (or a holder that lost it) leaves its mount behind,
  // answering ENOTCONN: detach it.
  if (::umount2(mountpoint_.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0) {
    log::Warn("stale FUSE mount detached", {{"mountpoint", mountpoint_}});
  }
  SS_RETURN_IF_ERROR(MakeDirs(mountpoint_));
  absl::StatusOr<UniqueFd> fd = MountFuse(mountpoint_, options_.server.mount);
  if (!fd.ok()) return Annotate(fd.status(), absl::StrCat("mount FUSE at ", mountpoint_));
  // The holder gets its copy before anything is served, so a crash from here on leaves a
  // connection the next daemon can resume.
  if (holder != nullptr) {
    absl::Status put = holder->Put(mountpoint_, fd->get());
    if (put.ok()) {
      held_ = true;
    } else {
      log::Warn("the fuse holder did not take the connection", {{"error", put.ToString()}});
    }
  }
  auto server = FuseServer::Serve(fs, *std::move(fd), mountpoint_, options_.server);
  if (!server.ok()) {
    (void)UnmountFuse(mountpoint_);
    if (held_) (void)holder->Drop(mountpoint_);
    held_ = false;
    return Annotate(server.status(), absl::StrCat("serve FUSE at ", mountpoint_));
  }
  server_ = *std::move(server);
  log::Info("FUSE mounted", {{"mountpoint", mountpoint_}, {"held", held_}});
  return absl::OkStatus();
}

DurableMount::~DurableMount() { Close(); }

void DurableMount::Close() {
  if (closed_ || server_ == nullptr) return;
  closed_ = true;
  if (options_.keep_mount_on_exit && held_) {
    // Our duplicate closes here; the holder's keeps the connection.
    UniqueFd mine = server_->Detach();
    log::Info("FUSE mount kept for the next slipstreamd", {{"mountpoint", mountpoint_}});
    return;
  }
  server_->Stop();
  if (!held_) return;
  // A fresh connection: the one Open used may have been idle for days.
  absl::StatusOr<FdHolderClient> holder = FdHolderClient::Connect(options_.holder.socket_path);
  absl::Status dropped = holder.ok() ? holder->Drop(mountpoint_) : holder.status();
  if (!dropped.ok() && !absl::IsNotFound(dropped)) {
    log::Warn("the fuse holder did not drop the connection", {{"error", dropped.ToString()}});
  }
}

absl::Status TearDownKeptMount(const std::string& mountpoint, const std::string& holder_socket) {
  absl::Status unmounted = UnmountFuse(mountpoint);
  absl::StatusOr<FdHolderClient> holder = FdHolderClient::Connect(holder_socket);
  if (!holder.ok()) {
    return absl::IsUnavailable(holder.status()) ? unmounted : holder.status();
  }
  absl::Status quit = holder->Quit();
  return unmounted.ok() ? quit : unmounted;
}

}  // namespace slipstream::fuse
