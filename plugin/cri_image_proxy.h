// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cri/api.grpc.pb.h"
#include "plugin/mode_selector.h"
#include "plugin/runtime_credentials.h"
#include "remote/credentials.h"

namespace slipstream::plugin {

// Kubernetes' CRI `runtime.v1.ImageService` served on slipstreamd's socket, for kubelet's
// `imageServiceEndpoint`: every call is forwarded unchanged to containerd's CRI socket
// (`upstream`) and its answer — response, or gRPC code and message — passed back unchanged.
// The forwarded call inherits the incoming call's deadline and cancellation.
//
// PullImage is the one call it reads before forwarding:
//   - `sandbox_config.annotations["slipstream.io/pull-mode"]` (lazy | parallel | containerd)
//     is recorded in the ModeSelector for the normalized image reference, so the Prepares of
//     this pull get that mode; no annotation forgets an earlier choice. An unknown value is
//     answered INVALID_ARGUMENT naming the annotation and the allowed values, and nothing is
//     forwarded.
//   - `auth` (username/password, base64 `auth`, identity token, registry token) is recorded
//     in RuntimeCredentials for the image's registry, so later fetches of the daemon (lazy
//     reads, background completion) authenticate as the pod did. Logs name the registry and
//     the kind of credential, never a secret.
//
// Handlers never block: the forwarded call is asynchronous (gRPC's callback client API) and
// answers the incoming call from gRPC's callback threads. The channel reconnects by itself
// when containerd restarts; calls made while it is down fail with UNAVAILABLE.
//
// Borrows the selector and the credential store, which must outlive the grpc::Server the
// service is registered with. Thread-safe.
class CriImageProxy final : public ::runtime::v1::ImageService::CallbackService {
 public:
  // A channel to the CRI socket `address` ("/run/containerd/containerd.sock" or
  // "unix:///..."), reconnecting within about a second after the socket comes back and
  // without a limit on response size (ListImages of a busy node). InvalidArgument for an
  // address that is not a unix socket path.
  static absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address);

  // `upstream_name` names the upstream in logs.
  CriImageProxy(std::shared_ptr<grpc::Channel> upstream, std::string upstream_name,
                ModeSelector* modes, RuntimeCredentials* credentials);

  grpc::ServerUnaryReactor* ListImages(grpc::CallbackServerContext* context,
                                       const ::runtime::v1::ListImagesRequest* request,
                                       ::runtime::v1::ListImagesResponse* response) override;
  grpc::ServerUnaryReactor* ImageStatus(grpc::CallbackServerContext* context,
                                        const ::runtime::v1::ImageStatusRequest* request,
                                        ::runtime::v1::ImageStatusResponse* response) override;
  grpc::ServerUnaryReactor* PullImage(grpc::CallbackServerContext* context,
                                      const ::runtime::v1::PullImageRequest* request,
                                      ::runtime::v1::PullImageResponse* response) override;
  grpc::ServerUnaryReactor* RemoveImage(grpc::CallbackServerContext* context,
                                        const ::runtime::v1::RemoveImageRequest* request,
                                        ::runtime::v1::RemoveImageResponse* response) override;
  grpc::ServerUnaryReactor* ImageFsInfo(grpc::CallbackServerContext* context,
                                        const ::runtime::v1::ImageFsInfoRequest* request,
                                        ::runtime::v1::ImageFsInfoResponse* response) override;

 private:
  // Starts `call` (one async stub call) with a client context derived from `context` and
  // finishes the incoming call with the upstream's status when it completes.
  template <typename Call>
  grpc::ServerUnaryReactor* Forward(grpc::CallbackServerContext* context, const char* rpc,
                                    Call call);

  const std::unique_ptr<::runtime::v1::ImageService::Stub> stub_;
  const std::string upstream_name_;
  ModeSelector* const modes_;
  RuntimeCredentials* const credentials_;
};

// The credentials in a PullImage request's `auth`: username/password as given, or decoded
// from `auth` (base64 "user:password"), or the identity / registry token. Empty when none is
// set. InvalidArgument when `auth` is not base64 of "user:password" (the message carries no
// part of it).
absl::StatusOr<remote::Credentials> CredentialsFromAuthConfig(
    const ::runtime::v1::AuthConfig& auth);

}  // namespace slipstream::plugin
