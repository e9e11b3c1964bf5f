// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cri/api.grpc.pb.h"

namespace slipstream::cri::testing {

namespace v1 = ::runtime::v1;

// An in-process CRI runtime for unit tests: serves RuntimeService and ImageService on a unix
// socket with a scripted, in-memory behaviour. It records every call ("RunPodSandbox",
// "StopContainer c-1", ...) and the last request of each kind, can fail any RPC with a given
// status, keeps a set of images, and plays a container: StartContainer writes `log_text` to
// the container's CRI log file (sandbox log_directory + container log_path), and
// ContainerStatus answers RUNNING `polls_before_exit` times, then EXITED with `exit_code`.
// Thread-safe (gRPC's sync server threads); configure it before the client calls.
class FakeCriServer final : public v1::RuntimeService::Service, public v1::ImageService::Service {
 public:
  // Starts serving on `socket_path`. Unavailable when gRPC cannot bind.
  static absl::StatusOr<std::unique_ptr<FakeCriServer>> Start(const std::string& socket_path);
  ~FakeCriServer() override;

  // --- scripting (before the calls) ---
  // Makes `rpc` (e.g. "StartContainer") answer `status` from now on.
  void FailRpc(const std::string& rpc, grpc::Status status);
  void AddImage(const std::string& name, const std::string& id, uint64_t size);
  void SetContainerScript(std::string log_text, int polls_before_exit, int exit_code);

  // --- observation ---
  std::vector<std::string> calls() const;
  bool HasImage(const std::string& name) const;
  v1::PullImageRequest last_pull() const;
  v1::RunPodSandboxRequest last_run_pod() const;
  v1::CreateContainerRequest last_create() const;
  v1::StopContainerRequest last_stop_container() const;

  // --- RuntimeService ---
  grpc::Status Version(grpc::ServerContext*, const v1::VersionRequest*,
                       v1::VersionResponse*) override;
  grpc::Status RunPodSandbox(grpc::ServerContext*, const v1::RunPodSandboxRequest*,
                             v1::RunPodSandboxResponse*) override;
  grpc::Status StopPodSandbox(grpc::ServerContext*, const v1::StopPodSandboxRequest*,
                              v1::StopPodSandboxResponse*) override;
  grpc::Status RemovePodSandbox(grpc::ServerContext*, const v1::RemovePodSandboxRequest*,
                                v1::RemovePodSandboxResponse*) override;
  grpc::Status CreateContainer(grpc::ServerContext*, const v1::CreateContainerRequest*,
                               v1::CreateContainerResponse*) override;
  grpc::Status StartContainer(grpc::ServerContext*, const v1::StartContainerRequest*,
                              v1::StartContainerResponse*) override;
  grpc::Status StopContainer(grpc::ServerContext*, const v1::StopContainerRequest*,
                             v1::StopContainerResponse*) override;
  grpc::Status RemoveContainer(grpc::ServerContext*, const v1::RemoveContainerRequest*,
                               v1::RemoveContainerResponse*) override;
  grpc::Status ContainerStatus(grpc::ServerContext*, const v1::ContainerStatusRequest*,
                               v1::ContainerStatusResponse*) override;

  // --- ImageService ---
  grpc::Status ListImages(grpc::ServerContext*, const v1::ListImagesRequest*,
                          v1::ListImagesResponse*) override;
  grpc::Status ImageStatus(grpc::ServerContext*, const v1::ImageStatusRequest*,
                           v1::ImageStatusResponse*) override;
  grpc::Status PullImage(grpc::ServerContext*, const v1::PullImageRequest*,
                         v1::PullImageResponse*) override;
  grpc::Status RemoveImage(grpc::ServerContext*, const v1::RemoveImageRequest*,
                           v1::RemoveImageResponse*) override;
  grpc::Status ImageFsInfo(grpc::ServerContext*, const v1::ImageFsInfoRequest*,
                           v1::ImageFsInfoResponse*) override;

 private:
  FakeCriServer() = default;
  // Records `call` and returns the scripted failure of `rpc`, or OK.
  grpc::Status Enter(const std::string& rpc, const std::string& call) ABSL_LOCKS_EXCLUDED(mu_);

  struct FakeImage {
    std::string id;
    uint64_t size = 0;
  };

  std::unique_ptr<grpc::Server> server_;
  mutable absl::Mutex mu_;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, grpc::Status> failures_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, FakeImage> images_ ABSL_GUARDED_BY(mu_);
  std::string log_text_ ABSL_GUARDED_BY(mu_);
  int polls_before_exit_ ABSL_GUARDED_BY(mu_) = 0;
  int exit_code_ ABSL_GUARDED_BY(mu_) = 0;
  int status_polls_ ABSL_GUARDED_BY(mu_) = 0;
  int next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, v1::PodSandboxConfig> sandboxes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::CreateContainerRequest> containers_ ABSL_GUARDED_BY(mu_);
  v1::PullImageRequest last_pull_ ABSL_GUARDED_BY(mu_);
  v1::RunPodSandboxRequest last_run_pod_ ABSL_GUARDED_BY(mu_);
  v1::CreateContainerRequest last_create_ ABSL_GUARDED_BY(mu_);
  v1::StopContainerRequest last_stop_container_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::cri::testing
