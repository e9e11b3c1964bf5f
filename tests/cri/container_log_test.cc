// SPDX-License-Identifier: Apache-2.0
// The CRI container log format: full and partial records, both streams, malformed input.
#include "cri/container_log.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace slipstream::cri {
namespace {

using ::testing::HasSubstr;

constexpr char kT[] = "2024-05-01T10:11:12.123456789Z";

std::string Line(const std::string& stream, const std::string& tag, const std::string& content) {
  return std::string(kT) + " " + stream + " " + tag + " " + content + "\n";
}

TEST(ContainerLogTest, EmptyLogIsEmptyOutput) {
  auto out = ParseContainerLog("");
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->stdout_data, "");
  EXPECT_EQ(out->stderr_data, "");
  EXPECT_EQ(out->first_output, absl::InfinitePast());
}

TEST(ContainerLogTest, FirstOutputIsTheFirstRecordsTime) {
  auto out = ParseContainerLog("2024-05-01T10:11:12.5Z stderr F a\n"
                               "2024-05-01T10:11:13Z stdout F b\n");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(absl::ToUnixMillis(out->first_output), int64_t{1714558272500});
}

TEST(ContainerLogTest, FullLinesGetTheirNewlineBack) {
  auto out = ParseContainerLog(Line("stdout", "F", "hello") + Line("stdout", "F", "") +
                               Line("stdout", "F", "with  two spaces "));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "hello\n\nwith  two spaces \n");
  EXPECT_EQ(out->stderr_data, "");
}

TEST(ContainerLogTest, PartialRecordsAreJoinedPerStream) {
  // A long stdout line split in three, with a stderr line arriving in the middle.
  std::string log = Line("stdout", "P", "aaa") + Line("stderr", "P", "err-") +
                    Line("stdout", "P", "bbb") + Line("stderr", "F", "one") +
                    Line("stdout", "F", "ccc") + Line("stderr", "F", "two");
  auto out = ParseContainerLog(log);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "aaabbbccc\n");
  EXPECT_EQ(out->stderr_data, "err-one\ntwo\n");
}

TEST(ContainerLogTest, OutputWithoutFinalNewlineEndsPartial) {
  auto out = ParseContainerLog(Line("stdout", "F", "x") + Line("stdout", "P", "no newline"));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->stdout_data, "x\nno newline");
}

TEST(ContainerLogTest, ExtraTagsAndTimezoneOffsetsAndMissingTrailers) {
  std::string log = "2024-05-01T12:11:12.5+02:00 stdout F:x y\n";  // offset, extra tag
  log += std::string(kT) + " stderr F\n";                          // no space, no content
  log += std::string(kT) + " stdout F last";                       // no final newline
  auto out = ParseContainerLog(log);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->stdout_data, "y\nlast\n");
  EXPECT_EQ(out->stderr_data, "\n");
}

TEST(ContainerLogTest, MalformedRecordsNameTheLine) {
  struct Case {
    std::string log;
    std::string want;
  };
  const Case cases[] = {
      {Line("stdout", "F", "ok") + "garbage\n", "line 2"},
      {"yesterday stdout F x\n", "bad timestamp"},
      {Line("stdin", "F", "x"), "unknown stream \"stdin\""},
      {Line("stdout", "Q", "x"), "unknown tag \"Q\""},
      {std::string(kT) + " stdout\n", "line 1"},
  };
  for (const Case& c : cases) {
    auto out = ParseContainerLog(c.log);
    EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument) << c.log;
    EXPECT_THAT(out.status().message(), HasSubstr(c.want)) << c.log;
  }
}

}  // namespace
}  // namespace slipstream::cri
