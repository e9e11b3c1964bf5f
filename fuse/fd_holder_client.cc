// SPDX-License-Identifier: Apache-2.0
#include "fuse/fd_holder_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"
#include "fuse/fd_holder_protocol.h"

namespace slipstream::fuse {

absl::StatusOr<FdHolderClient> FdHolderClient::Connect(const std::string& socket_path,
                                                       absl::Duration timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.empty() || socket_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("bad socket path '", socket_path, "'"));
  }
  std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return LastErrnoStatus("socket");
  const timeval tv = absl::ToTimeval(timeout);
  if (::setsockopt(sock.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      ::setsockopt(sock.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0) {
    return LastErrnoStatus("setsockopt timeouts");
  }
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno == ENOENT || errno == ECONNREFUSED) {
      return absl::UnavailableError(absl::StrCat("no fuse holder listens on ", socket_path));
    }
    return LastErrnoStatus(absl::StrCat("connect ", socket_path));
  }
  return FdHolderClient(std::move(sock));
}

absl::StatusOr<HolderMessage> FdHolderClient::Call(const std::string& request, int fd) {
  if (!sock_.valid()) return absl::FailedPreconditionError("not connected");
  SS_RETURN_IF_ERROR(SendHolderMessage(sock_.get(), request, fd));
  SS_ASSIGN_OR_RETURN(HolderMessage answer, ReceiveHolderMessage(sock_.get()));
  if (absl::StartsWith(answer.text, "ERR")) {
    return absl::FailedPreconditionError(
        absl::StrCat("fuse holder refused '", request.substr(0, 64), "': ", answer.text));
  }
  return answer;
}

absl::Status FdHolderClient::Put(const std::string& key, int fd) {
  SS_ASSIGN_OR_RETURN(HolderMessage answer, Call(FormatHolderRequest({HolderOp::kPut, key}), fd));
  if (answer.text != "OK") return absl::InternalError(absl::StrCat("PUT answered ", answer.text));
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> FdHolderClient::Get(const std::string& key) {
  SS_ASSIGN_OR_RETURN(HolderMessage answer, Call(FormatHolderRequest({HolderOp::kGet, key})));
  if (answer.text == "NONE") return absl::NotFoundError(absl::StrCat("fuse holder has no ", key));
  if (answer.text != "OK" || !answer.fd.valid()) {
    return absl::InternalError(absl::StrCat("GET answered ", answer.text, " without a descriptor"));
  }
  return std::move(answer.fd);
}

absl::Status FdHolderClient::Drop(const std::string& key) {
  SS_ASSIGN_OR_RETURN(HolderMessage answer, Call(FormatHolderRequest({HolderOp::kDrop, key})));
  if (answer.text == "NONE") return absl::NotFoundError(absl::StrCat("fuse holder has no ", key));
  if (answer.text != "OK") return absl::InternalError(absl::StrCat("DROP answered ", answer.text));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> FdHolderClient::List() {
  SS_ASSIGN_OR_RETURN(HolderMessage answer, Call(FormatHolderRequest({HolderOp::kList, ""})));
  std::vector<std::string> lines = absl::StrSplit(answer.text, '\n');
  if (lines.empty() || lines[0] != "OK") {
    return absl::InternalError(absl::StrCat("LIST answered ", answer.text.substr(0, 64)));
  }
  lines.erase(lines.begin());
  return lines;
}

absl::Status FdHolderClient::Quit() {
  SS_ASSIGN_OR_RETURN(HolderMessage answer, Call(FormatHolderRequest({HolderOp::kQuit, ""})));
  if (answer.text != "OK") return absl::InternalError(absl::StrCat("QUIT answered ", answer.text));
  return absl::OkStatus();
}

}  // namespace slipstream::fuse
