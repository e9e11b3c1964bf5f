// SPDX-License-Identifier: Apache-2.0
#include "remote/hosts.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <toml++/toml.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"
#include "remote/reference.h"

namespace slipstream::remote {
namespace {

constexpr size_t kMaxHostsTomlBytes = 1u << 20;

std::string Clip(absl::string_view text) {
  constexpr size_t kMax = 200;
  std::string out = absl::CHexEscape(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  return out;
}

// Everything that can go wrong in a hosts.toml is reported against the file path.
struct FileContext {
  std::string file;
  absl::Status Error(absl::string_view where, absl::string_view why) const {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", where, ": ", why));
  }
};

// An HTTP field name: a non-empty RFC 9110 token.
bool IsHeaderName(absl::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) &&
        absl::string_view("!#$%&'*+-.^_`|~").find(c) == absl::string_view::npos) {
      return false;
    }
  }
  return true;
}

// The parts of one hosts.toml section (the root or one [host."…"]) before resolution.
struct HostSection {
  std::string server;          // URL or host, may be empty for the root
  bool override_path = false;
  uint32_t capabilities = 0;   // 0 = not given
  RegistryHost settings;       // only tls and headers are used from here
};

std::string JoinPath(const std::string& base, absl::string_view p) {
  if (!p.empty() && p.front() == '/') return std::string(p);
  if (base.empty()) return std::string(p);
  return absl::StrCat(base, "/", p);
}

// Lexical path.Clean for the URL path: collapses "//", drops "." and resolves "..".
std::string CleanUrlPath(absl::string_view path) {
  std::vector<absl::string_view> out;
  for (absl::string_view seg : absl::StrSplit(path, '/')) {
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!out.empty()) out.pop_back();
      continue;
    }
    out.push_back(seg);
  }
  if (out.empty()) return "";
  return absl::StrCat("/", absl::StrJoin(out, "/"));
}

// Resolves a `server` or [host."…"] key the way containerd does: "https://" is assumed
// without a scheme, and "/v2" is appended to the path unless it ends so or override_path.
absl::Status ResolveServer(const FileContext& ctx, absl::string_view where, absl::string_view server,
                           bool override_path, RegistryHost* out) {
  std::string url(server);
  if (!absl::StartsWith(url, "http")) url = absl::StrCat("https://", url);
  size_t sep = url.find("://");
  if (sep == std::string::npos) {
    return ctx.Error(where, absl::StrCat("malformed server URL \"", Clip(server), "\""));
  }
  std::string scheme = absl::AsciiStrToLower(url.substr(0, sep));
  if (scheme != "http" && scheme != "https") {
    return ctx.Error(where, absl::StrCat("unsupported scheme in \"", Clip(server), "\""));
  }
  absl::string_view rest = absl::string_view(url).substr(sep + 3);
  size_t slash = rest.find('/');
  absl::string_view host = rest.substr(0, slash);
  absl::string_view path = slash == absl::string_view::npos ? "" : rest.substr(slash);
  bool bad_host = host.empty() || host.find_first_of("@?# \t\r\n\\") != absl::string_view::npos;
  for (char c : host) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      bad_host = true;
    }
  }
  // An explicit port must be numeric ("https://ftp://x" would otherwise yield host "ftp:").
  if (size_t colon = host.rfind(':');
      !bad_host && colon != absl::string_view::npos && host.back() != ']') {
    absl::string_view port = host.substr(colon + 1);
    bad_host = port.empty() || port.size() > 5 ||
               !std::all_of(port.begin(), port.end(), absl::ascii_isdigit);
  }
  if (bad_host || path.find_first_of("?# \t\r\n") != absl::string_view::npos) {
    return ctx.Error(where, absl::StrCat("malformed server URL \"", Clip(server), "\""));
  }
  out->scheme = scheme;
  out->host = std::string(host);
  out->path = CleanUrlPath(path);
  if (!override_path && !absl::EndsWith(out->path, "/v2")) out->path += "/v2";
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> StringOrList(const FileContext& ctx,
                                                      absl::string_view where,
                                                      const toml::node& node) {
  std::vector<std::string> out;
  if (auto s = node.value<std::string>(); s.has_value() && node.is_string()) {
    out.push_back(*s);
    return out;
  }
  const toml::array* arr = node.as_array();
  if (arr == nullptr) return ctx.Error(where, "must be a string or a list of strings");
  for (const toml::node& item : *arr) {
    const auto* s = item.as_string();
    if (s == nullptr) return ctx.Error(where, "must be a string or a list of strings");
    out.push_back(s->get());
  }
  return out;
}

absl::StatusOr<HostSection> ParseSection(const FileContext& ctx, absl::string_view where,
                                         const toml::table& t, const std::string& base_dir) {
  HostSection s;
  if (const toml::node* n = t.get("override_path"); n != nullptr) {
    const auto* b = n->as_boolean();
    if (b == nullptr) return ctx.Error(where, "override_path must be a boolean");
    s.override_path = b->get();
  }
  if (const toml::node* n = t.get("capabilities"); n != nullptr) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return ctx.Error(where, "capabilities must be a list of strings");
    for (const toml::node& item : *arr) {
      const auto* cap = item.as_string();
      if (cap == nullptr) return ctx.Error(where, "capabilities must be a list of strings");
      std::string name = absl::AsciiStrToLower(cap->get());
      if (name == "pull") {
        s.capabilities |= kCapPull;
      } else if (name == "resolve") {
        s.capabilities |= kCapResolve;
      } else if (name == "push") {
        s.capabilities |= kCapPush;
      } else {
        return ctx.Error(where, absl::StrCat("unknown capability \"", Clip(cap->get()), "\""));
      }
    }
  }
  if (const toml::node* n = t.get("skip_verify"); n != nullptr) {
    const auto* b = n->as_boolean();
    if (b == nullptr) return ctx.Error(where, "skip_verify must be a boolean");
    s.settings.tls.skip_verify = b->get();
  }
  if (const toml::node* n = t.get("ca"); n != nullptr) {
    SS_ASSIGN_OR_RETURN(std::vector<std::string> cas, StringOrList(ctx, "ca", *n));
    if (!cas.empty()) s.settings.tls.ca_file = JoinPath(base_dir, cas[0]);
    // TlsOptions carries one bundle; several files would need concatenating first.
    if (cas.size() > 1) {
      log::Warn("hosts.toml lists several CA files; only the first is used",
                {{"file", ctx.file}, {"section", where}, {"used", s.settings.tls.ca_file}});
    }
  }
  if (const toml::node* n = t.get("client"); n != nullptr) {
    // A string (cert+key in one PEM), a list of such strings, or a list of [cert, key].
    std::vector<std::pair<std::string, std::string>> pairs;
    if (const auto* str = n->as_string(); str != nullptr) {
      pairs.emplace_back(str->get(), "");
    } else if (const toml::array* arr = n->as_array(); arr != nullptr) {
      for (const toml::node& item : *arr) {
        if (const auto* one = item.as_string(); one != nullptr) {
          pairs.emplace_back(one->get(), "");
        } else if (const toml::array* pair = item.as_array(); pair != nullptr) {
          if (pair->size() != 2 || !(*pair)[0].is_string() || !(*pair)[1].is_string()) {
            return ctx.Error(where, "client pairs must be [cert, key]");
          }
          pairs.emplace_back((*pair)[0].as_string()->get(), (*pair)[1].as_string()->get());
        } else {
          return ctx.Error(where, "client must be a string, a list, or a list of pairs");
        }
      }
    } else {
      return ctx.Error(where, "client must be a string, a list, or a list of pairs");
    }
    if (!pairs.empty()) {
      s.settings.tls.client_cert_file = JoinPath(base_dir, pairs[0].first);
      s.settings.tls.client_key_file = pairs[0].second.empty()
                                           ? s.settings.tls.client_cert_file
                                           : JoinPath(base_dir, pairs[0].second);
    }
    if (pairs.size() > 1) {
      log::Warn("hosts.toml lists several client certificates; only the first is used",
                {{"file", ctx.file}, {"section", where}});
    }
  }
  if (const toml::node* n = t.get("header"); n != nullptr) {
    const toml::table* headers = n->as_table();
    if (headers == nullptr) return ctx.Error(where, "header must be a table");
    for (const auto& [key, value] : *headers) {
      std::string name(key.str());
      // A quoted TOML key may hold anything; on the wire it is "name: value\r\n", so a name
      // that is not an HTTP token would inject headers (found by hosts_toml_fuzzer).
      if (!IsHeaderName(name)) {
        return ctx.Error(where, absl::StrCat("header name \"", Clip(name), "\" is not a token"));
      }
      SS_ASSIGN_OR_RETURN(std::vector<std::string> values,
                          StringOrList(ctx, absl::StrCat("header ", Clip(name)), value));
      for (std::string& v : values) {
        // NUL would cut the value short in libcurl's C strings.
        if (v.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
          return ctx.Error(where,
                           absl::StrCat("header ", Clip(name), " contains a newline or NUL"));
        }
        s.settings.headers.emplace_back(name, std::move(v));
      }
    }
  }
  return s;
}

RegistryHost Finish(const HostSection& section) {
  RegistryHost h = section.settings;
  h.capabilities =
      section.capabilities != 0 ? section.capabilities : (kCapPull | kCapResolve | kCapPush);
  return h;
}

bool IsLoopback(absl::string_view registry) {
  absl::string_view host = registry;
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = close == absl::string_view::npos ? host.substr(1) : host.substr(1, close - 1);
    return host == "::1";
  }
  if (size_t colon = host.rfind(':'); colon != absl::string_view::npos) host = host.substr(0, colon);
  if (host == "localhost") return true;
  if (!absl::StartsWith(host, "127.")) return false;
  std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4) return false;
  for (absl::string_view o : octets) {
    if (o.empty() || o.size() > 3 || !std::all_of(o.begin(), o.end(), absl::ascii_isdigit)) {
      return false;
    }
  }
  return true;
}

bool IsDirectory(const std::string& path, absl::Status* error) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno != ENOENT && errno != ENOTDIR) *error = LastErrnoStatus(absl::StrCat("stat ", path));
    return false;
  }
  return S_ISDIR(st.st_mode);
}

// docker's certs.d layout: *.crt are CAs, *.cert with a matching *.key are client pairs.
absl::StatusOr<std::vector<RegistryHost>> LoadCertFiles(const std::string& dir,
                                                        std::string_view registry) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return LastErrnoStatus(absl::StrCat("opendir ", dir));
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  RegistryHost host = DefaultRegistryHost(registry);
  for (const std::string& name : names) {
    std::string path = absl::StrCat(dir, "/", name);
    if (absl::EndsWith(name, ".crt") && host.tls.ca_file.empty()) {
      host.tls.ca_file = path;
    } else if (absl::EndsWith(name, ".cert") && host.tls.client_cert_file.empty()) {
      host.tls.client_cert_file = path;
      std::string key = absl::StrCat(dir, "/", name.substr(0, name.size() - 5), ".key");
      struct stat st;
      host.tls.client_key_file = stat(key.c_str(), &st) == 0 ? key : path;
    }
  }
  return std::vector<RegistryHost>{std::move(host)};
}

}  // namespace

std::string RegistryHost::BaseUrl() const { return absl::StrCat(scheme, "://", host, path); }

RegistryHost DefaultRegistryHost(std::string_view registry) {
  RegistryHost h;
  h.host = DefaultServer(registry);
  h.scheme = IsLoopback(AV(registry)) ? "http" : "https";
  return h;
}

absl::StatusOr<std::vector<RegistryHost>> ParseHostsToml(std::string_view toml_text,
                                                         std::string_view registry,
                                                         const std::string& base_dir) {
  FileContext ctx{base_dir.empty() ? std::string("hosts.toml")
                                   : absl::StrCat(base_dir, "/hosts.toml")};
  if (toml_text.size() > kMaxHostsTomlBytes) return ctx.Error("file", "too large");
  toml::table root;
  try {
    root = toml::parse(toml_text, ctx.file);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return absl::InvalidArgumentError(absl::StrCat(ctx.file, ":", where.line, ":", where.column,
                                                   ": malformed TOML: ", AV(e.description())));
  } catch (const std::exception&) {
    return absl::InvalidArgumentError(absl::StrCat(ctx.file, ": malformed TOML"));
  }

  std::vector<RegistryHost> hosts;
  if (const toml::node* n = root.get("host"); n != nullptr) {
    const toml::table* table = n->as_table();
    if (table == nullptr) return ctx.Error("host", "must be a table of [host.\"URL\"] sections");
    // toml::table is sorted by key, but the file order is the mirror priority: sort by the
    // position each section starts at.
    std::vector<std::pair<std::string, const toml::table*>> sections;
    for (const auto& [key, value] : *table) {
      const toml::table* t = value.as_table();
      if (t == nullptr) {
        return ctx.Error(absl::StrCat("host.\"", Clip(AV(key.str())), "\""), "must be a table");
      }
      sections.emplace_back(std::string(key.str()), t);
    }
    std::stable_sort(sections.begin(), sections.end(), [](const auto& a, const auto& b) {
      const auto& pa = a.second->source().begin;
      const auto& pb = b.second->source().begin;
      return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
    });
    for (const auto& [key, t] : sections) {
      std::string where = absl::StrCat("host.\"", Clip(key), "\"");
      SS_ASSIGN_OR_RETURN(HostSection s, ParseSection(ctx, where, *t, base_dir));
      RegistryHost h = Finish(s);
      SS_RETURN_IF_ERROR(ResolveServer(ctx, where, key, s.override_path, &h));
      hosts.push_back(std::move(h));
    }
  }

  // The root section describes the upstream server, tried last.
  SS_ASSIGN_OR_RETURN(HostSection top, ParseSection(ctx, "top level", root, base_dir));
  std::string server;
  if (const toml::node* n = root.get("server"); n != nullptr) {
    const auto* s = n->as_string();
    if (s == nullptr) return ctx.Error("server", "must be a string");
    server = s->get();
  }
  RegistryHost upstream = Finish(top);
  if (server.empty()) {
    // Like containerd: without `server` the default endpoint is used with all capabilities;
    // only the TLS settings and headers of the top level apply to it.
    RegistryHost def = DefaultRegistryHost(registry);
    upstream.scheme = def.scheme;
    upstream.host = def.host;
    upstream.path = def.path;
    upstream.capabilities = def.capabilities;
  } else {
    SS_RETURN_IF_ERROR(ResolveServer(ctx, "server", server, top.override_path, &upstream));
  }
  hosts.push_back(std::move(upstream));
  return hosts;
}

absl::StatusOr<std::vector<RegistryHost>> LoadRegistryHosts(const std::string& hosts_dir,
                                                            std::string_view registry) {
  if (registry.empty() || registry == "." || registry == ".." ||
      registry.find_first_of("/\\") != absl::string_view::npos ||
      registry.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid registry name \"", Clip(AV(registry)), "\""));
  }
  if (hosts_dir.empty()) return std::vector<RegistryHost>{DefaultRegistryHost(registry)};

  // containerd looks for "host_port_" (":" is awkward in paths), then "host:port", then
  // the catch-all "_default".
  std::vector<std::string> candidates;
  std::string name(registry);
  if (size_t colon = name.rfind(':'); colon != std::string::npos && colon > 0) {
    candidates.push_back(
        absl::StrCat(hosts_dir, "/", name.substr(0, colon), "_", name.substr(colon + 1), "_"));
  }
  candidates.push_back(absl::StrCat(hosts_dir, "/", name));
  candidates.push_back(absl::StrCat(hosts_dir, "/_default"));
  std::string dir;
  for (const std::string& c : candidates) {
    absl::Status error;
    if (IsDirectory(c, &error)) {
      dir = c;
      break;
    }
    SS_RETURN_IF_ERROR(error);
  }
  if (dir.empty()) return std::vector<RegistryHost>{DefaultRegistryHost(registry)};

  std::string file = absl::StrCat(dir, "/hosts.toml");
  auto text = ReadFileToString(file, kMaxHostsTomlBytes);
  if (absl::IsNotFound(text.status())) return LoadCertFiles(dir, registry);
  if (!text.ok()) return Annotate(text.status(), absl::StrCat("read ", file));
  // An empty hosts.toml counts as absent, as in containerd.
  if (text->empty()) return LoadCertFiles(dir, registry);
  return ParseHostsToml(*text, registry, dir);
}

}  // namespace slipstream::remote
