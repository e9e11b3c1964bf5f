// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "remote/http.h"

namespace slipstream::remote {

// What a registry host may be used for (containerd hosts.toml "capabilities").
enum HostCapability : uint32_t { kCapPull = 1, kCapResolve = 2, kCapPush = 4 };

// One endpoint serving a registry: a mirror or the upstream server, with its TLS settings and
// extra headers. A plain value type; thread-compatible.
struct RegistryHost {
  std::string scheme = "https";   // "https" or "http"
  std::string host;               // host[:port]
  std::string path = "/v2";       // API root path, no trailing '/'
  uint32_t capabilities = kCapPull | kCapResolve | kCapPush;
  // skip_verify, ca_file, client cert/key. TlsOptions holds one CA file and one client pair:
  // when hosts.toml lists several, the first is used and a warning is logged.
  TlsOptions tls;
  // Extra request headers, in file order; a header with several values appears once per value.
  std::vector<std::pair<std::string, std::string>> headers;

  // "https://host/v2": prepend to "/<repo>/manifests/<ref>".
  std::string BaseUrl() const;
  bool Can(HostCapability cap) const { return (capabilities & cap) != 0; }

  friend bool operator==(const RegistryHost& a, const RegistryHost& b) {
    return a.scheme == b.scheme && a.host == b.host && a.path == b.path &&
           a.capabilities == b.capabilities && a.tls.skip_verify == b.tls.skip_verify &&
           a.tls.ca_file == b.tls.ca_file && a.tls.client_cert_file == b.tls.client_cert_file &&
           a.tls.client_key_file == b.tls.client_key_file && a.headers == b.headers;
  }
};

// Endpoints to try for `registry` (Reference::registry), in order: the [host."…"] entries of
// <hosts_dir>/<dir>/hosts.toml in file order, then the `server` (default
// https://DefaultServer(registry)). <dir> is the registry name with ':' kept ("host:port"),
// falling back to <hosts_dir>/_default when there is no directory for the registry. An empty
// hosts_dir or no file: just the default server. For localhost, 127.0.0.1 and [::1] (any
// port) the default server is plain http, as containerd does. A directory without hosts.toml
// but with *.crt / *.cert+*.key files (docker certs.d layout) yields the default server with
// those as CA and client certificate. InvalidArgument naming the file for malformed TOML or
// unknown values; other read errors as ReadFileToString reports them.
absl::StatusOr<std::vector<RegistryHost>> LoadRegistryHosts(const std::string& hosts_dir,
                                                            std::string_view registry);

// The same from hosts.toml text already read. `base_dir` resolves relative ca/client paths
// (the directory holding the file). InvalidArgument (mentioning "hosts.toml") on bad input.
absl::StatusOr<std::vector<RegistryHost>> ParseHostsToml(std::string_view toml_text,
                                                         std::string_view registry,
                                                         const std::string& base_dir);

// The server used when no hosts.toml says otherwise: https://DefaultServer(registry)/v2,
// or http:// for loopback registries.
RegistryHost DefaultRegistryHost(std::string_view registry);

}  // namespace slipstream::remote
