// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {

// Returns an absl::Status for a POSIX errno value, prefixed with `context` (usually the
// operation and the path, e.g. "open /var/lib/x"). errno 0 yields an Internal error, since a
// caller only asks when something failed. Mapping: ENOENT → NotFound, EEXIST → AlreadyExists,
// EACCES/EPERM → PermissionDenied, ENOSPC/EDQUOT → ResourceExhausted, EINVAL/ENAMETOOLONG/ELOOP
// → InvalidArgument, ENOTEMPTY → FailedPrecondition, EAGAIN/EINTR/ETIMEDOUT/ECONNREFUSED/
// ECONNRESET → Unavailable, EIO → Internal; everything else → Unknown.
absl::Status ErrnoToStatus(int err, std::string_view context);

// Shorthand for ErrnoToStatus(errno, context).
absl::Status LastErrnoStatus(std::string_view context);

// The errno to reply with when a FUSE operation fails with `status`. OK maps to 0.
// NotFound → ENOENT, PermissionDenied/Unauthenticated → EACCES, InvalidArgument → EINVAL,
// AlreadyExists → EEXIST, ResourceExhausted → ENOSPC, Unimplemented → ENOSYS,
// FailedPrecondition → EPERM, OutOfRange → EINVAL, Cancelled → EINTR; everything else,
// including Unavailable and DataLoss, → EIO (a reader must get an answer, never a retry loop).
int StatusToErrno(const absl::Status& status);

// Returns `status` with "context: " put in front of its message, same code. OK stays OK.
absl::Status Annotate(const absl::Status& status, std::string_view context);

}  // namespace slipstream

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if not OK.
#define SS_RETURN_IF_ERROR(expr)                          \
  do {                                                    \
    ::absl::Status ss_status_ = (expr);                   \
    if (!ss_status_.ok()) return ss_status_;              \
  } while (0)

#define SS_CONCAT_INNER_(a, b) a##b
#define SS_CONCAT_(a, b) SS_CONCAT_INNER_(a, b)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the
// value into `lhs` (which may be a declaration such as `auto x`).
#define SS_ASSIGN_OR_RETURN(lhs, rexpr) \
  SS_ASSIGN_OR_RETURN_IMPL_(SS_CONCAT_(ss_statusor_, __LINE__), lhs, rexpr)
#define SS_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()
