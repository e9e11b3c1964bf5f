// SPDX-License-Identifier: Apache-2.0
#include "plugin/mounts_overlay.h"

#include "gtest/gtest.h"
#include "plugin/service_status.h"

namespace slipstream::plugin {
namespace {

const OverlayPaths kSelf{"/r/snapshots/9/fs", "/r/snapshots/9/work"};
const OverlayPaths kP1{"/r/snapshots/2/fs", "/r/snapshots/2/work"};
const OverlayPaths kP2{"/r/snapshots/1/fs", "/r/snapshots/1/work"};

TEST(OverlayMountsTest, MatchesContainerdOverlaySnapshotter) {
  struct Case {
    SnapshotKind kind;
    std::vector<OverlayPaths> ancestors;
    MountSpec want;
  };
  for (const Case& c : std::vector<Case>{
           {SnapshotKind::kActive, {}, {"bind", kSelf.fs, "", {"rw", "rbind"}}},
           {SnapshotKind::kView, {}, {"bind", kSelf.fs, "", {"ro", "rbind"}}},
           {SnapshotKind::kView, {kP1}, {"bind", kP1.fs, "", {"ro", "rbind"}}},
           {SnapshotKind::kActive,
            {kP1},
            {"overlay", "overlay", "",
             {"index=off", "workdir=" + kSelf.work, "upperdir=" + kSelf.fs, "lowerdir=" + kP1.fs}}},
           {SnapshotKind::kActive,
            {kP1, kP2},
            {"overlay", "overlay", "",
             {"index=off", "workdir=" + kSelf.work, "upperdir=" + kSelf.fs,
              "lowerdir=" + kP1.fs + ":" + kP2.fs}}},
           {SnapshotKind::kView,
            {kP1, kP2},
            {"overlay", "overlay", "", {"index=off", "lowerdir=" + kP1.fs + ":" + kP2.fs}}},
       }) {
    auto got = OverlayMounts(c.kind, kSelf, c.ancestors, /*index_off=*/true);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0], c.want) << KindName(c.kind) << " with " << c.ancestors.size();
  }
  auto no_index = OverlayMounts(SnapshotKind::kActive, kSelf, {kP1}, /*index_off=*/false);
  EXPECT_EQ(no_index[0].options.front(), "workdir=" + kSelf.work);
}

TEST(ToGrpcStatusTest, Table) {
  struct Case {
    absl::Status in;
    grpc::StatusCode want;
  };
  for (const Case& c : std::vector<Case>{
           {absl::OkStatus(), grpc::StatusCode::OK},
           {absl::CancelledError("x"), grpc::StatusCode::CANCELLED},
           {absl::UnknownError("x"), grpc::StatusCode::UNKNOWN},
           {absl::InvalidArgumentError("x"), grpc::StatusCode::INVALID_ARGUMENT},
           {absl::DeadlineExceededError("x"), grpc::StatusCode::DEADLINE_EXCEEDED},
           {absl::NotFoundError("x"), grpc::StatusCode::NOT_FOUND},
           {absl::AlreadyExistsError("x"), grpc::StatusCode::ALREADY_EXISTS},
           {absl::PermissionDeniedError("x"), grpc::StatusCode::PERMISSION_DENIED},
           {absl::ResourceExhaustedError("x"), grpc::StatusCode::RESOURCE_EXHAUSTED},
           {absl::FailedPreconditionError("x"), grpc::StatusCode::FAILED_PRECONDITION},
           {absl::AbortedError("x"), grpc::StatusCode::ABORTED},
           {absl::OutOfRangeError("x"), grpc::StatusCode::OUT_OF_RANGE},
           {absl::UnimplementedError("x"), grpc::StatusCode::UNIMPLEMENTED},
           {absl::InternalError("x"), grpc::StatusCode::INTERNAL},
           {absl::UnavailableError("x"), grpc::StatusCode::UNAVAILABLE},
           {absl::DataLossError("x"), grpc::StatusCode::DATA_LOSS},
           {absl::UnauthenticatedError("x"), grpc::StatusCode::UNAUTHENTICATED},
           {absl::Status(static_cast<absl::StatusCode>(42), "odd"), grpc::StatusCode::UNKNOWN},
       }) {
    grpc::Status got = ToGrpcStatus(c.in);
    EXPECT_EQ(got.error_code(), c.want) << c.in;
    EXPECT_EQ(got.error_message(), std::string(c.in.message()));
  }
}

}  // namespace
}  // namespace slipstream::plugin
