// SPDX-License-Identifier: Apache-2.0
// `slipstream doctor`: node checks, each a small function returning findings.
#include "cmd/cli/doctor.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/fd.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "nlohmann/json.hpp"
#include "toml++/toml.h"

namespace slipstream::cli {
namespace {

constexpr char kCri1[] = "io.containerd.grpc.v1.cri";      // containerd 1.x CRI plugin
constexpr char kImages2[] = "io.containerd.cri.v1.images";  // containerd 2.x CRI images
constexpr char kTransfer2[] = "io.containerd.transfer.v1.local";
constexpr long kOverlayfsMagic = 0x794c7630;

CheckResult Ok(std::string name, std::string detail) {
  return {std::move(name), CheckLevel::kOk, std::move(detail), ""};
}
CheckResult Warn(std::string name, std::string detail, std::string fix) {
  return {std::move(name), CheckLevel::kWarn, std::move(detail), std::move(fix)};
}
CheckResult Fail(std::string name, std::string detail, std::string fix) {
  return {std::move(name), CheckLevel::kFail, std::move(detail), std::move(fix)};
}

std::string ProxySnippet(const DoctorOptions& o, bool exports) {
  return absl::StrCat("add to the containerd config:\n  [proxy_plugins.", o.plugin_name,
                      "]\n    type = \"snapshot\"\n    address = \"", o.address, "\"",
                      exports ? "\n    exports = { enable_remote_snapshot_annotations = \"true\" }"
                              : "");
}

// The proxy plugin entry: present, a snapshotter, at our address (and, for 2.x, exporting
// the remote snapshot annotations the transfer service needs).
void CheckProxy(const toml::table& root, const DoctorOptions& o, bool v3,
                std::vector<CheckResult>& out) {
  const std::string name = "containerd config: proxy plugin";
  toml::node_view proxy = root["proxy_plugins"][o.plugin_name];
  if (!proxy.is_table()) {
    out.push_back(Fail(name, absl::StrCat("no [proxy_plugins.", o.plugin_name, "]"),
                       ProxySnippet(o, v3)));
    return;
  }
  const std::string type = proxy["type"].value_or(std::string());
  const std::string address = proxy["address"].value_or(std::string());
  if (type != "snapshot") {
    out.push_back(Fail(name, absl::StrCat("type is \"", type, "\", not \"snapshot\""),
                       ProxySnippet(o, v3)));
  } else if (address != o.address) {
    out.push_back(Fail(name,
                       absl::StrCat("address is \"", address, "\" but slipstreamd listens on \"",
                                    o.address, "\""),
                       "make proxy_plugins address and slipstreamd --address the same socket"));
  } else {
    out.push_back(Ok(name, absl::StrCat(o.plugin_name, " at ", address)));
  }
  if (v3) {
    const std::string exported =
        proxy["exports"]["enable_remote_snapshot_annotations"].value_or(std::string());
    if (exported != "true") {
      out.push_back(Fail("containerd config: remote snapshot annotations",
                         "the proxy plugin does not export enable_remote_snapshot_annotations = "
                         "\"true\": containerd 2.x's transfer service then sends no layer labels",
                         ProxySnippet(o, true)));
    } else {
      out.push_back(Ok("containerd config: remote snapshot annotations", "exported"));
    }
  }
}

// CRI's snapshotter and snapshot annotations, where containerd 1.x (config version 2) reads them.
void CheckCriV2(const toml::table& root, const DoctorOptions& o, ContainerdVersion version,
                std::vector<CheckResult>& out) {
  toml::node_view cri = root["plugins"][kCri1];
  toml::node_view ctd = cri["containerd"];
  const std::string section = absl::StrCat("[plugins.\"", kCri1, "\".containerd]");
  const std::string snapshotter = ctd["snapshotter"].value_or(std::string("overlayfs"));
  if (snapshotter != o.plugin_name) {
    out.push_back(Fail("containerd config: CRI snapshotter",
                       absl::StrCat("CRI pulls use \"", snapshotter, "\""),
                       absl::StrCat("set snapshotter = \"", o.plugin_name, "\" in ", section)));
  } else {
    out.push_back(Ok("containerd config: CRI snapshotter", snapshotter));
  }
  const std::string name = "containerd config: snapshot annotations";
  const std::string fix = absl::StrCat("set disable_snapshot_annotations = false in ", section);
  std::optional<bool> disabled = ctd["disable_snapshot_annotations"].value<bool>();
  if (!disabled.has_value()) {
    if (cri["disable_snapshot_annotations"].is_boolean()) {
      out.push_back(Fail(name,
                         absl::StrCat("disable_snapshot_annotations is set in [plugins.\"", kCri1,
                                      "\"], where containerd ignores it"),
                         fix));
    } else if (version.major == 1 || version.major == 0) {
      out.push_back(Fail(name,
                         "disable_snapshot_annotations is not set, and containerd 1.x defaults it "
                         "to true: CRI pulls send no layer labels, so slipstream cannot take over",
                         fix));
    } else {
      out.push_back(Ok(name, "enabled (default)"));
    }
  } else if (*disabled) {
    out.push_back(Fail(name,
                       "disable_snapshot_annotations = true: CRI pulls send no layer labels, so "
                       "slipstream cannot take over pulls",
                       fix));
  } else {
    out.push_back(Ok(name, "disable_snapshot_annotations = false"));
  }
}

// containerd 2.x (config version 3): the images plugin and the transfer service's unpack.
// 2.0's CRI pulls on its own path, which sends the layer labels only with
// disable_snapshot_annotations = false. From 2.1 on, CRI pulls through the transfer service
// (labels from the proxy's enable_remote_snapshot_annotations export, unpacking where
// unpack_config says) unless that key is false, which switches it back to its own path.
void CheckCriV3(const toml::table& root, const DoctorOptions& o, ContainerdVersion version,
                std::vector<CheckResult>& out) {
  toml::node_view images = root["plugins"][kImages2];
  const std::string section = absl::StrCat("[plugins.\"", kImages2, "\"]");
  const std::string snapshotter = images["snapshotter"].value_or(std::string("overlayfs"));
  if (snapshotter != o.plugin_name) {
    out.push_back(Fail("containerd config: CRI snapshotter",
                       absl::StrCat("CRI pulls use \"", snapshotter, "\""),
                       absl::StrCat("set snapshotter = \"", o.plugin_name, "\" in ", section)));
  } else {
    out.push_back(Ok("containerd config: CRI snapshotter", snapshotter));
  }
  // An unknown version (0.0) with a version 3 config is taken for the newest behaviour.
  const bool transfer_capable = !(version.major == 2 && version.minor == 0);
  std::optional<bool> disabled = images["disable_snapshot_annotations"].value<bool>();
  const bool local_pull = disabled.has_value() && !*disabled;
  if (local_pull) {
    out.push_back(Ok("containerd config: snapshot annotations",
                     transfer_capable ? "disable_snapshot_annotations = false: CRI pulls on its "
                                        "own path, not through the transfer service"
                                      : "disable_snapshot_annotations = false"));
  } else if (transfer_capable) {
    out.push_back(Ok("containerd config: snapshot annotations",
                     "CRI pulls through the transfer service (2.1+)"));
  } else {
    out.push_back(Fail("containerd config: snapshot annotations",
                       disabled.has_value() ? "disable_snapshot_annotations = true"
                                            : "disable_snapshot_annotations is not set (default true)",
                       absl::StrCat("set disable_snapshot_annotations = false in ", section)));
  }
  bool unpacks_to_us = false;
  if (const toml::array* unpack = root["plugins"][kTransfer2]["unpack_config"].as_array()) {
    for (const toml::node& entry : *unpack) {
      if (const toml::table* t = entry.as_table()) {
        if ((*t)["snapshotter"].value_or(std::string()) == o.plugin_name) unpacks_to_us = true;
      }
    }
  }
  if (!unpacks_to_us) {
    // Fatal only where CRI itself pulls through the transfer service.
    const bool fatal = transfer_capable && !local_pull;
    const std::string detail = "no unpack_config names the slipstream snapshotter: pulls through "
                               "the transfer service unpack elsewhere";
    const std::string fix = absl::StrCat("add [[plugins.\"", kTransfer2,
                                         "\".unpack_config]] with platform = \"linux/amd64\" and "
                                         "snapshotter = \"",
                                         o.plugin_name, "\"");
    out.push_back(fatal ? Fail("containerd config: transfer service", detail, fix)
                        : Warn("containerd config: transfer service", detail, fix));
  } else {
    out.push_back(Ok("containerd config: transfer service", "unpacks into slipstream"));
  }
}

std::vector<CheckResult> CheckKernel(const DoctorOptions& o) {
  std::vector<CheckResult> out;
  absl::StatusOr<std::string> fs = ReadFileToString(o.proc_filesystems, 1 << 20);
  std::vector<std::string> names;
  if (fs.ok()) {
    for (absl::string_view line : absl::StrSplit(*fs, '\n')) {
      std::vector<absl::string_view> cols = absl::StrSplit(line, '\t', absl::SkipEmpty());
      if (!cols.empty()) names.emplace_back(cols.back());
    }
  }
  auto has = [&](const char* n) {
    for (const std::string& s : names) {
      if (s == n) return true;
    }
    return false;
  };
  if (!fs.ok()) {
    out.push_back(Fail("kernel: filesystems", fs.status().ToString(), "is /proc mounted?"));
    return out;
  }
  out.push_back(has("overlay") ? Ok("kernel: overlayfs", "available")
                               : Fail("kernel: overlayfs", "overlay is not in " + o.proc_filesystems,
                                      "modprobe overlay (and add it to /etc/modules-load.d)"));
  struct stat st;
  const bool dev_ok = ::stat(o.dev_fuse.c_str(), &st) == 0 && S_ISCHR(st.st_mode);
  if (!has("fuse")) {
    out.push_back(Fail("kernel: FUSE", "fuse is not in " + o.proc_filesystems,
                       "modprobe fuse (lazy mode needs it; parallel mode does not)"));
  } else if (!dev_ok) {
    out.push_back(Fail("kernel: FUSE", o.dev_fuse + " is missing or not a character device",
                       "mknod -m 0666 /dev/fuse c 10 229"));
  } else {
    out.push_back(Ok("kernel: FUSE", "available, " + o.dev_fuse));
  }
  return out;
}

CheckResult CheckSocket(const DoctorOptions& o) {
  const std::string name = "slipstreamd: socket";
  struct stat st;
  if (::stat(o.address.c_str(), &st) != 0) {
    return Fail(name, absl::StrCat(o.address, ": ", std::strerror(errno)),
                "start slipstreamd (systemctl start slipstreamd), or pass --address");
  }
  if (!S_ISSOCK(st.st_mode)) return Fail(name, o.address + " is not a socket", "remove it and restart slipstreamd");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (o.address.size() >= sizeof(addr.sun_path)) {
    return Fail(name, o.address + ": path too long for a unix socket", "use a shorter --address");
  }
  std::memcpy(addr.sun_path, o.address.c_str(), o.address.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid() ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Fail(name, absl::StrCat(o.address, ": connect: ", std::strerror(errno)),
                "a stale socket: restart slipstreamd");
  }
  if ((st.st_mode & 0007) != 0) {
    return Warn(name, absl::StrCat(o.address, " is accessible to every user (mode ",
                                   absl::StrFormat("%04o", st.st_mode & 07777), ")"),
                "chmod 0660 it (slipstreamd creates it 0660)");
  }
  return Ok(name, absl::StrCat(o.address, " answers, mode ",
                               absl::StrFormat("%04o", st.st_mode & 07777)));
}

CheckResult CheckRoot(const DoctorOptions& o) {
  const std::string name = "slipstreamd: root";
  struct statfs fs;
  if (::statfs(o.root.c_str(), &fs) != 0) {
    return Warn(name, absl::StrCat(o.root, ": ", std::strerror(errno)),
                "slipstreamd creates it at start; check --root");
  }
  if (static_cast<long>(fs.f_type) == kOverlayfsMagic) {
    return Fail(name, o.root + " is on overlayfs, which cannot hold overlay upper dirs",
                "put the root on a local filesystem (ext4, xfs)");
  }
  return Ok(name, absl::StrCat(o.root, ", ", fs.f_bavail * fs.f_bsize / (1 << 20), " MiB free"));
}

std::string_view LevelName(CheckLevel l) {
  switch (l) {
    case CheckLevel::kOk: return "ok";
    case CheckLevel::kWarn: return "warn";
    case CheckLevel::kFail: return "FAIL";
  }
  return "?";
}

}  // namespace

ContainerdVersion ParseContainerdVersion(std::string_view output) {
  // "containerd github.com/containerd/containerd 1.6.20~ds1 <revision>", or v-prefixed.
  std::vector<absl::string_view> words = absl::StrSplit(AV(output), ' ', absl::SkipWhitespace());
  ContainerdVersion v;
  if (words.size() < 3) return v;
  absl::string_view word = words[2];
  if (!word.empty() && word[0] == 'v') word.remove_prefix(1);
  std::vector<absl::string_view> parts = absl::StrSplit(word, absl::ByAnyChar(".~-+"));
  if (parts.size() < 2 || !absl::SimpleAtoi(parts[0], &v.major) ||
      !absl::SimpleAtoi(parts[1], &v.minor)) {
    return {};
  }
  return v;
}

std::vector<CheckResult> CheckContainerdConfig(std::string_view text, const DoctorOptions& o,
                                               ContainerdVersion version) {
  std::vector<CheckResult> out;
  toml::table root;
  try {
    root = toml::parse(text, o.containerd_config);
  } catch (const toml::parse_error& e) {
    out.push_back(Fail("containerd config: syntax",
                       absl::StrCat(o.containerd_config, ":", e.source().begin.line, ":",
                                    e.source().begin.column, ": ", AV(e.description())),
                       "fix the TOML syntax; containerd will not start with it either"));
    return out;
  }
  const int64_t config_version = root["version"].value_or(int64_t{1});
  if (config_version < 2) {
    out.push_back(Fail("containerd config: version",
                       "config version 1 (no `version = 2`): slipstream's settings are written "
                       "for version 2 (containerd 1.x) or 3 (2.x)",
                       "add version = 2 and move CRI settings under plugins.\"io.containerd.grpc.v1.cri\""));
    return out;
  }
  const bool v3 = config_version >= 3;
  if (v3 && version.major == 1) {
    out.push_back(Fail("containerd config: version", "version = 3 needs containerd 2.x",
                       "use version = 2 with containerd 1.x"));
  } else {
    out.push_back(Ok("containerd config: version", absl::StrCat("version = ", config_version)));
  }
  CheckProxy(root, o, v3, out);
  if (v3) {
    CheckCriV3(root, o, version, out);
  } else {
    CheckCriV2(root, o, version, out);
  }
  return out;
}

std::vector<CheckResult> RunDoctorChecks(const DoctorOptions& o) {
  std::vector<CheckResult> out = CheckKernel(o);
  ContainerdVersion version;
  absl::StatusOr<SubprocessResult> ran =
      RunSubprocess({o.containerd_bin, "--version"}, {.timeout = absl::Seconds(10)});
  if (!ran.ok() || ran->exit_code != 0) {
    out.push_back(Warn("containerd: version",
                       absl::StrCat("cannot run ", o.containerd_bin, " --version"),
                       "install containerd 1.6 or later, or pass --containerd-bin"));
  } else {
    version = ParseContainerdVersion(ran->stdout_data);
    if (version.major == 0) {
      out.push_back(Warn("containerd: version", "unrecognised: " + ran->stdout_data, ""));
    } else if (version.major == 1 && version.minor < 6) {
      out.push_back(Fail("containerd: version",
                         absl::StrCat(version.major, ".", version.minor, " is too old"),
                         "upgrade to containerd 1.6 or later"));
    } else {
      out.push_back(Ok("containerd: version", absl::StrCat(version.major, ".", version.minor)));
    }
  }
  absl::StatusOr<std::string> config = ReadFileToString(o.containerd_config, 4 << 20);
  if (!config.ok()) {
    out.push_back(Fail("containerd config", config.status().ToString(),
                       absl::StrCat("write ", o.containerd_config,
                                    " (see deploy/ for snippets), or pass --containerd-config")));
  } else {
    for (CheckResult& r : CheckContainerdConfig(*config, o, version)) out.push_back(std::move(r));
  }
  out.push_back(CheckSocket(o));
  out.push_back(CheckRoot(o));
  return out;
}

absl::Status Doctor(const DoctorOptions& options, bool json, std::ostream& out) {
  const std::vector<CheckResult> results = RunDoctorChecks(options);
  std::vector<std::string> failed;
  for (const CheckResult& r : results) {
    if (r.level == CheckLevel::kFail) failed.push_back(r.name);
  }
  if (json) {
    nlohmann::json doc = nlohmann::json::array();
    for (const CheckResult& r : results) {
      doc.push_back({{"check", r.name}, {"level", LevelName(r.level)}, {"detail", r.detail},
                     {"fix", r.fix}});
    }
    out << doc.dump(2) << "\n";
  } else {
    for (const CheckResult& r : results) {
      out << absl::StrFormat("[%-4s] %s: %s\n", LevelName(r.level), r.name, r.detail);
      if (!r.fix.empty()) out << "       fix: " << r.fix << "\n";
    }
  }
  if (failed.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat(failed.size(), " check(s) failed: ", absl::StrJoin(failed, "; ")));
}

}  // namespace slipstream::cli
