// SPDX-License-Identifier: Apache-2.0
#include "tests/fuse/test_layer.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status.h"
#include "index/ztoc_builder.h"
#include "testkit/compress.h"

namespace slipstream::fuse::testing {

absl::StatusOr<std::string> FakeBlob::ReadAt(int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) return absl::InvalidArgumentError("negative read");
  if (offset > static_cast<int64_t>(data_.size())) return absl::OutOfRangeError("past the end");
  ++reads_;
  std::string out;
  {
    absl::MutexLock lock(&mu_);
    if (gate_closed_) {
      ++blocked_;
      mu_.Await(absl::Condition(
          +[](bool* closed) { return !*closed; }, &gate_closed_));
      --blocked_;
    }
    if (!failure_.ok()) return failure_;
    out = data_.substr(offset, length);
    for (const auto& [at, unused] : corrupt_) {
      if (at >= offset && at < offset + static_cast<int64_t>(out.size())) {
        out[at - offset] = static_cast<char>(~out[at - offset]);
      }
    }
  }
  return out;
}

void FakeBlob::FailWith(absl::Status status) {
  absl::MutexLock lock(&mu_);
  failure_ = std::move(status);
}

void FakeBlob::Corrupt(int64_t offset) {
  absl::MutexLock lock(&mu_);
  corrupt_[offset] = true;
}

void FakeBlob::CloseGate() {
  absl::MutexLock lock(&mu_);
  gate_closed_ = true;
}

void FakeBlob::OpenGate() {
  absl::MutexLock lock(&mu_);
  gate_closed_ = false;
}

std::string PseudoText(size_t size, uint64_t seed) {
  static const char* const kWords[] = {"lazy ", "span ", "fuse ", "inode ", "overlay ",
                                       "layer ", "\n", "zran ", "window ", "registry "};
  std::mt19937_64 rng(seed);
  std::string out;
  out.reserve(size + 16);
  while (out.size() < size) {
    uint64_t r = rng();
    if ((r & 7) == 0) {
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((r >> (8 * i)) & 0xff));
    } else {
      out.append(kWords[(r >> 8) % (sizeof(kWords) / sizeof(kWords[0]))]);
    }
  }
  out.resize(size);
  return out;
}

absl::StatusOr<TestLayer> BuildLayer(
    const std::function<absl::Status(testkit::TarWriter&, std::map<std::string, std::string>&)>&
        fill,
    testkit::LongNameStyle style) {
  TestLayer layer;
  {
    testkit::TarWriter w(testkit::TarWriter::StringSink(&layer.tar), style);
    absl::Status filled = fill(w, layer.files);
    if (!filled.ok()) return filled;
    absl::Status finished = w.Finish();
    if (!finished.ok()) return finished;
  }
  absl::StatusOr<std::string> blob = testkit::CompressString(remote::Compression::kGzip, layer.tar);
  if (!blob.ok()) return blob.status();
  index::ZtocBuilderOptions options;
  options.span_size = kTestSpanSize;
  options.min_layer_size = 0;
  options.build_tool_identifier = "slipstream-fuse-test";
  index::ZtocBuilder builder(options);
  absl::Status wrote = builder.Write(*blob);
  if (!wrote.ok()) return wrote;
  absl::StatusOr<std::optional<index::Ztoc>> ztoc = builder.Finish();
  if (!ztoc.ok()) return ztoc.status();
  if (!ztoc->has_value()) return absl::InternalError("no zTOC built");
  layer.ztoc = std::make_shared<const index::Ztoc>(**std::move(ztoc));
  layer.blob = std::make_shared<FakeBlob>(*std::move(blob));
  return layer;
}

namespace {

// Every entry type, mode bit and naming oddity a lower layer can hold.
absl::Status FillRich(testkit::TarWriter& w, std::map<std::string, std::string>& files) {
  auto file = [&](const std::string& name, const std::string& content,
                  testkit::TarEntryOptions o = {}) {
    files[name] = content;
    return w.AddFile(name, content, o);
  };
  testkit::TarEntryOptions root;
  root.mode = 0755;
  SS_RETURN_IF_ERROR(w.AddDir(".", root));
  SS_RETURN_IF_ERROR(w.AddDir("etc", {}));
  SS_RETURN_IF_ERROR(file(kHosts, "127.0.0.1 localhost\n"));
  SS_RETURN_IF_ERROR(w.AddSymlink("etc/localtime", "/usr/share/zoneinfo/Etc/UTC"));
  SS_RETURN_IF_ERROR(w.AddWhiteout("etc", "motd"));
  // "bin" only appears as a parent: an implied directory.
  testkit::TarEntryOptions setuid;
  setuid.mode = 04755;
  SS_RETURN_IF_ERROR(file("bin/tool", "#!/bin/sh\necho tool\n", setuid));
  testkit::TarEntryOptions sticky;
  sticky.mode = 01777;
  SS_RETURN_IF_ERROR(w.AddDir("tmp", sticky));
  testkit::TarEntryOptions setgid;
  setgid.mode = 02775;
  setgid.uid = 1000;
  setgid.gid = 2000;
  SS_RETURN_IF_ERROR(w.AddDir("shared", setgid));
  SS_RETURN_IF_ERROR(file("shared/empty", ""));
  SS_RETURN_IF_ERROR(file(kBigFile, PseudoText(1536 * 1024 + 77, 1)));
  SS_RETURN_IF_ERROR(w.AddHardlink(kBigLink, kBigFile));
  files[kBigLink] = files[kBigFile];
  SS_RETURN_IF_ERROR(w.AddSymlink("rel", "etc/hosts"));
  SS_RETURN_IF_ERROR(w.AddSymlink("longlink", std::string(150, 'l') + "/target"));
  SS_RETURN_IF_ERROR(w.AddDir("dev", {}));
  SS_RETURN_IF_ERROR(w.AddCharDevice("dev/null", 1, 3, {.mode = 0666}));
  SS_RETURN_IF_ERROR(w.AddBlockDevice("dev/sda", 8, 0, {.mode = 0660, .gid = 6}));
  SS_RETURN_IF_ERROR(w.AddFifo("dev/fifo", {}));
  testkit::TarEntryOptions caps;
  caps.xattrs = {{"security.capability", std::string("\x01\x00\x00\x02\x00\x20\x00\x00", 8)},
                 {"user.comment", "hello xattr"},
                 {"trusted.overlay.redirect", "/elsewhere"}};
  SS_RETURN_IF_ERROR(file(kCapsFile, "capable\n", caps));
  testkit::TarEntryOptions nano;
  nano.mtime = absl::FromUnixNanos(kNanoMtimeSec * int64_t{1000000000} + kNanoMtimeNsec);
  nano.uid = 65534;
  nano.gid = 65534;
  SS_RETURN_IF_ERROR(file(kNanoFile, "nanoseconds\n", nano));
  const std::string long_dir = "deep/" + std::string(120, 'd');
  SS_RETURN_IF_ERROR(w.AddDir(long_dir, {}));
  SS_RETURN_IF_ERROR(file(long_dir + "/" + std::string(130, 'f'), PseudoText(9000, 2)));
  SS_RETURN_IF_ERROR(w.AddDir(kOpaqueDir, {}));
  SS_RETURN_IF_ERROR(w.AddOpaqueWhiteout(kOpaqueDir));
  SS_RETURN_IF_ERROR(file(std::string(kOpaqueDir) + "/kept", "kept\n"));
  // A name written twice: the second entry wins.
  SS_RETURN_IF_ERROR(w.AddFile("dup", "first\n"));
  SS_RETURN_IF_ERROR(file("dup", "second and last\n"));
  // Many small files after the big one, so spans hold several files.
  for (int i = 0; i < 40; ++i) {
    SS_RETURN_IF_ERROR(file(absl::StrCat("many/f", i), PseudoText(100 + 997 * i, 10 + i)));
  }
  return absl::OkStatus();
}

}  // namespace

const TestLayer& RichLayer() {
  static const TestLayer* layer = [] {
    absl::StatusOr<TestLayer> built = BuildLayer(FillRich);
    if (!built.ok()) {
      std::fprintf(stderr, "building the rich layer: %s\n", built.status().ToString().c_str());
      std::abort();
    }
    return new TestLayer(*std::move(built));
  }();
  return *layer;
}

TestLayer Fresh(const TestLayer& layer) {
  TestLayer copy = layer;
  copy.blob = std::make_shared<FakeBlob>(layer.blob->data());
  return copy;
}

}  // namespace slipstream::fuse::testing
