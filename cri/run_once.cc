// SPDX-License-Identifier: Apache-2.0
#include "cri/run_once.h"

#include <cstdint>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "common/temp_dir.h"
#include "cri/container_log.h"

namespace slipstream::cri {
namespace {

constexpr char kContainerName[] = "run";
// Relative to the pod's log directory, as kubelet does ("<container>/<attempt>.log" there).
constexpr char kLogPath[] = "run.log";

std::string RandomUid() {
  absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen), absl::Uniform<uint64_t>(gen));
}

// One run's state: the ids to clean up, whatever step failed.
class Run {
 public:
  Run(CriClient& client, const RunOptions& options) : client_(client), options_(options) {}

  absl::StatusOr<RunResult> Execute(const std::string& image, const std::vector<std::string>& argv,
                                    const std::string& log_dir) {
    v1::PodSandboxConfig pod = HostNetworkPodConfig(options_.pod_name, options_.pod_namespace,
                                                    options_.annotations, log_dir);
    if (options_.pull_if_missing) SS_RETURN_IF_ERROR(PullIfMissing(image, pod));

    v1::RunPodSandboxRequest run;
    *run.mutable_config() = pod;
    run.set_runtime_handler(options_.runtime_handler);
    SS_ASSIGN_OR_RETURN(v1::RunPodSandboxResponse sandbox, client_.RunPodSandbox(run));
    sandbox_id_ = sandbox.pod_sandbox_id();

    v1::CreateContainerRequest create;
    create.set_pod_sandbox_id(sandbox_id_);
    *create.mutable_sandbox_config() = pod;
    v1::ContainerConfig* config = create.mutable_config();
    config->mutable_metadata()->set_name(kContainerName);
    config->mutable_image()->set_image(image);
    for (const std::string& arg : argv) config->add_command(arg);
    for (const auto& [key, value] : options_.env) {
      v1::KeyValue* kv = config->add_envs();
      kv->set_key(key);
      kv->set_value(value);
    }
    config->set_log_path(kLogPath);
    v1::NamespaceOption* ns =
        config->mutable_linux()->mutable_security_context()->mutable_namespace_options();
    ns->set_network(v1::NODE);
    ns->set_pid(v1::CONTAINER);
    SS_ASSIGN_OR_RETURN(v1::CreateContainerResponse created, client_.CreateContainer(create));
    container_id_ = created.container_id();

    v1::StartContainerRequest start;
    start.set_container_id(container_id_);
    SS_RETURN_IF_ERROR(client_.StartContainer(start).status());

    SS_ASSIGN_OR_RETURN(v1::ContainerStatus status, WaitForExit());
    RunResult result;
    result.exit_code = status.exit_code();
    result.reason = status.reason();
    result.sandbox_id = sandbox_id_;
    result.container_id = container_id_;
    // The runtime finishes copying the container's output before it reports EXITED
    // (containerd waits for the IO copiers when it deletes the task), so the log is whole.
    auto log = ReadFileToString(absl::StrCat(log_dir, "/", kLogPath), size_t{256} << 20);
    if (!log.ok() && !absl::IsNotFound(log.status())) return log.status();
    if (log.ok()) {
      SS_ASSIGN_OR_RETURN(ContainerOutput output, ParseContainerLog(*log));
      result.stdout_data = std::move(output.stdout_data);
      result.stderr_data = std::move(output.stderr_data);
      result.first_output = output.first_output;
    }
    return result;
  }

  // Stops and removes what Execute created; every step is tried. The first error, if any.
  absl::Status Cleanup() {
    absl::Status first;
    auto note = [&first](absl::Status st) {
      if (!st.ok() && first.ok()) first = std::move(st);
    };
    if (!container_id_.empty()) {
      v1::StopContainerRequest stop;
      stop.set_container_id(container_id_);
      stop.set_timeout(0);
      note(client_.StopContainer(stop).status());
      v1::RemoveContainerRequest remove;
      remove.set_container_id(container_id_);
      note(client_.RemoveContainer(remove).status());
    }
    if (!sandbox_id_.empty()) {
      v1::StopPodSandboxRequest stop;
      stop.set_pod_sandbox_id(sandbox_id_);
      note(client_.StopPodSandbox(stop).status());
      v1::RemovePodSandboxRequest remove;
      remove.set_pod_sandbox_id(sandbox_id_);
      note(client_.RemovePodSandbox(remove).status());
    }
    return first;
  }

 private:
  absl::Status PullIfMissing(const std::string& image, const v1::PodSandboxConfig& pod) {
    v1::ImageStatusRequest status;
    status.mutable_image()->set_image(image);
    SS_ASSIGN_OR_RETURN(v1::ImageStatusResponse present, client_.ImageStatus(status));
    if (present.has_image()) return absl::OkStatus();
    v1::PullImageRequest pull;
    pull.mutable_image()->set_image(image);
    *pull.mutable_auth() = options_.auth;
    *pull.mutable_sandbox_config() = pod;
    return client_.PullImage(pull).status();
  }

  absl::StatusOr<v1::ContainerStatus> WaitForExit() {
    absl::Time deadline = absl::Now() + options_.exit_timeout;
    v1::ContainerStatusRequest request;
    request.set_container_id(container_id_);
    while (true) {
      SS_ASSIGN_OR_RETURN(v1::ContainerStatusResponse response, client_.ContainerStatus(request));
      if (response.status().state() == v1::CONTAINER_EXITED) return response.status();
      if (absl::Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("container ", container_id_, " did not exit within ",
                         absl::FormatDuration(options_.exit_timeout), " (state ",
                         v1::ContainerState_Name(response.status().state()), ")"));
      }
      absl::SleepFor(options_.poll_interval);
    }
  }

  CriClient& client_;
  const RunOptions& options_;
  std::string sandbox_id_;
  std::string container_id_;
};

}  // namespace

v1::PodSandboxConfig HostNetworkPodConfig(const std::string& name, const std::string& pod_namespace,
                                          const std::map<std::string, std::string>& annotations,
                                          const std::string& log_directory) {
  v1::PodSandboxConfig pod;
  v1::PodSandboxMetadata* meta = pod.mutable_metadata();
  meta->set_name(name);
  meta->set_namespace_(pod_namespace);
  meta->set_uid(RandomUid());
  meta->set_attempt(0);
  pod.set_log_directory(log_directory);
  for (const auto& [key, value] : annotations) (*pod.mutable_annotations())[key] = value;
  pod.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_network(
      v1::NODE);
  return pod;
}

absl::StatusOr<RunResult> RunOnce(CriClient& client, const std::string& image,
                                  const std::vector<std::string>& argv, const RunOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("cri run: no command given");
  SS_ASSIGN_OR_RETURN(TempDir logs, TempDir::Create("slipstream-cri-run-", options.log_parent));
  Run run(client, options);
  absl::StatusOr<RunResult> result = run.Execute(image, argv, logs.path());
  absl::Status cleanup = run.Cleanup();
  if (!cleanup.ok()) {
    cleanup = Annotate(cleanup, "cri run cleanup");
    if (!result.ok()) {
      log::Warn("cri run: cleanup after a failed run failed", {{"error", cleanup.ToString()}});
    } else {
      return cleanup;
    }
  }
  return result;
}

}  // namespace slipstream::cri
