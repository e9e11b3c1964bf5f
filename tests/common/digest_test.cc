// SPDX-License-Identifier: Apache-2.0
#include "common/digest.h"

#include "gtest/gtest.h"

namespace slipstream {
namespace {

TEST(Digest, ParsesValidSha256) {
  auto d = Digest::Parse("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->algorithm(), "sha256");
  EXPECT_EQ(d->hex().size(), 64u);
  EXPECT_EQ(d->Short(), "sha256:e3b0c44298fc");
}

TEST(Digest, RejectsMalformed) {
  for (const char* bad : {"", "sha256", "sha256:", "md5:d41d8cd98f00b204e9800998ecf8427e",
                          "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                          "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
                          "sha256:../../../../etc/passwd00000000000000000000000000000000000000000000"}) {
    EXPECT_EQ(Digest::Parse(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Sha256, KnownVectorsAndIncremental) {
  EXPECT_EQ(Sha256Of("").str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Of("abc").str(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256Hasher h;
  h.Update("a");
  h.Update("bc");
  EXPECT_EQ(h.Finish(), Sha256Of("abc"));
  // Finish resets: the next digest covers only what follows.
  h.Update("abc");
  EXPECT_EQ(h.Finish(), Sha256Of("abc"));
}

}  // namespace
}  // namespace slipstream
