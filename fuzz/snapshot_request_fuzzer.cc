// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the Snapshots request fields slipstream interprets itself (everything
// else is stored as opaque strings, and snapshot directories are named by numeric ids, never
// by keys). The input is NUL-separated fields:
//   filters '\n'-separated | name (key) | parent | labels "k=v" '\n'-separated |
//   cri.image-ref | cri.manifest-digest
// The filters go to SnapshotFilter::Parse (plugin/snapshot_filter.h, ListSnapshotsRequest)
// and, when they parse, are matched against the snapshot the other fields describe, in every
// kind; labels to ValidateLabels (plugin/snapshot_types.h); the CRI labels to the parsers the
// remote and lazy providers use (remote::Reference::Parse, Digest::Parse). Checks: filters
// built by quoting the snapshot's own name, parent and labels match it (and their negations
// do not); ValidateLabels agrees with its documented limits; references and digests that parse
// print in a canonical form that parses back equal. Seeds: fuzz/corpus/snapshot_request_fuzzer.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/digest.h"
#include "fuzz/fuzz_check.h"
#include "plugin/snapshot_filter.h"
#include "plugin/snapshot_types.h"
#include "remote/reference.h"

namespace slipstream::fuzz {
namespace {

// Label values containerd accepts are at most 4096 bytes with their key; bound what we hand
// to regexps the same way for names, so one input stays fast.
constexpr size_t kMaxField = plugin::kMaxLabelBytes;

// `s` cut at every `sep` (std::string_view: Debian's Abseil has its own string_view).
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  for (size_t next; (next = s.find(sep, pos)) != std::string_view::npos; pos = next + 1) {
    out.push_back(s.substr(pos, next - pos));
  }
  out.push_back(s.substr(pos));
  return out;
}

std::string Quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

bool Matches(const std::string& filter, const plugin::SnapshotInfo& info) {
  absl::StatusOr<plugin::SnapshotFilter> f = plugin::SnapshotFilter::Parse({filter});
  FUZZ_CHECK(f.ok());
  return f->Match(info);
}

void CheckFilters(const std::vector<std::string>& filters, const plugin::SnapshotInfo& info) {
  absl::StatusOr<plugin::SnapshotFilter> parsed = plugin::SnapshotFilter::Parse(filters);
  if (parsed.ok()) {
    for (plugin::SnapshotKind kind : {plugin::SnapshotKind::kActive, plugin::SnapshotKind::kView,
                                      plugin::SnapshotKind::kCommitted}) {
      plugin::SnapshotInfo copy = info;
      copy.kind = kind;
      (void)parsed->Match(copy);
    }
  } else {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
  }
  // Filters quoting the snapshot's own fields select it.
  FUZZ_CHECK(Matches("name==" + Quoted(info.name), info));
  FUZZ_CHECK(!Matches("name!=" + Quoted(info.name), info));
  FUZZ_CHECK(Matches("parent==" + Quoted(info.parent), info));
  FUZZ_CHECK(Matches("kind==" + std::string(plugin::KindName(info.kind)), info));
  for (const auto& [key, value] : info.labels) {
    FUZZ_CHECK(Matches("labels." + Quoted(key), info));
    FUZZ_CHECK(Matches("labels." + Quoted(key) + "==" + Quoted(value), info));
    FUZZ_CHECK(!Matches("labels." + Quoted(key) + "!=" + Quoted(value), info));
  }
}

void CheckLabels(const plugin::Labels& labels) {
  bool valid = true;
  for (const auto& [key, value] : labels) {
    valid &= !key.empty() && key.size() + value.size() <= plugin::kMaxLabelBytes;
  }
  absl::Status s = plugin::ValidateLabels(labels);
  FUZZ_CHECK(s.ok() == valid);
  if (!s.ok()) FUZZ_CHECK(s.code() == absl::StatusCode::kInvalidArgument && s.message().size() < 400);
}

void CheckReference(std::string_view text) {
  absl::StatusOr<remote::Reference> ref = remote::Reference::Parse(text);
  if (!ref.ok()) {
    FUZZ_CHECK(ref.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(!ref->registry.empty() && !ref->repository.empty());
  FUZZ_CHECK(!ref->tag.empty() || !ref->digest.empty());
  if (!ref->digest.empty()) FUZZ_CHECK(Digest::Parse(ref->digest).ok());
  FUZZ_CHECK(ref->Locator() == ref->registry + "/" + ref->repository);
  FUZZ_CHECK(ref->TagOrDigest() == (ref->digest.empty() ? ref->tag : ref->digest));
  absl::StatusOr<remote::Reference> again = remote::Reference::Parse(ref->String());
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *ref);
  // The manifest URL path component never carries path syntax.
  FUZZ_CHECK(ref->TagOrDigest().find_first_of("/?#% ") == std::string::npos);
  FUZZ_CHECK(ref->repository.find("..") == std::string::npos);
}

void CheckDigest(std::string_view text) {
  absl::StatusOr<Digest> d = Digest::Parse(text);
  if (!d.ok()) return;
  FUZZ_CHECK(d->str() == text);
  FUZZ_CHECK(std::string(d->algorithm()) + ":" + std::string(d->hex()) == d->str());
  FUZZ_CHECK(d->hex().find_first_not_of("0123456789abcdef") == std::string_view::npos);
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipstream;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> fields = fuzz::Split(input, '\0');
  fields.resize(6);
  for (std::string_view& f : fields) f = f.substr(0, fuzz::kMaxField);

  plugin::SnapshotInfo info;
  info.name = std::string(fields[1]);
  info.parent = std::string(fields[2]);
  info.kind = plugin::SnapshotKind::kActive;
  for (std::string_view line : fuzz::Split(fields[3], '\n')) {
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    info.labels[std::string(line.substr(0, eq))] =
        eq == std::string_view::npos ? std::string() : std::string(line.substr(eq + 1));
  }
  fuzz::CheckLabels(info.labels);
  std::vector<std::string> filters;
  for (std::string_view f : fuzz::Split(fields[0], '\n')) filters.emplace_back(f);
  fuzz::CheckFilters(filters, info);
  fuzz::CheckReference(fields[4]);
  fuzz::CheckDigest(fields[5]);
  return 0;
}
