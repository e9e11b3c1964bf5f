// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "remote/http.h"

namespace slipstream::testkit {

// How names and link targets longer than the 100-byte ustar fields are written.
enum class LongNameStyle {
  // POSIX.1-2001: split at a '/' into the 155-byte ustar prefix when possible, else a PAX
  // extended header ('x') with a `path` / `linkpath` record. Headers carry "ustar\0" "00".
  kPax,
  // GNU: a `././@LongLink` entry of type 'L' (name) or 'K' (link target) before the real
  // header; no prefix split. Headers carry GNU's "ustar  \0" magic and numbers too large for
  // their octal field are written in base-256.
  kGnu,
};

// Everything about a tar entry except its type, name, link target and content. Every field
// has a deterministic default so that the same calls always produce the same bytes.
struct TarEntryOptions {
  // Permission bits including setuid (04000), setgid (02000) and sticky (01000). Default:
  // 0644 for files, 0755 for directories, 0777 for symlinks, 0644 for devices and fifos.
  std::optional<uint32_t> mode;
  int64_t uid = 0;
  int64_t gid = 0;
  std::string uname;  // longer than 31 bytes → PAX `uname` record
  std::string gname;  // longer than 31 bytes → PAX `gname` record
  // Whole seconds go into the header; a sub-second part adds a PAX `mtime` record.
  absl::Time mtime = absl::FromUnixSeconds(1577836800);  // 2020-01-01T00:00:00Z
  // Extended attributes, written as PAX `SCHILY.xattr.<name>` records (values are bytes).
  std::map<std::string, std::string> xattrs;
  // Extra PAX records, written verbatim after the generated ones (for tests of readers).
  std::vector<std::pair<std::string, std::string>> pax_records;
};

// Writes a tar stream (POSIX ustar + PAX, or GNU) into a sink, entry by entry, without
// holding file contents in memory beyond the call that passes them. It is the test bench's
// way to make layers with every entry type a container image may hold: regular files,
// directories, symlinks, hardlinks, character and block devices, fifos, setuid/setgid/sticky
// modes, owners, sub-second mtimes, xattrs, long names and overlay whiteouts.
//
//   std::string tar;
//   TarWriter w(TarWriter::StringSink(&tar));
//   w.AddDir("etc", {});
//   w.AddFile("etc/hosts", "127.0.0.1 localhost\n", {.mode = 0644});
//   w.Finish();
//
// Errors are sticky: after a failed call (a sink error, or a name that cannot be encoded)
// every later call returns the same status without writing. Callers may therefore check only
// Finish(). Names are written as given (no leading "/" or "./" is added or removed); AddDir
// appends the conventional trailing '/'.
//
// Owned by whoever builds the stream; not thread-safe.
class TarWriter {
 public:
  explicit TarWriter(remote::BodySink sink, LongNameStyle style = LongNameStyle::kPax);
  TarWriter(const TarWriter&) = delete;
  TarWriter& operator=(const TarWriter&) = delete;

  // A sink appending to `*out` (which must outlive the writer).
  static remote::BodySink StringSink(std::string* out);

  absl::Status AddFile(std::string_view name, std::string_view content,
                       const TarEntryOptions& options = {});
  // A regular file of `size` bytes read from `fd` (pread from offset 0; the fd's offset is
  // not used). FailedPrecondition when the file holds fewer than `size` bytes.
  absl::Status AddFileFromFd(std::string_view name, int fd, int64_t size,
                             const TarEntryOptions& options = {});
  absl::Status AddDir(std::string_view name, const TarEntryOptions& options = {});
  absl::Status AddSymlink(std::string_view name, std::string_view target,
                          const TarEntryOptions& options = {});
  // A hardlink to `target`, an entry written earlier in the same stream.
  absl::Status AddHardlink(std::string_view name, std::string_view target,
                           const TarEntryOptions& options = {});
  absl::Status AddCharDevice(std::string_view name, uint32_t major, uint32_t minor,
                             const TarEntryOptions& options = {});
  absl::Status AddBlockDevice(std::string_view name, uint32_t major, uint32_t minor,
                              const TarEntryOptions& options = {});
  absl::Status AddFifo(std::string_view name, const TarEntryOptions& options = {});

  // Overlay whiteouts as OCI layers spell them: an empty file "<dir>/.wh.<name>" hides
  // <dir>/<name> of lower layers; "<dir>/.wh..wh..opq" makes <dir> opaque. `dir` may be
  // empty for the layer root.
  absl::Status AddWhiteout(std::string_view dir, std::string_view name,
                           const TarEntryOptions& options = {});
  absl::Status AddOpaqueWhiteout(std::string_view dir, const TarEntryOptions& options = {});

  // A PAX global header ('g') carrying `records`.
  absl::Status AddGlobalPax(const std::vector<std::pair<std::string, std::string>>& records);
  // Writes `bytes` as they are, for tests that need corrupt or unusual streams. The caller
  // keeps the 512-byte block alignment.
  absl::Status AddRaw(std::string_view bytes);

  // Writes the end-of-archive marker (two zero blocks). Nothing may be added afterwards
  // (FailedPrecondition). Returns the first error of the whole stream, if any.
  absl::Status Finish();

  // Bytes written to the sink so far.
  int64_t bytes_written() const { return bytes_written_; }

 private:
  // Writes the headers (PAX or GNU long-name entries first, then ustar) for one entry.
  absl::Status WriteHeaders(char type, std::string_view name, std::string_view link,
                            int64_t size, uint32_t major, uint32_t minor,
                            const TarEntryOptions& options, uint32_t default_mode);
  absl::Status AddSpecial(char type, std::string_view name, std::string_view link,
                          uint32_t major, uint32_t minor, const TarEntryOptions& options,
                          uint32_t default_mode);
  absl::Status WriteGnuLongLink(char type, std::string_view value);
  absl::Status WritePaxHeader(char type, std::string_view name, std::string_view records);
  // Zero bytes that round `size` up to a whole block.
  absl::Status WritePadding(int64_t size);
  absl::Status Emit(std::string_view bytes);
  // The sticky error, or FailedPrecondition after Finish().
  absl::Status CheckWritable() const;
  // Records the first failure and returns it.
  absl::Status Fail(absl::Status status);

  remote::BodySink sink_;
  LongNameStyle style_;
  absl::Status error_;
  bool finished_ = false;
  int64_t bytes_written_ = 0;
};

}  // namespace slipstream::testkit
