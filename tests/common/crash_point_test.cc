// SPDX-License-Identifier: Apache-2.0
#include "common/crash_point.h"

#include <signal.h>
#include <stdlib.h>

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace slipstream {
namespace {

class CrashPointTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(ArmCrashPoint("").ok()); }
};

TEST_F(CrashPointTest, UnarmedPointsDoNothing) {
  // This test binary runs without SLIPSTREAM_CRASH_AT.
  EXPECT_FALSE(crash_point_internal::armed.load());
  for (int i = 0; i < 1000; ++i) CrashPoint("test.never");
}

TEST_F(CrashPointTest, KillsWithSigkillAtTheFirstHit) {
  EXPECT_EXIT(
      {
        if (!ArmCrashPoint("test.first").ok()) ::exit(2);
        CrashPoint("test.other");  // another name is not counted
        CrashPoint("test.first");
        ::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "crash point test.first hit 1: SIGKILL");
}

TEST_F(CrashPointTest, KillsAtTheNthHitOnly) {
  EXPECT_EXIT(
      {
        if (!ArmCrashPoint("test.nth:3").ok()) ::exit(2);
        CrashPoint("test.nth");
        CrashPoint("test.nth");
        CrashPoint("test.nth:3");  // the spec's suffix is not part of the name
        CrashPoint("test.nth");
        ::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "crash point test.nth hit 3: SIGKILL");
  // One hit short of the armed one: the process lives on.
  EXPECT_EXIT(
      {
        if (!ArmCrashPoint("test.nth:3").ok()) ::exit(2);
        CrashPoint("test.nth");
        CrashPoint("test.nth");
        ::exit(7);
      },
      ::testing::ExitedWithCode(7), "");
}

TEST_F(CrashPointTest, HitsAreCountedAcrossThreads) {
  EXPECT_EXIT(
      {
        if (!ArmCrashPoint("test.threads:400").ok()) ::exit(2);
        std::vector<std::thread> threads;
        for (int t = 0; t < 4; ++t) {
          threads.emplace_back([] {
            for (int i = 0; i < 100; ++i) CrashPoint("test.threads");
          });
        }
        for (std::thread& t : threads) t.join();
        ::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "crash point test.threads hit 400: SIGKILL");
}

TEST_F(CrashPointTest, ReadsTheEnvironmentOnceAtStart) {
  // The "threadsafe" style re-executes this binary, whose static initialization reads the
  // variable; this process read it (unset) long ago and stays unarmed.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ASSERT_EQ(::setenv("SLIPSTREAM_CRASH_AT", "test.env:2", 1), 0);
  EXPECT_EXIT(
      {
        CrashPoint("test.env");
        CrashPoint("test.env");
        ::exit(0);
      },
      ::testing::KilledBySignal(SIGKILL), "crash point test.env hit 2: SIGKILL");
  ASSERT_EQ(::unsetenv("SLIPSTREAM_CRASH_AT"), 0);
  EXPECT_FALSE(crash_point_internal::armed.load());
  CrashPoint("test.env");
  CrashPoint("test.env");
}

TEST_F(CrashPointTest, MalformedSpecsAreRefusedAndDisarm) {
  ASSERT_TRUE(ArmCrashPoint("test.ok").ok());
  EXPECT_EQ(ArmCrashPoint("test.x:0").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(crash_point_internal::armed.load());
  EXPECT_EQ(ArmCrashPoint("test.x:abc").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ArmCrashPoint(":3").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(crash_point_internal::armed.load());
  CrashPoint("test.ok");  // disarmed: still alive
}

}  // namespace
}  // namespace slipstream
