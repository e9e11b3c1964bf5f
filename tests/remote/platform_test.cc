// SPDX-License-Identifier: Apache-2.0
#include "remote/platform.h"

#include <sys/utsname.h>

#include <string>

#include <gtest/gtest.h>

namespace slipstream::remote {
namespace {

Platform P(std::string os, std::string arch, std::string variant = "") {
  Platform p;
  p.os = std::move(os);
  p.architecture = std::move(arch);
  p.variant = std::move(variant);
  return p;
}

TEST(PlatformTest, HostIsNormalized) {
  Platform host = Platform::Host();
  EXPECT_EQ(host.os, "linux");
  struct utsname u;
  ASSERT_EQ(uname(&u), 0);
  std::string machine = u.machine;
  if (machine == "x86_64") {
    EXPECT_EQ(host.String(), "linux/amd64");
  } else if (machine == "aarch64") {
    EXPECT_EQ(host.String(), "linux/arm64/v8");
  }
  EXPECT_FALSE(host.architecture.empty());
  // Whatever the machine, the host accepts an image built for itself.
  EXPECT_TRUE(host.Matches(host));
}

struct ParseCase {
  std::string input;
  std::string os, arch, variant;
};

class PlatformParseTest : public testing::TestWithParam<ParseCase> {};

TEST_P(PlatformParseTest, Parses) {
  const ParseCase& c = GetParam();
  auto p = Platform::Parse(c.input);
  ASSERT_TRUE(p.ok()) << c.input << ": " << p.status();
  EXPECT_EQ(p->os, c.os);
  EXPECT_EQ(p->architecture, c.arch);
  EXPECT_EQ(p->variant, c.variant);
}

INSTANTIATE_TEST_SUITE_P(
    Spellings, PlatformParseTest,
    testing::Values(ParseCase{"linux/amd64", "linux", "amd64", ""},
                    ParseCase{"linux/x86_64", "linux", "amd64", ""},
                    ParseCase{"Linux/X86-64", "linux", "amd64", ""},
                    ParseCase{"linux/amd64/v3", "linux", "amd64", "v3"},
                    ParseCase{"linux/arm64", "linux", "arm64", ""},
                    ParseCase{"linux/arm64/v8", "linux", "arm64", "v8"},
                    ParseCase{"linux/aarch64/8", "linux", "arm64", "v8"},
                    ParseCase{"linux/arm64/v8.0", "linux", "arm64", "v8"},
                    ParseCase{"linux/arm/v7", "linux", "arm", "v7"},
                    ParseCase{"linux/arm", "linux", "arm", "v7"},
                    ParseCase{"linux/arm/6", "linux", "arm", "v6"},
                    ParseCase{"linux/armhf", "linux", "arm", "v7"},
                    ParseCase{"linux/armel", "linux", "arm", "v6"},
                    ParseCase{"linux/i686", "linux", "386", ""},
                    ParseCase{"linux/ppc64le", "linux", "ppc64le", ""},
                    ParseCase{"windows/amd64", "windows", "amd64", ""}));

TEST(PlatformTest, SingleComponentCompletedFromHost) {
  Platform host = Platform::Host();
  auto os_only = Platform::Parse("linux");
  ASSERT_TRUE(os_only.ok());
  EXPECT_EQ(os_only->os, "linux");
  EXPECT_EQ(os_only->architecture, host.architecture);
  auto arch_only = Platform::Parse("s390x");
  ASSERT_TRUE(arch_only.ok());
  EXPECT_EQ(arch_only->os, host.os);
  EXPECT_EQ(arch_only->architecture, "s390x");
}

class PlatformRejectTest : public testing::TestWithParam<std::string> {};

TEST_P(PlatformRejectTest, InvalidArgument) {
  auto p = Platform::Parse(GetParam());
  ASSERT_FALSE(p.ok()) << GetParam();
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Malformed, PlatformRejectTest,
                         testing::Values("", "/", "linux/", "/amd64", "linux//v7",
                                         "linux/arm/v7/extra", "linux/am d64", "plan10",
                                         "linux/amd64\n", std::string("linux/\0", 7),
                                         "linux/" + std::string(100, 'a')));

TEST(PlatformTest, String) {
  EXPECT_EQ(P("linux", "arm", "v7").String(), "linux/arm/v7");
  EXPECT_EQ(P("linux", "amd64").String(), "linux/amd64");
}

struct MatchCase {
  Platform want, candidate;
  bool matches;
};

class PlatformMatchTest : public testing::TestWithParam<MatchCase> {};

TEST_P(PlatformMatchTest, Matches) {
  const MatchCase& c = GetParam();
  EXPECT_EQ(c.want.Matches(c.candidate), c.matches)
      << "want " << c.want.String() << " candidate " << c.candidate.String();
}

INSTANTIATE_TEST_SUITE_P(
    Rules, PlatformMatchTest,
    testing::Values(
        MatchCase{P("linux", "amd64"), P("linux", "amd64"), true},
        MatchCase{P("linux", "amd64"), P("linux", "x86_64"), true},
        MatchCase{P("linux", "amd64"), P("linux", "arm64"), false},
        MatchCase{P("linux", "amd64"), P("windows", "amd64"), false},
        MatchCase{P("linux", "amd64"), P("linux", "amd64", "v2"), false},
        MatchCase{P("linux", "amd64", "v3"), P("linux", "amd64"), true},
        MatchCase{P("linux", "amd64", "v3"), P("linux", "amd64", "v2"), true},
        MatchCase{P("linux", "amd64", "v3"), P("linux", "amd64", "v4"), false},
        MatchCase{P("linux", "amd64", "v2"), P("linux", "amd64", "v1"), true},
        MatchCase{P("linux", "arm64"), P("linux", "arm64", "v8"), true},
        MatchCase{P("linux", "arm64", "v8"), P("linux", "arm64"), true},
        MatchCase{P("linux", "aarch64"), P("linux", "arm64", "v8"), true},
        MatchCase{P("linux", "arm64", "v8"), P("linux", "arm64", "v9"), false},
        MatchCase{P("linux", "arm64", "v8"), P("linux", "arm", "v7"), false},
        MatchCase{P("linux", "arm", "v7"), P("linux", "arm", "v6"), true},
        MatchCase{P("linux", "arm", "v7"), P("linux", "arm", "v5"), true},
        MatchCase{P("linux", "arm", "v6"), P("linux", "arm", "v7"), false},
        MatchCase{P("linux", "arm", "v7"), P("linux", "arm"), true},
        MatchCase{P("linux", "armhf"), P("linux", "arm", "v7"), true},
        MatchCase{P("linux", "arm", "v8"), P("linux", "arm", "v7"), true},
        MatchCase{P("linux", "ppc64le"), P("linux", "ppc64le"), true},
        MatchCase{P("linux", "riscv64"), P("linux", "riscv64", "rva22"), false},
        MatchCase{P("linux", "amd64"), P("", ""), false},
        MatchCase{P("linux", "arm", "vx"), P("linux", "arm", "v6"), false}));

TEST(PlatformTest, ExactlyMatches) {
  EXPECT_TRUE(P("linux", "arm64").ExactlyMatches(P("linux", "arm64", "v8")));
  EXPECT_TRUE(P("linux", "arm", "v7").ExactlyMatches(P("linux", "armhf")));
  EXPECT_FALSE(P("linux", "arm", "v7").ExactlyMatches(P("linux", "arm", "v6")));
  EXPECT_FALSE(P("linux", "amd64", "v3").ExactlyMatches(P("linux", "amd64")));
}

}  // namespace
}  // namespace slipstream::remote
