// SPDX-License-Identifier: Apache-2.0
#include "fuzz/tar_seeds.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/fd.h"

namespace slipstream::fuzz {
namespace {

constexpr size_t kBlock = 512;

// The header fields a seed may set; the rest are zero. Numbers are octal unless `base256`.
struct Header {
  std::string name;
  char type = '0';
  int64_t size = 0;
  std::string linkname;
  int64_t mode = 0644;
  int64_t uid = 0, gid = 0;
  int64_t mtime = 1700000000;
  int64_t devmajor = 0, devminor = 0;
  std::string prefix;
  enum class Magic { kPosix, kGnu, kNone } magic = Magic::kPosix;
  bool base256 = false;  // size, uid and gid as GNU base-256
};

void Octal(char* field, size_t width, int64_t value) {
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
}

void Base256(char* field, size_t width, int64_t value) {
  for (size_t i = width; i-- > 1;) {
    field[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  field[0] = static_cast<char>(0x80);
}

std::string Block(const Header& f) {
  char h[kBlock] = {};
  std::memcpy(h, f.name.data(), std::min<size_t>(f.name.size(), 100));
  Octal(h + 100, 8, f.mode);
  if (f.base256) {
    Base256(h + 108, 8, f.uid);
    Base256(h + 116, 8, f.gid);
    Base256(h + 124, 12, f.size);
  } else {
    Octal(h + 108, 8, f.uid);
    Octal(h + 116, 8, f.gid);
    Octal(h + 124, 12, f.size);
  }
  Octal(h + 136, 12, f.mtime);
  h[156] = f.type;
  std::memcpy(h + 157, f.linkname.data(), std::min<size_t>(f.linkname.size(), 100));
  if (f.magic == Header::Magic::kPosix) std::memcpy(h + 257, "ustar\0" "00", 8);
  if (f.magic == Header::Magic::kGnu) std::memcpy(h + 257, "ustar  \0", 8);
  if (f.magic != Header::Magic::kNone) {
    std::memcpy(h + 265, "root", 4);
    std::memcpy(h + 297, "root", 4);
    Octal(h + 329, 8, f.devmajor);
    Octal(h + 337, 8, f.devminor);
  }
  if (f.magic == Header::Magic::kPosix) {
    std::memcpy(h + 345, f.prefix.data(), std::min<size_t>(f.prefix.size(), 155));
  }
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(h + 148, 8, "%06o", sum);
  return std::string(h, kBlock);
}

std::string Padded(const std::string& data) {
  return data + std::string((kBlock - data.size() % kBlock) % kBlock, '\0');
}

std::string PaxRecord(const std::string& key, const std::string& value) {
  const size_t body = key.size() + value.size() + 3;
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) ++len;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

// Builds an archive member by member.
class Archive {
 public:
  Archive& Add(Header h, const std::string& data = "") {
    if (h.type == '0' || h.type == '\0' || h.type == 'x' || h.type == 'g' || h.type == 'L' ||
        h.type == 'K') {
      h.size = static_cast<int64_t>(data.size());
    }
    out_ += Block(h) + Padded(data);
    return *this;
  }
  Archive& File(const std::string& name, const std::string& data) {
    return Add(Header{.name = name}, data);
  }
  Archive& Dir(const std::string& name) { return Add(Header{.name = name, .type = '5', .mode = 0755}); }
  Archive& Link(const std::string& name, char type, const std::string& target) {
    return Add(Header{.name = name, .type = type, .linkname = target, .mode = 0777});
  }
  Archive& Pax(char type, const std::vector<std::pair<std::string, std::string>>& records) {
    std::string body;
    for (const auto& [k, v] : records) body += PaxRecord(k, v);
    return Add(Header{.name = "PaxHeaders.0/x", .type = type}, body);
  }
  Archive& Gnu(char type, const std::string& value) {
    return Add(Header{.name = "././@LongLink", .type = type, .magic = Header::Magic::kGnu},
               value + std::string(1, '\0'));
  }
  std::string Finish() const { return out_ + std::string(2 * kBlock, '\0'); }
  std::string Unfinished() const { return out_; }

 private:
  std::string out_;
};

std::map<std::string, std::string> Seeds() {
  std::map<std::string, std::string> s;
  const std::string long_name = std::string(120, 'n') + "/" + std::string(90, 'f');
  s["basic.tar"] = Archive()
                       .Dir("./")
                       .Dir("etc/")
                       .File("etc/hostname", "slipstream\n")
                       .Link("etc/localtime", '2', "../usr/share/zoneinfo/UTC")
                       .Link("etc/hostname.bak", '1', "etc/hostname")
                       .Add(Header{.name = "run/fifo", .type = '6'})
                       .Finish();
  s["devices.tar"] = Archive()
                         .Add(Header{.name = "dev/null", .type = '3', .mode = 0666, .devmajor = 1,
                                     .devminor = 3})
                         .Add(Header{.name = "dev/loop0", .type = '4', .mode = 0660,
                                     .devmajor = 7, .devminor = 0})
                         .Finish();
  s["pax.tar"] = Archive()
                     .Pax('x', {{"path", long_name},
                                {"mtime", "1700000000.123456789"},
                                {"atime", "-1.5"},
                                {"uid", "100000"},
                                {"gid", "100000"},
                                {"uname", "nobody"},
                                {"SCHILY.xattr.user.comment", std::string("bin\0ary", 7)},
                                {"SCHILY.xattr.security.capability", "\x01\x00\x00\x02"}})
                     .File("placeholder", "content behind a PAX path\n")
                     .Pax('x', {{"linkpath", long_name}, {"size", "0"}})
                     .Link("longlink", '2', "short")
                     .Finish();
  s["pax-global.tar"] = Archive()
                            .Pax('g', {{"uid", "7"}, {"comment", "global"}, {"mtime", "5"}})
                            .File("a", "A")
                            .Pax('g', {{"uid", ""}})
                            .File("b", "B")
                            .Finish();
  s["gnu-long.tar"] = Archive()
                          .Gnu('L', long_name)
                          .Add(Header{.name = long_name.substr(0, 100), .magic = Header::Magic::kGnu},
                               "gnu long name\n")
                          .Gnu('K', long_name)
                          .Gnu('L', "dir/link")
                          .Add(Header{.name = "dir/link", .type = '1',
                                      .linkname = long_name.substr(0, 100),
                                      .magic = Header::Magic::kGnu})
                          .Finish();
  s["gnu-base256.tar"] = Archive()
                             .Add(Header{.name = "big-ids", .uid = 1LL << 40, .gid = 70000,
                                         .magic = Header::Magic::kGnu, .base256 = true},
                                  "x")
                             .Finish();
  s["ustar-prefix.tar"] = Archive()
                              .Add(Header{.name = "file.txt", .prefix = std::string(150, 'p')},
                                   "prefixed\n")
                              .Finish();
  s["v7.tar"] = Archive()
                    .Add(Header{.name = "olddir/", .type = '\0', .magic = Header::Magic::kNone})
                    .Add(Header{.name = "olddir/file", .type = '\0', .magic = Header::Magic::kNone},
                         "v7\n")
                    .Finish();
  s["whiteouts.tar"] = Archive()
                           .Dir("usr/")
                           .File("usr/.wh.gone", "")
                           .Dir("var/")
                           .File("var/.wh..wh..opq", "")
                           .File("usr/bin", "replaced\n")
                           .Dir("usr/bin/")
                           .Finish();
  s["escape.tar"] = Archive()
                        .File("../outside", "x")
                        .File("/abs", "x")
                        .Link("up", '2', "../../..")
                        .File("up/through", "x")
                        .Link("canary", '2', "/tmp/slipstream-tar-fuzz-canary")
                        .File("canary/pwned", "x")
                        .Link("hard", '1', "../b/layer/x")
                        .Finish();
  s["sparse.tar"] = Archive()
                        .Pax('x', {{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}})
                        .File("sparse", "s")
                        .Finish();
  s["truncated.tar"] = Archive().File("cut", std::string(700, 'c')).Unfinished().substr(0, 900);
  return s;
}

}  // namespace

bool WriteTarSeeds(const std::string& out_dir) {
  const std::string dir = out_dir + "/tar_fuzzer";
  absl::Status st = MakeDirs(dir);
  for (const auto& [name, bytes] : Seeds()) {
    if (st.ok()) st = WriteFileAtomic(dir + "/" + name, bytes);
  }
  if (!st.ok()) std::fprintf(stderr, "tar seeds: %s\n", st.ToString().c_str());
  return st.ok();
}

}  // namespace slipstream::fuzz
