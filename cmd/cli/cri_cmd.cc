// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/cri_cmd.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "cmd/cli/registry_flags.h"
#include "common/status.h"

namespace slipstream::cli {
namespace {

// Splits "key<sep>value" at the first `sep`; InvalidArgument naming `flag` when absent or
// when the key is empty.
absl::StatusOr<std::pair<std::string, std::string>> SplitPair(const std::string& text, char sep,
                                                              const char* flag) {
  size_t at = text.find(sep);
  if (at == std::string::npos || at == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " \"", text, "\": want KEY", std::string(1, sep), "VALUE"));
  }
  return std::make_pair(text.substr(0, at), text.substr(at + 1));
}

absl::StatusOr<std::map<std::string, std::string>> ParseAnnotations(
    const std::vector<std::string>& flags) {
  std::map<std::string, std::string> out;
  for (const std::string& f : flags) {
    SS_ASSIGN_OR_RETURN(auto kv, SplitPair(f, '=', "--annotation"));
    out[kv.first] = kv.second;
  }
  return out;
}

// "sha256:0123456789abcdef…" → "0123456789ab".
std::string ShortId(const std::string& id) {
  std::string hex = id.substr(id.find(':') == std::string::npos ? 0 : id.find(':') + 1);
  return hex.substr(0, 12);
}

}  // namespace

absl::Status CriPull(cri::CriClient& client, const std::string& image,
                     const std::map<std::string, std::string>& annotations, const std::string& auth,
                     std::ostream& out) {
  cri::v1::PullImageRequest request;
  request.mutable_image()->set_image(image);
  if (!auth.empty()) {
    SS_ASSIGN_OR_RETURN(auto user_pass, SplitPair(auth, ':', "--auth"));
    request.mutable_auth()->set_username(user_pass.first);
    request.mutable_auth()->set_password(user_pass.second);
  }
  *request.mutable_sandbox_config() =
      cri::HostNetworkPodConfig("slipstream-pull", "slipstream", annotations, "");
  absl::Time start = absl::Now();
  SS_ASSIGN_OR_RETURN(cri::v1::PullImageResponse pulled, client.PullImage(request));
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  out << absl::StrFormat("Pulled %s as %s in %.2f s\n", image, pulled.image_ref(), seconds);
  return absl::OkStatus();
}

absl::Status CriImages(cri::CriClient& client, std::ostream& out) {
  SS_ASSIGN_OR_RETURN(cri::v1::ListImagesResponse list, client.ListImages());
  std::vector<std::pair<std::string, const cri::v1::Image*>> rows;
  for (const cri::v1::Image& image : list.images()) {
    if (image.repo_tags_size() > 0) {
      for (const std::string& tag : image.repo_tags()) rows.emplace_back(tag, &image);
    } else if (image.repo_digests_size() > 0) {
      rows.emplace_back(image.repo_digests(0), &image);
    } else {
      rows.emplace_back("<none>", &image);
    }
  }
  std::sort(rows.begin(), rows.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  size_t width = 5;
  for (const auto& row : rows) width = std::max(width, row.first.size());
  out << absl::StrFormat("%-*s  %-12s  %10s\n", width, "IMAGE", "IMAGE ID", "SIZE");
  for (const auto& [name, image] : rows) {
    out << absl::StrFormat("%-*s  %-12s  %10s\n", width, name, ShortId(image->id()),
                           HumanBytes(static_cast<int64_t>(image->size())));
  }
  return absl::OkStatus();
}

absl::Status CriRemoveImage(cri::CriClient& client, const std::string& image, std::ostream& out) {
  cri::v1::ImageStatusRequest status;
  status.mutable_image()->set_image(image);
  SS_ASSIGN_OR_RETURN(cri::v1::ImageStatusResponse present, client.ImageStatus(status));
  if (!present.has_image()) {
    return absl::NotFoundError(absl::StrCat("image ", image, " not found"));
  }
  cri::v1::RemoveImageRequest remove;
  remove.mutable_image()->set_image(image);
  SS_RETURN_IF_ERROR(client.RemoveImage(remove).status());
  out << "Deleted: " << image << "\n";
  return absl::OkStatus();
}

absl::StatusOr<int> CriRun(cri::CriClient& client, const std::string& image,
                           const std::vector<std::string>& argv, const cri::RunOptions& options,
                           std::ostream& out, std::ostream& err, bool output_time) {
  SS_ASSIGN_OR_RETURN(cri::RunResult result, cri::RunOnce(client, image, argv, options));
  out << result.stdout_data;
  err << result.stderr_data;
  if (output_time) {
    if (result.first_output == absl::InfinitePast()) {
      err << "first output: none\n";
    } else {
      err << "first output: " << absl::ToUnixNanos(result.first_output) << "\n";
    }
  }
  out.flush();
  err.flush();
  return result.exit_code;
}

void CriCommand::AddEndpointFlags(CLI::App* cmd) {
  cmd->add_option("--endpoint", client_options_.runtime_endpoint,
                  "CRI runtime socket (unix:///path or /path)")
      ->capture_default_str();
  cmd->add_option("--image-endpoint", client_options_.image_endpoint,
                  "CRI image service socket (default: --endpoint)");
}

void CriCommand::Register(CLI::App* app) {
  cri_ = app->add_subcommand("cri", "Talk to a CRI runtime (containerd) like kubelet does");
  cri_->require_subcommand(1);

  pull_ = cri_->add_subcommand("pull", "PullImage through the CRI image service");
  pull_->add_option("IMAGE", image_, "image reference")->required();
  pull_->add_option("--annotation", annotations_, "pod annotation k=v (repeatable)")
      ->allow_extra_args(false);
  pull_->add_option("--auth", auth_, "registry credentials user:pass");
  AddEndpointFlags(pull_);

  images_ = cri_->add_subcommand("images", "List the runtime's images");
  AddEndpointFlags(images_);

  rmi_ = cri_->add_subcommand("rmi", "Remove an image from the runtime");
  rmi_->add_option("IMAGE", image_, "image reference or ID")->required();
  AddEndpointFlags(rmi_);

  run_ = cri_->add_subcommand(
      "run", "Run a command once in a host-network pod; print its output, exit with its code");
  run_->add_option("IMAGE", image_, "image reference")->required();
  run_->add_option("CMD", command_, "command and arguments (after --)")->required();
  run_->add_option("--annotation", annotations_, "pod annotation k=v (repeatable)")
      ->allow_extra_args(false);
  run_->add_option("--auth", auth_, "registry credentials user:pass, if it must be pulled");
  run_->add_option("--env", env_, "environment variable K=V (repeatable)")->allow_extra_args(false);
  run_->add_option("--timeout", exit_timeout_seconds_, "seconds to wait for the command")
      ->capture_default_str();
  run_->add_flag("--output-time", output_time_,
                 "also print \"first output: <Unix ns>\" on stderr: when the runtime logged the "
                 "command's first output");
  AddEndpointFlags(run_);
}

absl::StatusOr<int> CriCommand::Run(std::ostream& out, std::ostream& err) {
  SS_ASSIGN_OR_RETURN(std::unique_ptr<cri::CriClient> client,
                      cri::CriClient::Connect(client_options_));
  SS_ASSIGN_OR_RETURN(auto annotations, ParseAnnotations(annotations_));
  if (pull_->parsed()) {
    SS_RETURN_IF_ERROR(CriPull(*client, image_, annotations, auth_, out));
    return 0;
  }
  if (images_->parsed()) {
    SS_RETURN_IF_ERROR(CriImages(*client, out));
    return 0;
  }
  if (rmi_->parsed()) {
    SS_RETURN_IF_ERROR(CriRemoveImage(*client, image_, out));
    return 0;
  }
  cri::RunOptions options;
  options.annotations = annotations;
  options.exit_timeout = absl::Seconds(exit_timeout_seconds_);
  for (const std::string& e : env_) {
    SS_ASSIGN_OR_RETURN(auto kv, SplitPair(e, '=', "--env"));
    options.env.push_back(std::move(kv));
  }
  if (!auth_.empty()) {
    SS_ASSIGN_OR_RETURN(auto user_pass, SplitPair(auth_, ':', "--auth"));
    options.auth.set_username(user_pass.first);
    options.auth.set_password(user_pass.second);
  }
  return CriRun(*client, image_, command_, options, out, err, output_time_);
}

}  // namespace slipstream::cli
