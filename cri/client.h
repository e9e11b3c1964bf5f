// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cri/api.grpc.pb.h"

namespace slipstream::cri {

namespace v1 = ::runtime::v1;

inline constexpr char kDefaultEndpoint[] = "unix:///run/containerd/containerd.sock";

struct CriClientOptions {
  // RuntimeService endpoint: "unix:///path", "unix:/path" or an absolute socket path.
  std::string runtime_endpoint = kDefaultEndpoint;
  // ImageService endpoint (kubelet's imageServiceEndpoint); empty = runtime_endpoint.
  std::string image_endpoint;
  // Deadline of every RPC except PullImage.
  absl::Duration timeout = absl::Minutes(2);
  // Deadline of PullImage (multi-GB images take minutes).
  absl::Duration pull_timeout = absl::Minutes(30);
};

// The gRPC target for a CRI endpoint: "unix:///abs/path" for "unix:///abs/path",
// "unix:/abs/path" or "/abs/path". InvalidArgument for anything else (relative paths, TCP):
// CRI runtimes listen on unix sockets.
absl::StatusOr<std::string> GrpcTarget(std::string_view endpoint);

// A typed client of a CRI runtime (containerd's CRI plugin, or slipstreamd's image proxy):
// each method sends one RPC with the configured deadline and returns the response, or the
// server's gRPC status mapped by FromGrpcStatus with the RPC and endpoint named in the message
// (NotFound, InvalidArgument, ... as the runtime answered; Unavailable when nothing listens
// on the socket; DeadlineExceeded when the deadline passed). Image RPCs go to the image
// endpoint, the others to the runtime endpoint.
//
// The caller owns the client. Thread-safe: the gRPC stubs may be used from several threads.
class CriClient {
 public:
  // Creates channels to the endpoints. Connecting is lazy: an absent socket shows up as
  // Unavailable on the first RPC. InvalidArgument for a malformed endpoint.
  static absl::StatusOr<std::unique_ptr<CriClient>> Connect(const CriClientOptions& options);

  // Over existing channels (tests use in-process servers). `options` supplies the deadlines
  // and the endpoint names used in error messages.
  CriClient(std::shared_ptr<grpc::Channel> runtime_channel,
            std::shared_ptr<grpc::Channel> image_channel, CriClientOptions options);

  const CriClientOptions& options() const { return options_; }

  // RuntimeService.
  absl::StatusOr<v1::VersionResponse> Version(const v1::VersionRequest& request = {});
  absl::StatusOr<v1::RunPodSandboxResponse> RunPodSandbox(const v1::RunPodSandboxRequest& request);
  absl::StatusOr<v1::StopPodSandboxResponse> StopPodSandbox(
      const v1::StopPodSandboxRequest& request);
  absl::StatusOr<v1::RemovePodSandboxResponse> RemovePodSandbox(
      const v1::RemovePodSandboxRequest& request);
  absl::StatusOr<v1::PodSandboxStatusResponse> PodSandboxStatus(
      const v1::PodSandboxStatusRequest& request);
  absl::StatusOr<v1::CreateContainerResponse> CreateContainer(
      const v1::CreateContainerRequest& request);
  absl::StatusOr<v1::StartContainerResponse> StartContainer(
      const v1::StartContainerRequest& request);
  absl::StatusOr<v1::StopContainerResponse> StopContainer(const v1::StopContainerRequest& request);
  absl::StatusOr<v1::RemoveContainerResponse> RemoveContainer(
      const v1::RemoveContainerRequest& request);
  absl::StatusOr<v1::ListContainersResponse> ListContainers(
      const v1::ListContainersRequest& request = {});
  absl::StatusOr<v1::ContainerStatusResponse> ContainerStatus(
      const v1::ContainerStatusRequest& request);

  // ImageService.
  absl::StatusOr<v1::ListImagesResponse> ListImages(const v1::ListImagesRequest& request = {});
  // An absent image is not an error: the response's `image` is unset (has_image() false).
  absl::StatusOr<v1::ImageStatusResponse> ImageStatus(const v1::ImageStatusRequest& request);
  absl::StatusOr<v1::PullImageResponse> PullImage(const v1::PullImageRequest& request);
  // Idempotent on the server side: removing an absent image succeeds.
  absl::StatusOr<v1::RemoveImageResponse> RemoveImage(const v1::RemoveImageRequest& request);
  absl::StatusOr<v1::ImageFsInfoResponse> ImageFsInfo(const v1::ImageFsInfoRequest& request = {});

 private:
  // One unary call: sets the deadline, maps the status (naming `rpc` and `endpoint`).
  template <typename Stub, typename Request, typename Response>
  absl::StatusOr<Response> Call(Stub* stub,
                                grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                                             Response*),
                                std::string_view rpc, const std::string& endpoint,
                                const Request& request, absl::Duration timeout);

  CriClientOptions options_;
  std::unique_ptr<v1::RuntimeService::Stub> runtime_;
  std::unique_ptr<v1::ImageService::Stub> image_;
};

}  // namespace slipstream::cri
