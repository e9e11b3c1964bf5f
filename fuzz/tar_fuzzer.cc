// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the tar reader and the layer writer (unpack/), which turn a registry's
// layer bytes into files on the node. Each input is a (decompressed) tar stream:
//  1. TarReader with a recording handler, fed in one piece: the calls arrive in order
//     (OnEntry, OnData..., OnEntryEnd), content adds up to each member's size, only regular
//     files carry content, names are non-empty and modes fit in 07777;
//  2. the same, fed in pieces of pseudo-random sizes: the same calls, bytes and status;
//  3. TarReader into a LayerWriter writing into <sandbox>/a/b/layer, as slipstreamd does (as
//     root): afterwards nothing exists outside `layer` in the sandbox, nor in a canary
//     directory that absolute symlinks in the dictionary point at. The layer is then removed.
//     The sandbox is made in $SLIPSTREAM_TAR_FUZZ_DIR, else /dev/shm, else /tmp.
// Seeds: fuzz/corpus/tar_fuzzer, written by ztoc_seed_gen (fuzz/tar_seeds.cc).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/digest.h"
#include "common/fd.h"
#include "fuzz/fuzz_check.h"
#include "unpack/layer_writer.h"
#include "unpack/tar_reader.h"

namespace slipstream::fuzz {
namespace {

// Absolute symlink targets in fuzz/tar_fuzzer.dict point here.
constexpr char kCanary[] = "/tmp/slipstream-tar-fuzz-canary";

// Records what a TarReader hands its handler, checking the call order as it goes.
class RecordingHandler : public unpack::TarEntryHandler {
 public:
  absl::Status OnEntry(const unpack::TarEntry& e) override {
    FUZZ_CHECK(!in_entry_);
    FUZZ_CHECK(!e.name.empty());
    FUZZ_CHECK(e.size >= 0 && e.uid >= 0 && e.gid >= 0);
    FUZZ_CHECK(e.mode <= 07777);
    FUZZ_CHECK(e.mtime.nsec >= 0 && e.mtime.nsec < 1000000000);
    if (e.type != unpack::TarEntryType::kRegular) FUZZ_CHECK(e.size == 0);
    in_entry_ = true;
    remaining_ = e.size;
    absl::StrAppend(&log_, "entry ", e.name.size(), ":", e.name, " ", static_cast<int>(e.type),
                    " ", e.size, " ", e.linkname.size(), ":", e.linkname, " ", e.mode, " ",
                    e.uid, " ", e.gid, " ", e.mtime.sec, ".", e.mtime.nsec, " ",
                    e.xattrs.size(), " @", e.header_offset, "\n");
    return absl::OkStatus();
  }
  absl::Status OnData(std::string_view data) override {
    FUZZ_CHECK(in_entry_);
    FUZZ_CHECK(static_cast<int64_t>(data.size()) <= remaining_);
    remaining_ -= static_cast<int64_t>(data.size());
    content_.Update(data);
    return absl::OkStatus();
  }
  absl::Status OnEntryEnd() override {
    FUZZ_CHECK(in_entry_ && remaining_ == 0);
    in_entry_ = false;
    absl::StrAppend(&log_, "end ", content_.Finish().str(), "\n");
    return absl::OkStatus();
  }

  // Everything seen, with the final status.
  std::string Result(const absl::Status& status) const {
    // A member whose content stops early is only ever followed by an error.
    if (status.ok()) FUZZ_CHECK(!in_entry_);
    return absl::StrCat(log_, "status ", status.ToString());
  }

 private:
  std::string log_;
  Sha256Hasher content_;
  bool in_entry_ = false;
  int64_t remaining_ = 0;
};

absl::Status ReadAll(unpack::TarReader& reader, std::string_view data) {
  absl::Status s = reader.Write(data);
  if (s.ok()) s = reader.Finish();
  return s;
}

// Feeds `data` in pieces of 1..600 bytes drawn from a generator seeded by the data's size.
absl::Status ReadInPieces(unpack::TarReader& reader, std::string_view data) {
  uint32_t state = static_cast<uint32_t>(data.size()) * 2654435761u + 1;
  while (!data.empty()) {
    state = state * 1103515245u + 12345u;
    const size_t n = std::min<size_t>(data.size(), 1 + (state >> 16) % 600);
    absl::Status s = reader.Write(data.substr(0, n));
    if (!s.ok()) return s;
    data.remove_prefix(n);
  }
  return reader.Finish();
}

std::set<std::string> List(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  FUZZ_CHECK(d != nullptr);
  while (struct dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace(name);
  }
  ::closedir(d);
  return names;
}

// <sandbox>/a/b/layer is the layer root; relative escapes of up to three levels land in b,
// a or the sandbox, which must hold nothing else.
struct Sandbox {
  std::string root, a, b, layer;
};

const Sandbox& GetSandbox() {
  static const Sandbox* sandbox = [] {
    // tmpfs: on ext4, creating and deleting the inodes was most of the time of an input.
    const char* env = std::getenv("SLIPSTREAM_TAR_FUZZ_DIR");
    struct stat st;
    const std::string parent = env != nullptr && *env != '\0' ? env
                               : ::stat("/dev/shm", &st) == 0 ? "/dev/shm"
                                                              : "/tmp";
    std::string tmpl = parent + "/slipstream-tar-fuzz.XXXXXX";
    FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    auto* s = new Sandbox{tmpl, std::string(tmpl) + "/a", std::string(tmpl) + "/a/b",
                          std::string(tmpl) + "/a/b/layer"};
    FUZZ_CHECK(MakeDirs(s->b).ok() && MakeDirs(kCanary).ok());
    std::atexit([] { (void)RemoveAll(GetSandbox().root); });
    return s;
  }();
  return *sandbox;
}

void WriteLayer(std::string_view data) {
  const Sandbox& s = GetSandbox();
  FUZZ_CHECK(::mkdir(s.layer.c_str(), 0700) == 0);
  absl::StatusOr<std::unique_ptr<unpack::LayerWriter>> writer = unpack::LayerWriter::Create(s.layer);
  FUZZ_CHECK(writer.ok());
  unpack::TarReader reader(writer->get());
  absl::Status status = ReadAll(reader, data);
  if (status.ok()) status = (*writer)->Finish();
  writer->reset();

  FUZZ_CHECK(List(s.root) == std::set<std::string>{"a"});
  FUZZ_CHECK(List(s.a) == std::set<std::string>{"b"});
  FUZZ_CHECK(List(s.b) == std::set<std::string>{"layer"});
  FUZZ_CHECK(List(kCanary).empty());
  FUZZ_CHECK(RemoveAll(s.layer).ok());
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* bytes, size_t size) {
  using namespace slipstream;
  const std::string_view data(reinterpret_cast<const char*>(bytes), size);
  fuzz::RecordingHandler whole_handler;
  unpack::TarReader whole(&whole_handler);
  const std::string whole_result = whole_handler.Result(fuzz::ReadAll(whole, data));

  fuzz::RecordingHandler pieces_handler;
  unpack::TarReader pieces(&pieces_handler);
  const std::string pieces_result = pieces_handler.Result(fuzz::ReadInPieces(pieces, data));
  if (whole_result != pieces_result) {
    std::fprintf(stderr, "whole:\n%s\npieces:\n%s\n", whole_result.c_str(), pieces_result.c_str());
  }
  FUZZ_CHECK(whole_result == pieces_result);

  fuzz::WriteLayer(data);
  return 0;
}
