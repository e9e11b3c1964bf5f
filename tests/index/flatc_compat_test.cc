// SPDX-License-Identifier: Apache-2.0
// Decodes our zTOC bytes with flatc and an independently written schema.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/fd.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "index/checkpoints.h"
#include "index/ztoc_format.h"
#include "tests/index/test_layers.h"

#ifndef SLIPSTREAM_INDEX_TEST_DIR
#error "SLIPSTREAM_INDEX_TEST_DIR must name tests/index"
#endif

namespace slipstream::index {
namespace {

TEST(FlatcCompatTest, IndependentSchemaDecodesOurZtoc) {
  testing::TarBuilder t;
  t.AddDir("etc/");
  t.AddFile("etc/hosts", testing::PseudoRandomText(150000, 3));
  t.AddPax({{"SCHILY.xattr.user.k", "v"}});
  t.AddFile("etc/x", "x");
  t.AddSymlink("etc/l", "hosts");
  auto blob = testing::Compress("gzip", t.Finish());
  ASSERT_TRUE(blob.ok());
  auto z = testing::BuildTestZtoc(*blob, 32 << 10);
  ASSERT_TRUE(z.ok()) << z.status();
  ASSERT_GE(z->SpanCount(), 2);
  auto bytes = SerializeZtoc(*z);
  ASSERT_TRUE(bytes.ok());

  auto dir = TempDir::Create("flatc-");
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(WriteFileAtomic(dir->Join("ztoc.bin"), *bytes).ok());
  auto run = RunSubprocess({"flatc", "--json", "--strict-json", "--defaults-json",
                            "--raw-binary", "-o", dir->path(),
                            std::string(SLIPSTREAM_INDEX_TEST_DIR) + "/ztoc_independent.fbs",
                            "--", dir->Join("ztoc.bin")});
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->stderr_data;
  auto text = ReadFileToString(dir->Join("ztoc.json"));
  ASSERT_TRUE(text.ok()) << text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded());

  EXPECT_EQ(j["version"], "0.9");
  EXPECT_EQ(j["build_tool_identifier"], "slipstream-test");
  EXPECT_EQ(j["compressed_archive_size"], z->compressed_archive_size);
  EXPECT_EQ(j["uncompressed_archive_size"], z->uncompressed_archive_size);
  const auto& info = j["compression_info"];
  EXPECT_EQ(info["compression_algorithm"], "Gzip");
  EXPECT_EQ(info["max_span_id"], z->SpanCount() - 1);
  ASSERT_EQ(info["span_digests"].size(), z->span_digests.size());
  EXPECT_EQ(info["span_digests"][1], z->span_digests[1].str());
  std::string blob_bytes = EncodeGzipCheckpoints(z->span_size, z->checkpoints);
  ASSERT_EQ(info["checkpoints"].size(), blob_bytes.size());
  EXPECT_EQ(info["checkpoints"][0], z->SpanCount());  // little-endian count, low byte first
  EXPECT_EQ(info["checkpoints"][12], 10);              // checkpoint 0: in = 10

  const auto& md = j["toc"]["metadata"];
  ASSERT_EQ(md.size(), 4u);
  EXPECT_EQ(md[0]["name"], "etc/");
  EXPECT_EQ(md[0]["type"], "dir");
  EXPECT_EQ(md[0]["mode"], 0755);
  EXPECT_EQ(md[1]["name"], "etc/hosts");
  EXPECT_EQ(md[1]["type"], "reg");
  EXPECT_EQ(md[1]["uncompressed_offset"], 1024);
  EXPECT_EQ(md[1]["uncompressed_size"], 150000);
  EXPECT_EQ(md[1]["uid"], 1000);
  EXPECT_EQ(md[1]["uname"], "user");
  EXPECT_EQ(md[1]["mod_time"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(md[2]["name"], "etc/x");
  ASSERT_EQ(md[2]["xattrs"].size(), 1u);
  EXPECT_EQ(md[2]["xattrs"][0]["key"], "SCHILY.xattr.user.k");
  EXPECT_EQ(md[2]["xattrs"][0]["value"], "v");
  EXPECT_EQ(md[3]["type"], "symlink");
  EXPECT_EQ(md[3]["linkname"], "hosts");
}

}  // namespace
}  // namespace slipstream::index
