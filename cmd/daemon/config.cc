// SPDX-License-Identifier: Apache-2.0
#include "cmd/daemon/config.h"

#include <toml++/toml.h>

#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::daemon {
namespace {

// Reads one key into the config. `key` is the dotted path used in error messages.
using Setter = std::function<absl::Status(const toml::node& node, const std::string& key,
                                          DaemonConfig& config)>;

absl::Status WrongType(const std::string& key, std::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("key ", key, ": expected ", AV(want)));
}

Setter String(std::string DaemonConfig::*field) {
  return [field](const toml::node& node, const std::string& key, DaemonConfig& c) {
    auto v = node.value<std::string>();
    if (!node.is_string() || !v) return WrongType(key, "a string");
    c.*field = *v;
    return absl::OkStatus();
  };
}

Setter OneOf(std::function<std::string&(DaemonConfig&)> field, std::vector<std::string> allowed) {
  return [=](const toml::node& node, const std::string& key, DaemonConfig& c) {
    auto v = node.value<std::string>();
    if (!node.is_string() || !v) return WrongType(key, "a string");
    for (const auto& a : allowed) {
      if (*v == a) {
        field(c) = *v;
        return absl::OkStatus();
      }
    }
    std::string list;
    for (const auto& a : allowed) absl::StrAppend(&list, list.empty() ? "" : ", ", a);
    return absl::InvalidArgumentError(
        absl::StrCat("key ", key, ": \"", *v, "\" is not one of ", list));
  };
}

Setter Int(std::function<int&(DaemonConfig&)> field, int min, int max) {
  return [=](const toml::node& node, const std::string& key, DaemonConfig& c) {
    auto v = node.value<int64_t>();
    if (!node.is_integer() || !v) return WrongType(key, "an integer");
    if (*v < min || *v > max) {
      return absl::InvalidArgumentError(
          absl::StrCat("key ", key, ": ", *v, " is outside [", min, ", ", max, "]"));
    }
    field(c) = static_cast<int>(*v);
    return absl::OkStatus();
  };
}

Setter Bytes(std::function<int64_t&(DaemonConfig&)> field) {
  return [=](const toml::node& node, const std::string& key, DaemonConfig& c) -> absl::Status {
    if (node.is_integer()) {
      int64_t v = *node.value<int64_t>();
      if (v < 0) return absl::InvalidArgumentError(absl::StrCat("key ", key, ": negative size"));
      field(c) = v;
      return absl::OkStatus();
    }
    if (!node.is_string()) return WrongType(key, "a size (integer bytes or \"8MiB\")");
    auto parsed = ParseByteSize(*node.value<std::string>());
    if (!parsed.ok()) return Annotate(parsed.status(), absl::StrCat("key ", key));
    field(c) = *parsed;
    return absl::OkStatus();
  };
}

Setter Bool(std::function<bool&(DaemonConfig&)> field) {
  return [=](const toml::node& node, const std::string& key, DaemonConfig& c) {
    auto v = node.value<bool>();
    if (!node.is_boolean() || !v) return WrongType(key, "true or false");
    field(c) = *v;
    return absl::OkStatus();
  };
}

Setter Duration(std::function<absl::Duration&(DaemonConfig&)> field) {
  return [=](const toml::node& node, const std::string& key, DaemonConfig& c) {
    auto v = node.value<std::string>();
    absl::Duration d;
    if (!node.is_string() || !v || !absl::ParseDuration(*v, &d) || d <= absl::ZeroDuration()) {
      return WrongType(key, "a positive duration such as \"12h\" or \"90m\"");
    }
    field(c) = d;
    return absl::OkStatus();
  };
}

// `[[mode_rules]]`: an array of tables with the string keys registry, repository and mode.
absl::Status ModeRules(const toml::node& node, const std::string& key, DaemonConfig& c) {
  const toml::array* rules = node.as_array();
  if (rules == nullptr) return WrongType(key, "an array of tables ([[mode_rules]])");
  for (size_t i = 0; i < rules->size(); ++i) {
    const std::string at = absl::StrCat(key, "[", i, "]");
    const toml::table* table = rules->get(i)->as_table();
    if (table == nullptr) return WrongType(at, "a table");
    ModeRuleConfig rule;
    for (auto&& [k, value] : *table) {
      const std::string field = absl::StrCat(at, ".", AV(k.str()));
      auto v = value.value<std::string>();
      if (!value.is_string() || !v) return WrongType(field, "a string");
      if (k.str() == "registry") {
        rule.registry = *v;
      } else if (k.str() == "repository") {
        rule.repository = *v;
      } else if (k.str() == "mode") {
        if (*v != "parallel" && *v != "lazy" && *v != "containerd") {
          return absl::InvalidArgumentError(absl::StrCat(
              "key ", field, ": \"", *v, "\" is not one of parallel, lazy, containerd"));
        }
        rule.mode = *v;
      } else {
        return absl::InvalidArgumentError(absl::StrCat("unknown key ", field));
      }
    }
    if (rule.mode.empty()) return absl::InvalidArgumentError(absl::StrCat("key ", at, ": no mode"));
    c.mode_rules.push_back(std::move(rule));
  }
  return absl::OkStatus();
}

const std::map<std::string, Setter>& Setters() {
  static const auto* setters = new std::map<std::string, Setter>{
      {"root", String(&DaemonConfig::root)},
      {"address", String(&DaemonConfig::address)},
      {"log_level",
       [](const toml::node& node, const std::string& key, DaemonConfig& c) {
         auto v = node.value<std::string>();
         if (!node.is_string() || !v || !log::ParseLevel(*v, &c.log_level)) {
           return WrongType(key, "one of debug, info, warn, error");
         }
         return absl::OkStatus();
       }},
      {"default_mode", OneOf([](DaemonConfig& c) -> std::string& { return c.default_mode; },
                             {"parallel", "lazy", "containerd"})},
      {"engine.max_connections",
       Int([](DaemonConfig& c) -> int& { return c.engine.max_connections; }, 1, 1024)},
      {"engine.chunk_size", Bytes([](DaemonConfig& c) -> int64_t& { return c.engine.chunk_size; })},
      {"engine.unpack_workers",
       Int([](DaemonConfig& c) -> int& { return c.engine.unpack_workers; }, 0, 1024)},
      {"engine.on_failure",
       OneOf([](DaemonConfig& c) -> std::string& { return c.engine.on_failure; },
             {"fail", "fallback"})},
      {"engine.use_soci_index",
       [](const toml::node& node, const std::string& key, DaemonConfig& c) {
         auto v = node.value<bool>();
         if (!node.is_boolean() || !v) return WrongType(key, "true or false");
         c.engine.use_soci_index = *v;
         return absl::OkStatus();
       }},
      {"lazy.mount_dir", String(&DaemonConfig::lazy_mount_dir)},
      {"lazy.keep_mounts_on_exit",
       Bool([](DaemonConfig& c) -> bool& { return c.lazy_keep_mounts_on_exit; })},
      {"lazy.holder_socket", String(&DaemonConfig::lazy_holder_socket)},
      {"lazy.background_threads",
       Int([](DaemonConfig& c) -> int& { return c.lazy_background_threads; }, 0, 64)},
      {"lazy.read_ahead_spans",
       Int([](DaemonConfig& c) -> int& { return c.lazy_read_ahead_spans; }, 0, 64)},
      {"lazy.read_ahead_threads",
       Int([](DaemonConfig& c) -> int& { return c.lazy_read_ahead_threads; }, 1, 64)},
      {"lazy.kernel_read_ahead",
       Bytes([](DaemonConfig& c) -> int64_t& { return c.lazy_kernel_read_ahead; })},
      {"cache.size", Bytes([](DaemonConfig& c) -> int64_t& { return c.cache_size; })},
      {"registry.hosts_dir", String(&DaemonConfig::hosts_dir)},
      {"registry.docker_config", String(&DaemonConfig::docker_config)},
      {"registry.max_attempts",
       Int([](DaemonConfig& c) -> int& { return c.registry_max_attempts; }, 1, 100)},
      {"registry.retry_max_total",
       Duration([](DaemonConfig& c) -> absl::Duration& { return c.registry_retry_max_total; })},
      {"registry.stall_timeout",
       Duration([](DaemonConfig& c) -> absl::Duration& { return c.registry_stall_timeout; })},
      {"metrics.address", String(&DaemonConfig::metrics_address)},
      {"cri.enable_image_service",
       Bool([](DaemonConfig& c) -> bool& { return c.cri.enable_image_service; })},
      {"cri.containerd_address",
       [](const toml::node& node, const std::string& key, DaemonConfig& c) {
         auto v = node.value<std::string>();
         if (!node.is_string() || !v || v->empty()) return WrongType(key, "a socket path");
         c.cri.containerd_address = *v;
         return absl::OkStatus();
       }},
      {"cri.credential_ttl",
       Duration([](DaemonConfig& c) -> absl::Duration& { return c.cri.credential_ttl; })},
      {"mode_rules", ModeRules},
  };
  return *setters;
}

absl::Status Apply(const toml::table& table, const std::string& prefix, DaemonConfig& config) {
  for (auto&& [k, node] : table) {
    std::string key = prefix.empty() ? std::string(k.str()) : absl::StrCat(prefix, ".", AV(k.str()));
    if (const toml::table* sub = node.as_table()) {
      SS_RETURN_IF_ERROR(Apply(*sub, key, config));
      continue;
    }
    auto it = Setters().find(key);
    if (it == Setters().end()) return absl::InvalidArgumentError(absl::StrCat("unknown key ", key));
    SS_RETURN_IF_ERROR(it->second(node, key, config));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int64_t> ParseByteSize(std::string_view text) {
  std::string t = absl::AsciiStrToLower(absl::StripAsciiWhitespace(AV(text)));
  int64_t mult = 1;
  for (const auto& [suffix, m] : std::vector<std::pair<std::string, int64_t>>{
           {"kib", int64_t{1} << 10}, {"mib", int64_t{1} << 20}, {"gib", int64_t{1} << 30},
           {"tib", int64_t{1} << 40}, {"k", int64_t{1} << 10},   {"m", int64_t{1} << 20},
           {"g", int64_t{1} << 30},   {"t", int64_t{1} << 40},   {"b", 1}}) {
    if (t.size() > suffix.size() && t.ends_with(suffix)) {
      mult = m;
      t.resize(t.size() - suffix.size());
      break;
    }
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(t), &n) || n < 0 ||
      n > INT64_MAX / mult) {
    return absl::InvalidArgumentError(absl::StrCat("bad size \"", AV(text), "\""));
  }
  return n * mult;
}

absl::StatusOr<DaemonConfig> ParseConfig(std::string_view text, std::string_view source) {
  DaemonConfig config;
  toml::table table;
  // toml++ reports syntax errors by throwing; this is the boundary where they become Status.
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "config ", AV(source), ":", e.source().begin.line, ":", e.source().begin.column, ": ",
        AV(e.description())));
  }
  auto status = Apply(table, "", config);
  if (!status.ok()) return Annotate(status, absl::StrCat("config ", AV(source)));
  return config;
}

absl::StatusOr<DaemonConfig> LoadConfigFile(const std::string& path) {
  SS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, 1 << 20));
  return ParseConfig(text, path);
}

}  // namespace slipstream::daemon
