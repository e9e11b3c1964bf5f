// SPDX-License-Identifier: Apache-2.0
#pragma once

// Hand-built tar members for tests: ustar/GNU headers with correct checksums, PAX records,
// GNU long names, base-256 numbers. Deliberately independent of testkit/tar_writer.h.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace slipstream::unpack::testing {

struct TestHeader {
  std::string name;
  std::string linkname;
  char typeflag = '0';
  uint32_t mode = 0644;
  int64_t uid = 0;
  int64_t gid = 0;
  int64_t size = 0;
  int64_t mtime = 1700000000;
  std::string uname;
  std::string gname;
  uint32_t devmajor = 0;
  uint32_t devminor = 0;
  std::string prefix;        // POSIX ustar prefix field
  bool gnu_magic = false;    // "ustar  \0" instead of "ustar\0" "00"
  bool base256_size = false; // write size (and uid) in base-256
  bool v7 = false;           // no magic at all
};

// One 512-byte header block with a valid checksum.
std::string HeaderBlock(const TestHeader& h);
// `data` padded with zeros to a multiple of 512.
std::string Padded(const std::string& data);
// One PAX record "<len> key=value\n".
std::string PaxRecord(const std::string& key, const std::string& value);
// A PAX extended header member ('x' or 'g') carrying `records` (in order).
std::string PaxMember(const std::vector<std::pair<std::string, std::string>>& records,
                      char typeflag = 'x');
// A GNU long name ('L') or long link ('K') member.
std::string GnuLongMember(const std::string& value, char typeflag);
// The end-of-archive marker (two zero blocks).
std::string EndMarker();

// Builds a tar stream member by member.
class TestTar {
 public:
  TestTar& File(const std::string& name, const std::string& content, uint32_t mode = 0644);
  TestTar& Dir(const std::string& name, uint32_t mode = 0755);
  TestTar& Symlink(const std::string& name, const std::string& target);
  TestTar& Hardlink(const std::string& name, const std::string& target);
  // Any header plus content (size is taken from content unless h.size is set).
  TestTar& Member(TestHeader h, const std::string& content = "");
  TestTar& Raw(const std::string& bytes);
  // The stream with the end marker.
  std::string Finish() const { return data_ + EndMarker(); }
  // The stream without it.
  const std::string& data() const { return data_; }

 private:
  std::string data_;
};

}  // namespace slipstream::unpack::testing
