// SPDX-License-Identifier: Apache-2.0
#include "cri/client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status.h"
#include "common/strings.h"
#include "cri/grpc_status.h"

namespace slipstream::cri {
namespace {

constexpr char kRuntimeService[] = "/runtime.v1.RuntimeService/";
constexpr char kImageService[] = "/runtime.v1.ImageService/";

}  // namespace

absl::StatusOr<std::string> GrpcTarget(std::string_view endpoint) {
  std::string_view path = endpoint;
  if (path.starts_with("unix://")) {
    path.remove_prefix(7);
  } else if (path.starts_with("unix:")) {
    path.remove_prefix(5);
  }
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "CRI endpoint \"", AV(endpoint), "\": want unix:///path/to/socket or an absolute path"));
  }
  return absl::StrCat("unix://", AV(path));
}

absl::StatusOr<std::unique_ptr<CriClient>> CriClient::Connect(const CriClientOptions& options) {
  CriClientOptions opts = options;
  if (opts.image_endpoint.empty()) opts.image_endpoint = opts.runtime_endpoint;
  SS_ASSIGN_OR_RETURN(std::string runtime_target, GrpcTarget(opts.runtime_endpoint));
  SS_ASSIGN_OR_RETURN(std::string image_target, GrpcTarget(opts.image_endpoint));
  opts.runtime_endpoint = runtime_target;
  opts.image_endpoint = image_target;
  grpc::ChannelArguments args;
  // Image configs and ListImages answers of big nodes exceed gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(64 << 20);
  auto runtime_channel =
      grpc::CreateCustomChannel(runtime_target, grpc::InsecureChannelCredentials(), args);
  auto image_channel =
      image_target == runtime_target
          ? runtime_channel
          : grpc::CreateCustomChannel(image_target, grpc::InsecureChannelCredentials(), args);
  return std::make_unique<CriClient>(std::move(runtime_channel), std::move(image_channel),
                                     std::move(opts));
}

CriClient::CriClient(std::shared_ptr<grpc::Channel> runtime_channel,
                     std::shared_ptr<grpc::Channel> image_channel, CriClientOptions options)
    : options_(std::move(options)),
      runtime_(v1::RuntimeService::NewStub(runtime_channel)),
      image_(v1::ImageService::NewStub(image_channel)) {
  if (options_.image_endpoint.empty()) options_.image_endpoint = options_.runtime_endpoint;
}

template <typename Stub, typename Request, typename Response>
absl::StatusOr<Response> CriClient::Call(Stub* stub,
                                         grpc::Status (Stub::*method)(grpc::ClientContext*,
                                                                      const Request&, Response*),
                                         std::string_view rpc, const std::string& endpoint,
                                         const Request& request, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  Response response;
  grpc::Status status = (stub->*method)(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status, absl::StrCat(AV(rpc), " on ", endpoint));
  return response;
}

#define SS_CRI_RUNTIME_RPC(Name)                                                          \
  absl::StatusOr<v1::Name##Response> CriClient::Name(const v1::Name##Request& request) {  \
    return Call(runtime_.get(), &v1::RuntimeService::Stub::Name,                          \
                absl::StrCat(kRuntimeService, #Name), options_.runtime_endpoint, request, \
                options_.timeout);                                                        \
  }
#define SS_CRI_IMAGE_RPC(Name)                                                                   \
  absl::StatusOr<v1::Name##Response> CriClient::Name(const v1::Name##Request& request) {         \
    return Call(image_.get(), &v1::ImageService::Stub::Name, absl::StrCat(kImageService, #Name), \
                options_.image_endpoint, request, options_.timeout);                             \
  }

SS_CRI_RUNTIME_RPC(Version)
SS_CRI_RUNTIME_RPC(RunPodSandbox)
SS_CRI_RUNTIME_RPC(StopPodSandbox)
SS_CRI_RUNTIME_RPC(RemovePodSandbox)
SS_CRI_RUNTIME_RPC(PodSandboxStatus)
SS_CRI_RUNTIME_RPC(CreateContainer)
SS_CRI_RUNTIME_RPC(StartContainer)
SS_CRI_RUNTIME_RPC(StopContainer)
SS_CRI_RUNTIME_RPC(RemoveContainer)
SS_CRI_RUNTIME_RPC(ListContainers)
SS_CRI_RUNTIME_RPC(ContainerStatus)
SS_CRI_IMAGE_RPC(ListImages)
SS_CRI_IMAGE_RPC(ImageStatus)
SS_CRI_IMAGE_RPC(RemoveImage)
SS_CRI_IMAGE_RPC(ImageFsInfo)

#undef SS_CRI_RUNTIME_RPC
#undef SS_CRI_IMAGE_RPC

absl::StatusOr<v1::PullImageResponse> CriClient::PullImage(const v1::PullImageRequest& request) {
  return Call(image_.get(), &v1::ImageService::Stub::PullImage,
              absl::StrCat(kImageService, "PullImage"), options_.image_endpoint, request,
              options_.pull_timeout);
}

}  // namespace slipstream::cri
