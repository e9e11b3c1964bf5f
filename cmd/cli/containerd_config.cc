// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/containerd_config.h"

#include <sys/stat.h>

#include <ostream>
#include <sstream>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/strings.h"

namespace slipstream::cli {
namespace {

// The table at `key` of `parent`, created when absent. InvalidArgument when the key holds
// something else.
absl::StatusOr<toml::table*> Table(toml::table& parent, std::string_view key,
                                   std::string_view path) {
  toml::node* node = parent.get(key);
  if (node == nullptr) {
    parent.insert(key, toml::table{});
    node = parent.get(key);
  }
  if (!node->is_table()) {
    return absl::InvalidArgumentError(
        absl::StrCat("containerd config: ", AV(path), " is not a table"));
  }
  return node->as_table();
}

absl::Status EnableV2(toml::table& root, const EnableOptions& o) {
  SS_ASSIGN_OR_RETURN(toml::table * plugins, Table(root, "plugins", "plugins"));
  SS_ASSIGN_OR_RETURN(toml::table * cri, Table(*plugins, "io.containerd.grpc.v1.cri",
                                               "plugins.\"io.containerd.grpc.v1.cri\""));
  SS_ASSIGN_OR_RETURN(toml::table * ctd, Table(*cri, "containerd",
                                               "plugins.\"io.containerd.grpc.v1.cri\".containerd"));
  ctd->insert_or_assign("snapshotter", o.plugin_name);
  // containerd 1.x defaults this to true and reads it only in this table.
  ctd->insert_or_assign("disable_snapshot_annotations", false);
  return absl::OkStatus();
}

absl::Status EnableV3(toml::table& root, const EnableOptions& o) {
  SS_ASSIGN_OR_RETURN(toml::table * plugins, Table(root, "plugins", "plugins"));
  SS_ASSIGN_OR_RETURN(toml::table * images, Table(*plugins, "io.containerd.cri.v1.images",
                                                  "plugins.\"io.containerd.cri.v1.images\""));
  images->insert_or_assign("snapshotter", o.plugin_name);
  SS_ASSIGN_OR_RETURN(toml::table * transfer,
                      Table(*plugins, "io.containerd.transfer.v1.local",
                            "plugins.\"io.containerd.transfer.v1.local\""));
  toml::node* unpack = transfer->get("unpack_config");
  if (unpack == nullptr) {
    transfer->insert("unpack_config", toml::array{});
    unpack = transfer->get("unpack_config");
  }
  if (!unpack->is_array()) {
    return absl::InvalidArgumentError(
        "containerd config: plugins.\"io.containerd.transfer.v1.local\".unpack_config is not "
        "an array");
  }
  toml::array& entries = *unpack->as_array();
  for (toml::node& entry : entries) {
    toml::table* t = entry.as_table();
    if (t != nullptr && t->get_as<std::string>("platform") != nullptr &&
        t->get_as<std::string>("platform")->get() == o.platform) {
      t->insert_or_assign("snapshotter", o.plugin_name);
      return absl::OkStatus();
    }
  }
  entries.push_back(toml::table{{"platform", o.platform}, {"snapshotter", o.plugin_name}});
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EnableSlipstream(std::string_view toml_text,
                                             const EnableOptions& o) {
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    // toml++ is built with exceptions in Debian; they end here.
    return absl::InvalidArgumentError(absl::StrCat(
        "containerd config: ", AV(e.description()), " at line ", e.source().begin.line,
        ", column ", e.source().begin.column));
  }
  int64_t version = 1;
  if (toml::node* v = root.get("version")) {
    if (!v->is_integer()) return absl::InvalidArgumentError("containerd config: version");
    version = v->as_integer()->get();
  }
  if (version < 1 || version > 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("containerd config: version ", version, " is not 1, 2 or 3"));
  }
  SS_ASSIGN_OR_RETURN(toml::table * proxies, Table(root, "proxy_plugins", "proxy_plugins"));
  SS_ASSIGN_OR_RETURN(toml::table * proxy, Table(*proxies, o.plugin_name,
                                                 absl::StrCat("proxy_plugins.", o.plugin_name)));
  proxy->insert_or_assign("type", "snapshot");
  proxy->insert_or_assign("address", o.address);
  if (version == 3) {
    SS_ASSIGN_OR_RETURN(toml::table * exports,
                        Table(*proxy, "exports", absl::StrCat("proxy_plugins.", o.plugin_name,
                                                              ".exports")));
    exports->insert_or_assign("enable_remote_snapshot_annotations", "true");
    SS_RETURN_IF_ERROR(EnableV3(root, o));
  } else {
    SS_RETURN_IF_ERROR(EnableV2(root, o));
  }
  std::ostringstream out;
  out << root << "\n";
  return out.str();
}

absl::Status EnableSlipstreamInFile(const std::string& in, const std::string& out,
                                    const EnableOptions& options, std::ostream& report) {
  SS_ASSIGN_OR_RETURN(std::string text, ReadFileToString(in, 16 << 20));
  absl::StatusOr<std::string> enabled = EnableSlipstream(text, options);
  if (!enabled.ok()) return Annotate(enabled.status(), in);
  const std::string target = out.empty() ? in : out;
  auto current = ReadFileToString(target, 16 << 20);
  if (current.ok() && *current == *enabled) {
    report << target << ": already uses slipstream, unchanged\n";
    return absl::OkStatus();
  }
  if (out.empty()) {
    const std::string backup = in + ".before-slipstream";
    struct stat st;
    if (::stat(backup.c_str(), &st) != 0) SS_RETURN_IF_ERROR(WriteFileAtomic(backup, text, 0600));
  }
  SS_RETURN_IF_ERROR(WriteFileAtomic(target, *enabled, 0644));
  report << target << ": set up for slipstream (proxy plugin at " << options.address << ")\n";
  return absl::OkStatus();
}

}  // namespace slipstream::cli
