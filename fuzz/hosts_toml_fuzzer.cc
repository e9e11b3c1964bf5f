// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the hosts.toml parser (remote/hosts.h: ParseHostsToml), which reads
// containerd's registry host configuration (written by node admins or provisioning tools,
// often templated). Whatever parses yields at least the upstream server (last), and every
// endpoint is one we can build a sane URL from: http or https, a host without spaces,
// control bytes, '@', '?', '#' or '/', a clean absolute path, known capabilities, header
// names that are HTTP tokens and values without CR, LF or NUL (no header injection).
// Seeds: fuzz/corpus/hosts_toml_fuzzer, in the style of containerd's docs/hosts.md examples.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "fuzz/fuzz_check.h"
#include "remote/hosts.h"

namespace slipstream::fuzz {
namespace {

constexpr char kRegistry[] = "registry.example.com:5000";
constexpr char kBaseDir[] = "/etc/containerd/certs.d/registry.example.com:5000";

bool CleanHost(const std::string& host) {
  if (host.empty()) return false;
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x21 || u > 0x7e || c == '@' || c == '?' || c == '#' || c == '/' || c == '\\') {
      return false;
    }
  }
  return true;
}

// "" or "/a/b": no empty, "." or ".." segment, no query, fragment or whitespace.
bool CleanPath(const std::string& path) {
  if (path.empty()) return true;
  if (path[0] != '/' || path.back() == '/') return false;
  if (path.find_first_of("?# \t\r\n") != std::string::npos) return false;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    const std::string_view seg = std::string_view(path).substr(pos, slash - pos);
    if (seg.empty() || seg == "." || seg == "..") return false;
    pos = slash + 1;
  }
  return true;
}

// An HTTP field name (RFC 9110 token).
bool IsToken(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

void CheckHost(const remote::RegistryHost& h) {
  FUZZ_CHECK(h.scheme == "http" || h.scheme == "https");
  FUZZ_CHECK(CleanHost(h.host));
  FUZZ_CHECK(CleanPath(h.path));
  FUZZ_CHECK((h.capabilities & ~uint32_t{remote::kCapPull | remote::kCapResolve |
                                         remote::kCapPush}) == 0);
  FUZZ_CHECK(h.BaseUrl() == h.scheme + "://" + h.host + h.path);
  // Headers go on the wire as "name: value\r\n": anything else would inject headers.
  for (const auto& [name, value] : h.headers) {
    FUZZ_CHECK(IsToken(name));
    FUZZ_CHECK(value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos);
  }
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // "several CA files" warnings would be most of the output, and slow.
  slipstream::log::SetLevel(slipstream::log::Level::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipstream;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::vector<remote::RegistryHost>> hosts =
      remote::ParseHostsToml(text, fuzz::kRegistry, fuzz::kBaseDir);
  if (!hosts.ok()) {
    FUZZ_CHECK(hosts.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(!hosts->empty());
  for (const remote::RegistryHost& h : *hosts) fuzz::CheckHost(h);
  // Parsing is a pure function of the text.
  absl::StatusOr<std::vector<remote::RegistryHost>> again =
      remote::ParseHostsToml(text, fuzz::kRegistry, fuzz::kBaseDir);
  FUZZ_CHECK(again.ok() && *again == *hosts);
  return 0;
}
