// SPDX-License-Identifier: Apache-2.0
#include "common/log.h"

#include "gtest/gtest.h"

namespace slipstream::log {
namespace {

TEST(Log, FormatsKeyValuesWithQuoting) {
  std::string line = Format(Level::kWarn, "pull failed",
                            {{"image", "localhost:5000/app:v1"}, {"bytes", 42}, {"ok", false},
                             {"err", "a \"b\"\nc"}});
  EXPECT_NE(line.find(" level=warn msg=\"pull failed\" "), std::string::npos) << line;
  EXPECT_NE(line.find(" image=localhost:5000/app:v1 "), std::string::npos) << line;
  EXPECT_NE(line.find(" bytes=42 "), std::string::npos) << line;
  EXPECT_NE(line.find(" ok=false "), std::string::npos) << line;
  EXPECT_NE(line.find(" err=\"a \\\"b\\\"\\nc\"\n"), std::string::npos) << line;
  EXPECT_EQ(line.rfind("time=", 0), 0u);
  EXPECT_EQ(line.back(), '\n');
}

TEST(Log, ParsesLevels) {
  Level l;
  ASSERT_TRUE(ParseLevel("debug", &l));
  EXPECT_EQ(l, Level::kDebug);
  ASSERT_TRUE(ParseLevel("error", &l));
  EXPECT_EQ(l, Level::kError);
  EXPECT_FALSE(ParseLevel("loud", &l));
}

}  // namespace
}  // namespace slipstream::log
