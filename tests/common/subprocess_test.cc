// SPDX-License-Identifier: Apache-2.0
#include "common/subprocess.h"

#include "gtest/gtest.h"

namespace slipstream {
namespace {

TEST(RunSubprocess, CapturesOutputExitAndStdin) {
  SubprocessOptions opts;
  opts.stdin_data = "from stdin";
  opts.env["SS_TEST_VAR"] = "value";
  auto r = RunSubprocess({"sh", "-c", "cat; echo \" $SS_TEST_VAR\"; echo err >&2; exit 3"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_EQ(r->stdout_data, "from stdin value\n");
  EXPECT_EQ(r->stderr_data, "err\n");
}

TEST(RunSubprocess, LargeStdinAndStdoutDoNotDeadlock) {
  SubprocessOptions opts;
  opts.stdin_data.assign(4 << 20, 'z');
  auto r = RunSubprocess({"cat"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->stdout_data.size(), 4u << 20);
}

TEST(RunSubprocess, MissingProgramIsNotFound) {
  auto r = RunSubprocess({"slipstream-no-such-program-xyz"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
}

TEST(RunSubprocess, TimeoutKills) {
  SubprocessOptions opts;
  opts.timeout = absl::Milliseconds(200);
  auto r = RunSubprocess({"sleep", "30"}, opts);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(ChildProcess, StartsAndStops) {
  auto child = ChildProcess::Start({"sleep", "30"});
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_TRUE(child->Running());
  child->Stop();
  EXPECT_FALSE(child->Running());
}

}  // namespace
}  // namespace slipstream

namespace slipstream {
namespace {

TEST(RunSubprocess, ChildIgnoringStdinDoesNotKillUs) {
  // A child that exits without reading: our write gets EPIPE and must not raise SIGPIPE.
  SubprocessOptions opts;
  opts.stdin_data.assign(8 << 20, 'x');
  auto r = RunSubprocess({"true"}, opts);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 0);
}

}  // namespace
}  // namespace slipstream
