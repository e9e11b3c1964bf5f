// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest.h"
#include "index/ztoc.h"
#include "remote/blob_reader.h"

namespace slipstream::index::testing {

// An in-memory blob that counts what is read from it. Thread-safe.
class MemoryBlobReader : public remote::BlobReader {
 public:
  explicit MemoryBlobReader(std::string data) : data_(std::move(data)), digest_(Sha256Of(data_)) {}
  const Digest& digest() const override { return digest_; }
  int64_t size() const override { return static_cast<int64_t>(data_.size()); }
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) override;

  // Flips every bit of the byte at `offset` in what later reads return.
  void Corrupt(int64_t offset) { data_[offset] = static_cast<char>(~data_[offset]); }
  int64_t reads() const { return reads_; }
  int64_t bytes_read() const { return bytes_read_; }

 private:
  std::string data_;
  Digest digest_;
  std::atomic<int64_t> reads_{0};
  std::atomic<int64_t> bytes_read_{0};
};

// Deterministic, moderately compressible bytes (words from a small vocabulary mixed with
// noise), so deflate emits many blocks.
std::string PseudoRandomText(size_t size, uint64_t seed);

// Header fields of a TarBuilder entry.
struct TarAttrs {
  int64_t mode = 0644;
  int64_t uid = 1000;
  int64_t gid = 1000;
  int64_t mtime = 1700000000;
  std::string uname = "user";
  std::string gname = "group";
  bool gnu_magic = false;  // "ustar  \0" instead of "ustar\0" "00"
  std::string prefix;      // ustar prefix field
};

// Hand-built tar archives, for headers GNU tar will not write on demand (PAX records, xattrs,
// GNU long names, odd sizes and times).
class TarBuilder {
 public:
  using Attrs = TarAttrs;
  void AddFile(const std::string& name, const std::string& data, const Attrs& a = Attrs());
  void AddDir(const std::string& name, const Attrs& a = Attrs());
  void AddSymlink(const std::string& name, const std::string& target, const Attrs& a = Attrs());
  void AddHardlink(const std::string& name, const std::string& target, const Attrs& a = Attrs());
  void AddFifo(const std::string& name, const Attrs& a = Attrs());
  void AddChar(const std::string& name, int64_t major, int64_t minor, const Attrs& a = Attrs());
  // A PAX extended header ('x') for the next entry.
  void AddPax(const std::map<std::string, std::string>& records);
  // A GNU long name ('L') for the next entry.
  void AddGnuLongName(const std::string& name);
  // Raw header with any typeflag and size, followed by `data`.
  void AddRaw(const std::string& name, char typeflag, const std::string& data,
              const std::string& linkname = "", const Attrs& a = Attrs());
  // The archive with its two end blocks.
  std::string Finish() const;
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Runs a program with `input` on stdin and returns its stdout; errors when it fails.
absl::StatusOr<std::string> RunFilter(const std::vector<std::string>& argv,
                                      const std::string& input);

// Compressors used to make layers: "gzip" (gzip -n -6), "gzip1" (gzip -n -1), "pigz",
// "members" (the input cut at odd offsets, each part gzip -1 compressed, concatenated).
absl::StatusOr<std::string> Compress(const std::string& tool, const std::string& tar);

// `tar -xO` of one member of an uncompressed tar.
absl::StatusOr<std::string> TarExtract(const std::string& tar, const std::string& name);

// Builds a zTOC of `blob` with min_layer_size 0, feeding it in `chunk` sized writes.
absl::StatusOr<Ztoc> BuildTestZtoc(const std::string& blob, int64_t span_size,
                                   size_t chunk = 1 << 20);

// A layer made with GNU tar from a directory tree on disk, shared by the tests of one binary
// (built on first use): a 30 MB file crossing many spans, files of many sizes (0, 1, 511,
// 512, 513, ...), nested directories, an empty directory, a symlink, a hardlink and a name
// longer than 100 bytes (GNU 'L' record). `files` maps each regular file's archive name to
// its content as `tar -xO` extracts it; `layers` maps compressor (see Compress) to blob.
struct GnuTarCorpus {
  std::string tar;
  std::string tar_path;  // the uncompressed tar on disk
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> layers;
  std::string big_name;  // the 30 MB file
};
const GnuTarCorpus& Corpus();

// Raw flatbuffer writer that skips validation, for hostile and legacy zTOCs: the zTOC as
// `z` says, with these parts replaced when set.
struct RawOverrides {
  std::optional<std::string> checkpoints_blob;
  std::optional<int32_t> max_span_id;
  std::optional<std::vector<std::string>> span_digests;
  std::optional<int8_t> compression_algorithm;
};
std::string SerializeRaw(const Ztoc& z, const RawOverrides& o = {});

}  // namespace slipstream::index::testing
