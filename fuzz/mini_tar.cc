// SPDX-License-Identifier: Apache-2.0
#include "fuzz/mini_tar.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace slipstream::fuzz {
namespace {

constexpr size_t kBlock = 512;

// An octal field of `width` bytes: digits, then NUL.
void Octal(char* field, size_t width, int64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

// "<len> <key>=<value>\n", where <len> counts the whole record including itself.
std::string PaxRecord(const std::string& key, const std::string& value) {
  size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

}  // namespace

void MiniTar::Header(const std::string& name, char type, int64_t size,
                     const std::string& linkname, int64_t mode) {
  char h[kBlock] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  Octal(h + 100, 8, mode);
  Octal(h + 108, 8, 0);  // uid
  Octal(h + 116, 8, 0);  // gid
  Octal(h + 124, 12, size);
  Octal(h + 136, 12, 1700000000);
  h[156] = type;
  std::memcpy(h + 157, linkname.data(), std::min<size_t>(linkname.size(), 100));
  std::memcpy(h + 257, "ustar\0" "00", 8);
  std::memcpy(h + 265, "root", 4);
  std::memcpy(h + 297, "root", 4);
  // The checksum is computed with its own field as spaces.
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  out_.append(h, kBlock);
}

void MiniTar::Data(const std::string& data) {
  out_ += data;
  out_.append((kBlock - data.size() % kBlock) % kBlock, '\0');
}

void MiniTar::Add(const std::string& name, char type, const std::string& data,
                  const std::string& linkname, const std::map<std::string, std::string>& pax) {
  if (!pax.empty()) {
    std::string records;
    for (const auto& [key, value] : pax) records += PaxRecord(key, value);
    Header("PaxHeaders/entry", 'x', static_cast<int64_t>(records.size()), "", 0644);
    Data(records);
  }
  bool file = type == '0';
  Header(name, type, file ? static_cast<int64_t>(data.size()) : 0, linkname,
         type == '5' ? 0755 : 0644);
  if (file) Data(data);
}

std::string MiniTar::Finish() const { return out_ + std::string(2 * kBlock, '\0'); }

}  // namespace slipstream::fuzz
