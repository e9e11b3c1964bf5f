// SPDX-License-Identifier: Apache-2.0
#include "common/status.h"

#include <cerrno>

#include "gtest/gtest.h"

namespace slipstream {
namespace {

TEST(ErrnoToStatus, MapsTable) {
  struct Case { int err; absl::StatusCode code; };
  const Case cases[] = {
      {ENOENT, absl::StatusCode::kNotFound},       {EEXIST, absl::StatusCode::kAlreadyExists},
      {EACCES, absl::StatusCode::kPermissionDenied}, {ENOSPC, absl::StatusCode::kResourceExhausted},
      {EINVAL, absl::StatusCode::kInvalidArgument}, {ENOTEMPTY, absl::StatusCode::kFailedPrecondition},
      {ECONNRESET, absl::StatusCode::kUnavailable}, {EIO, absl::StatusCode::kInternal},
      {ENOSYS, absl::StatusCode::kUnimplemented},   {0, absl::StatusCode::kInternal},
      {EXDEV, absl::StatusCode::kUnknown},
  };
  for (const Case& c : cases) {
    absl::Status st = ErrnoToStatus(c.err, "open /x");
    EXPECT_EQ(st.code(), c.code) << c.err;
    EXPECT_EQ(st.message().substr(0, 9), "open /x: ") << st;
  }
}

TEST(StatusToErrno, MapsTable) {
  EXPECT_EQ(StatusToErrno(absl::OkStatus()), 0);
  EXPECT_EQ(StatusToErrno(absl::NotFoundError("")), ENOENT);
  EXPECT_EQ(StatusToErrno(absl::PermissionDeniedError("")), EACCES);
  EXPECT_EQ(StatusToErrno(absl::UnauthenticatedError("")), EACCES);
  EXPECT_EQ(StatusToErrno(absl::InvalidArgumentError("")), EINVAL);
  EXPECT_EQ(StatusToErrno(absl::ResourceExhaustedError("")), ENOSPC);
  EXPECT_EQ(StatusToErrno(absl::UnavailableError("")), EIO);
  EXPECT_EQ(StatusToErrno(absl::DataLossError("")), EIO);
  EXPECT_EQ(StatusToErrno(absl::UnimplementedError("")), ENOSYS);
}

TEST(Annotate, PrefixesAndKeepsCode) {
  absl::Status st = Annotate(absl::DataLossError("bad span"), "fetch sha256:ab");
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(st.message(), "fetch sha256:ab: bad span");
  EXPECT_TRUE(Annotate(absl::OkStatus(), "x").ok());
}

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::Status UseMacros(int x, int* out) {
  SS_ASSIGN_OR_RETURN(int h, Half(x));
  SS_RETURN_IF_ERROR(h > 10 ? absl::OutOfRangeError("big") : absl::OkStatus());
  *out = h;
  return absl::OkStatus();
}

TEST(Macros, PropagateErrorsAndValues) {
  int out = 0;
  EXPECT_TRUE(UseMacros(8, &out).ok());
  EXPECT_EQ(out, 4);
  EXPECT_EQ(UseMacros(3, &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(UseMacros(40, &out).code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace slipstream
