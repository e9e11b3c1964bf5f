// SPDX-License-Identifier: Apache-2.0
#include "common/status.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace slipstream {

absl::Status ErrnoToStatus(int err, std::string_view context) {
  std::string msg = absl::StrCat(AV(context), ": ", err == 0 ? "unknown error" : std::strerror(err));
  switch (err) {
    case 0:
      return absl::InternalError(msg);
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(msg);
    case EEXIST:
      return absl::AlreadyExistsError(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case EDQUOT:
    case EMFILE:
    case ENFILE:
    case ENOMEM:
      return absl::ResourceExhaustedError(msg);
    case EINVAL:
    case ENAMETOOLONG:
    case ELOOP:
    case EISDIR:
    case EBADF:
      return absl::InvalidArgumentError(msg);
    case ENOTEMPTY:
    case EBUSY:
      return absl::FailedPreconditionError(msg);
    case EAGAIN:
    case EINTR:
    case ETIMEDOUT:
    case ECONNREFUSED:
    case ECONNRESET:
    case EPIPE:
    case EHOSTUNREACH:
    case ENETUNREACH:
      return absl::UnavailableError(msg);
    case EIO:
      return absl::InternalError(msg);
    case ENOSYS:
    case EOPNOTSUPP:
      return absl::UnimplementedError(msg);
    default:
      return absl::UnknownError(msg);
  }
}

absl::Status LastErrnoStatus(std::string_view context) { return ErrnoToStatus(errno, context); }

int StatusToErrno(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kNotFound:
      return ENOENT;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return EACCES;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return EINVAL;
    case absl::StatusCode::kAlreadyExists:
      return EEXIST;
    case absl::StatusCode::kResourceExhausted:
      return ENOSPC;
    case absl::StatusCode::kUnimplemented:
      return ENOSYS;
    case absl::StatusCode::kFailedPrecondition:
      return EPERM;
    case absl::StatusCode::kCancelled:
      return EINTR;
    default:
      return EIO;
  }
}

absl::Status Annotate(const absl::Status& status, std::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(AV(context), ": ", status.message()));
}

}  // namespace slipstream
