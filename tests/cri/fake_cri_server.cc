// SPDX-License-Identifier: Apache-2.0
#include "tests/cri/fake_cri_server.h"

#include "absl/strings/str_cat.h"
#include "common/fd.h"

namespace slipstream::cri::testing {

namespace {

grpc::Status NoSuchContainer() {
  return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such container");
}

}  // namespace

absl::StatusOr<std::unique_ptr<FakeCriServer>> FakeCriServer::Start(
    const std::string& socket_path) {
  std::unique_ptr<FakeCriServer> fake(new FakeCriServer());
  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix://" + socket_path, grpc::InsecureServerCredentials());
  builder.RegisterService(static_cast<v1::RuntimeService::Service*>(fake.get()));
  builder.RegisterService(static_cast<v1::ImageService::Service*>(fake.get()));
  fake->server_ = builder.BuildAndStart();
  if (!fake->server_) return absl::UnavailableError("fake CRI server: cannot bind " + socket_path);
  return fake;
}

FakeCriServer::~FakeCriServer() {
  if (server_) server_->Shutdown();
}

void FakeCriServer::FailRpc(const std::string& rpc, grpc::Status status) {
  absl::MutexLock lock(&mu_);
  failures_[rpc] = std::move(status);
}

void FakeCriServer::AddImage(const std::string& name, const std::string& id, uint64_t size) {
  absl::MutexLock lock(&mu_);
  images_[name] = {id, size};
}

void FakeCriServer::SetContainerScript(std::string log_text, int polls_before_exit, int exit_code) {
  absl::MutexLock lock(&mu_);
  log_text_ = std::move(log_text);
  polls_before_exit_ = polls_before_exit;
  exit_code_ = exit_code;
}

std::vector<std::string> FakeCriServer::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

bool FakeCriServer::HasImage(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  return images_.count(name) > 0;
}

v1::PullImageRequest FakeCriServer::last_pull() const {
  absl::MutexLock lock(&mu_);
  return last_pull_;
}

v1::RunPodSandboxRequest FakeCriServer::last_run_pod() const {
  absl::MutexLock lock(&mu_);
  return last_run_pod_;
}

v1::CreateContainerRequest FakeCriServer::last_create() const {
  absl::MutexLock lock(&mu_);
  return last_create_;
}

v1::StopContainerRequest FakeCriServer::last_stop_container() const {
  absl::MutexLock lock(&mu_);
  return last_stop_container_;
}

grpc::Status FakeCriServer::Enter(const std::string& rpc, const std::string& call) {
  absl::MutexLock lock(&mu_);
  calls_.push_back(call);
  auto it = failures_.find(rpc);
  return it == failures_.end() ? grpc::Status::OK : it->second;
}

grpc::Status FakeCriServer::Version(grpc::ServerContext*, const v1::VersionRequest*,
                                    v1::VersionResponse* response) {
  grpc::Status st = Enter("Version", "Version");
  if (!st.ok()) return st;
  response->set_version("0.1.0");
  response->set_runtime_name("fake");
  response->set_runtime_version("1.0.0");
  response->set_runtime_api_version("v1");
  return st;
}

grpc::Status FakeCriServer::RunPodSandbox(grpc::ServerContext*,
                                          const v1::RunPodSandboxRequest* request,
                                          v1::RunPodSandboxResponse* response) {
  grpc::Status st = Enter("RunPodSandbox", "RunPodSandbox");
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  last_run_pod_ = *request;
  std::string id = absl::StrCat("pod-", next_id_++);
  sandboxes_[id] = request->config();
  response->set_pod_sandbox_id(id);
  return st;
}

grpc::Status FakeCriServer::StopPodSandbox(grpc::ServerContext*,
                                           const v1::StopPodSandboxRequest* request,
                                           v1::StopPodSandboxResponse*) {
  return Enter("StopPodSandbox", "StopPodSandbox " + request->pod_sandbox_id());
}

grpc::Status FakeCriServer::RemovePodSandbox(grpc::ServerContext*,
                                             const v1::RemovePodSandboxRequest* request,
                                             v1::RemovePodSandboxResponse*) {
  grpc::Status st = Enter("RemovePodSandbox", "RemovePodSandbox " + request->pod_sandbox_id());
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  sandboxes_.erase(request->pod_sandbox_id());
  return st;
}

grpc::Status FakeCriServer::CreateContainer(grpc::ServerContext*,
                                            const v1::CreateContainerRequest* request,
                                            v1::CreateContainerResponse* response) {
  grpc::Status st = Enter("CreateContainer", "CreateContainer " + request->pod_sandbox_id());
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  last_create_ = *request;
  if (sandboxes_.count(request->pod_sandbox_id()) == 0) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such sandbox");
  }
  std::string id = absl::StrCat("ctr-", next_id_++);
  containers_[id] = *request;
  response->set_container_id(id);
  return st;
}

grpc::Status FakeCriServer::StartContainer(grpc::ServerContext*,
                                           const v1::StartContainerRequest* request,
                                           v1::StartContainerResponse*) {
  grpc::Status st = Enter("StartContainer", "StartContainer " + request->container_id());
  if (!st.ok()) return st;
  std::string path, text;
  {
    absl::MutexLock lock(&mu_);
    auto it = containers_.find(request->container_id());
    if (it == containers_.end()) return NoSuchContainer();
    const v1::CreateContainerRequest& c = it->second;
    path = absl::StrCat(sandboxes_[c.pod_sandbox_id()].log_directory(), "/", c.config().log_path());
    text = log_text_;
    status_polls_ = 0;
  }
  // The real runtime writes the log as the container runs; the fake writes it all at once.
  absl::Status written = WriteFileAtomic(path, text);
  if (!written.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, written.ToString());
  return st;
}

grpc::Status FakeCriServer::StopContainer(grpc::ServerContext*,
                                          const v1::StopContainerRequest* request,
                                          v1::StopContainerResponse*) {
  grpc::Status st = Enter("StopContainer", "StopContainer " + request->container_id());
  absl::MutexLock lock(&mu_);
  last_stop_container_ = *request;
  return st;
}

grpc::Status FakeCriServer::RemoveContainer(grpc::ServerContext*,
                                            const v1::RemoveContainerRequest* request,
                                            v1::RemoveContainerResponse*) {
  grpc::Status st = Enter("RemoveContainer", "RemoveContainer " + request->container_id());
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  containers_.erase(request->container_id());
  return st;
}

grpc::Status FakeCriServer::ContainerStatus(grpc::ServerContext*,
                                            const v1::ContainerStatusRequest* request,
                                            v1::ContainerStatusResponse* response) {
  grpc::Status st = Enter("ContainerStatus", "ContainerStatus " + request->container_id());
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  auto it = containers_.find(request->container_id());
  if (it == containers_.end()) return NoSuchContainer();
  v1::ContainerStatus* status = response->mutable_status();
  status->set_id(request->container_id());
  if (status_polls_++ < polls_before_exit_) {
    status->set_state(v1::CONTAINER_RUNNING);
  } else {
    status->set_state(v1::CONTAINER_EXITED);
    status->set_exit_code(exit_code_);
    status->set_reason(exit_code_ == 0 ? "Completed" : "Error");
  }
  return st;
}

grpc::Status FakeCriServer::ListImages(grpc::ServerContext*, const v1::ListImagesRequest*,
                                       v1::ListImagesResponse* response) {
  grpc::Status st = Enter("ListImages", "ListImages");
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, image] : images_) {
    v1::Image* out = response->add_images();
    out->set_id(image.id);
    out->add_repo_tags(name);
    out->set_size(image.size);
  }
  return st;
}

grpc::Status FakeCriServer::ImageStatus(grpc::ServerContext*, const v1::ImageStatusRequest* request,
                                        v1::ImageStatusResponse* response) {
  grpc::Status st = Enter("ImageStatus", "ImageStatus " + request->image().image());
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  auto it = images_.find(request->image().image());
  if (it != images_.end()) {
    response->mutable_image()->set_id(it->second.id);
    response->mutable_image()->add_repo_tags(it->first);
    response->mutable_image()->set_size(it->second.size);
  }
  return st;
}

grpc::Status FakeCriServer::PullImage(grpc::ServerContext*, const v1::PullImageRequest* request,
                                      v1::PullImageResponse* response) {
  grpc::Status st = Enter("PullImage", "PullImage " + request->image().image());
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  last_pull_ = *request;
  std::string id = "sha256:" + std::string(64, 'a');
  images_[request->image().image()] = {id, 1234};
  response->set_image_ref(id);
  return st;
}

grpc::Status FakeCriServer::RemoveImage(grpc::ServerContext*, const v1::RemoveImageRequest* request,
                                        v1::RemoveImageResponse*) {
  grpc::Status st = Enter("RemoveImage", "RemoveImage " + request->image().image());
  if (!st.ok()) return st;
  absl::MutexLock lock(&mu_);
  images_.erase(request->image().image());
  return st;
}

grpc::Status FakeCriServer::ImageFsInfo(grpc::ServerContext*, const v1::ImageFsInfoRequest*,
                                        v1::ImageFsInfoResponse* response) {
  grpc::Status st = Enter("ImageFsInfo", "ImageFsInfo");
  if (!st.ok()) return st;
  v1::FilesystemUsage* fs = response->add_image_filesystems();
  fs->set_timestamp(1);
  fs->mutable_fs_id()->set_mountpoint("/var/lib/fake");
  fs->mutable_used_bytes()->set_value(4096);
  return st;
}

}  // namespace slipstream::cri::testing
