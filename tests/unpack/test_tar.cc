// SPDX-License-Identifier: Apache-2.0
#include "tests/unpack/test_tar.h"

#include <cstdio>
#include <cstring>

namespace slipstream::unpack::testing {
namespace {

void PutString(std::string& block, size_t offset, size_t length, const std::string& value) {
  std::memcpy(block.data() + offset, value.data(), std::min(length, value.size()));
}

// Octal, zero-padded to length-1 digits, NUL-terminated.
void PutOctal(std::string& block, size_t offset, size_t length, int64_t value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llo", static_cast<int>(length - 1),
                static_cast<unsigned long long>(value));
  std::memcpy(block.data() + offset, buf, length - 1);
  block[offset + length - 1] = '\0';
}

void PutBase256(std::string& block, size_t offset, size_t length, int64_t value) {
  int64_t v = value;  // arithmetic shifts sign-extend negative values
  for (size_t i = 0; i < length; ++i) {
    block[offset + length - 1 - i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  block[offset] = static_cast<char>(value < 0 ? 0xff : 0x80);
}

}  // namespace

std::string HeaderBlock(const TestHeader& h) {
  std::string b(512, '\0');
  PutString(b, 0, 100, h.name);
  PutOctal(b, 100, 8, h.mode);
  if (h.base256_size) {
    PutBase256(b, 108, 8, h.uid);
    PutBase256(b, 124, 12, h.size);
  } else {
    PutOctal(b, 108, 8, h.uid);
    PutOctal(b, 124, 12, h.size);
  }
  PutOctal(b, 116, 8, h.gid);
  if (h.mtime < 0) {
    PutBase256(b, 136, 12, h.mtime);
  } else {
    PutOctal(b, 136, 12, h.mtime);
  }
  b[156] = h.typeflag;
  PutString(b, 157, 100, h.linkname);
  if (!h.v7) {
    if (h.gnu_magic) {
      PutString(b, 257, 8, std::string("ustar  \0", 8));
    } else {
      PutString(b, 257, 6, std::string("ustar\0", 6));
      PutString(b, 263, 2, "00");
    }
    PutString(b, 265, 32, h.uname);
    PutString(b, 297, 32, h.gname);
    PutOctal(b, 329, 8, h.devmajor);
    PutOctal(b, 337, 8, h.devminor);
    PutString(b, 345, 155, h.prefix);
  }
  std::memset(b.data() + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : b) sum += c;
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%06o", sum);
  std::memcpy(b.data() + 148, buf, 6);
  b[154] = '\0';
  b[155] = ' ';
  return b;
}

std::string Padded(const std::string& data) {
  std::string out = data;
  out.resize((data.size() + 511) / 512 * 512, '\0');
  return out;
}

std::string PaxRecord(const std::string& key, const std::string& value) {
  const size_t body = 1 + key.size() + 1 + value.size() + 1;  // " key=value\n"
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

std::string PaxMember(const std::vector<std::pair<std::string, std::string>>& records,
                      char typeflag) {
  std::string body;
  for (const auto& [k, v] : records) body += PaxRecord(k, v);
  TestHeader h;
  h.name = "PaxHeaders/x";
  h.typeflag = typeflag;
  h.size = static_cast<int64_t>(body.size());
  return HeaderBlock(h) + Padded(body);
}

std::string GnuLongMember(const std::string& value, char typeflag) {
  TestHeader h;
  h.name = "././@LongLink";
  h.typeflag = typeflag;
  h.gnu_magic = true;
  h.size = static_cast<int64_t>(value.size() + 1);
  return HeaderBlock(h) + Padded(value + std::string(1, '\0'));
}

std::string EndMarker() { return std::string(1024, '\0'); }

TestTar& TestTar::File(const std::string& name, const std::string& content, uint32_t mode) {
  TestHeader h;
  h.name = name;
  h.mode = mode;
  return Member(h, content);
}

TestTar& TestTar::Dir(const std::string& name, uint32_t mode) {
  TestHeader h;
  h.name = name;
  h.typeflag = '5';
  h.mode = mode;
  return Member(h);
}

TestTar& TestTar::Symlink(const std::string& name, const std::string& target) {
  TestHeader h;
  h.name = name;
  h.typeflag = '2';
  h.linkname = target;
  h.mode = 0777;
  return Member(h);
}

TestTar& TestTar::Hardlink(const std::string& name, const std::string& target) {
  TestHeader h;
  h.name = name;
  h.typeflag = '1';
  h.linkname = target;
  return Member(h);
}

TestTar& TestTar::Member(TestHeader h, const std::string& content) {
  if (h.size == 0) h.size = static_cast<int64_t>(content.size());
  data_ += HeaderBlock(h);
  data_ += Padded(content);
  return *this;
}

TestTar& TestTar::Raw(const std::string& bytes) {
  data_ += bytes;
  return *this;
}

}  // namespace slipstream::unpack::testing
