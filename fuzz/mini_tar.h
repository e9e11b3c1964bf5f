// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace slipstream::fuzz {

// Writes a small ustar archive in memory, with PAX records where asked: just enough tar to
// make the sample layers the fuzz targets and their seed corpus are built from. Values are
// fixed (uid/gid 0, mtime 1700000000) so the output is byte-for-byte reproducible. A plain
// value type; not thread-safe.
class MiniTar {
 public:
  // Adds one entry. `type` is the ustar typeflag ('0' file, '5' dir, '2' symlink, '1'
  // hardlink, '6' fifo); `data` is written only for files. `pax` records go into an 'x'
  // header in front of the entry.
  void Add(const std::string& name, char type, const std::string& data = "",
           const std::string& linkname = "", const std::map<std::string, std::string>& pax = {});

  // The archive with its two zero end blocks.
  std::string Finish() const;

 private:
  void Header(const std::string& name, char type, int64_t size, const std::string& linkname,
              int64_t mode);
  void Data(const std::string& data);

  std::string out_;
};

}  // namespace slipstream::fuzz
