// SPDX-License-Identifier: Apache-2.0
#include "plugin/service_server.h"

#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"

namespace slipstream::plugin {

absl::StatusOr<std::unique_ptr<grpc::Server>> StartUnixServer(
    const std::string& socket_path, const std::vector<grpc::Service*>& services, int mode) {
  if (socket_path.empty()) return absl::InvalidArgumentError("socket path is empty");
  auto slash = socket_path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    SS_RETURN_IF_ERROR(MakeDirs(socket_path.substr(0, slash), 0711));
  }
  // A socket left by a killed daemon makes bind(2) fail with EADDRINUSE; nobody listens on it.
  struct stat st;
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat(socket_path, " exists and is not a socket"));
    }
    if (::unlink(socket_path.c_str()) != 0) {
      return LastErrnoStatus(absl::StrCat("unlink stale socket ", socket_path));
    }
  }
  // gRPC creates the socket with the process umask, and the daemon's umask is whatever its
  // service manager set: bind inside a fresh 0700 directory, set the mode there, then rename
  // the socket into place, so `socket_path` never accepts a connection it should not.
  const std::string parent = slash == std::string::npos ? "." : socket_path.substr(0, slash);
  std::string private_dir = absl::StrCat(parent, "/.bind-XXXXXX");
  if (::mkdtemp(private_dir.data()) == nullptr) {
    return LastErrnoStatus(absl::StrCat("create a private directory next to ", socket_path));
  }
  const std::string bound = private_dir + "/s";
  auto cleanup = [&] {
    ::unlink(bound.c_str());
    ::rmdir(private_dir.c_str());
  };
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("unix:", bound), grpc::InsecureServerCredentials());
  for (grpc::Service* service : services) builder.RegisterService(service);
  // Labels are up to 4 KiB each and a List batch can be large; containerd sends up to 16 MiB.
  builder.SetMaxReceiveMessageSize(16 << 20);
  builder.SetMaxSendMessageSize(16 << 20);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) {
    cleanup();
    return absl::UnavailableError(absl::StrCat("cannot listen on unix:", socket_path));
  }
  absl::Status placed = absl::OkStatus();
  if (::chmod(bound.c_str(), mode) != 0) {
    placed = LastErrnoStatus(absl::StrCat("chmod ", socket_path));
  } else if (::rename(bound.c_str(), socket_path.c_str()) != 0) {
    placed = LastErrnoStatus(absl::StrCat("move the socket to ", socket_path));
  }
  cleanup();
  if (!placed.ok()) {
    server->Shutdown();
    return placed;
  }
  return server;
}

}  // namespace slipstream::plugin
