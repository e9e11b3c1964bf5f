// SPDX-License-Identifier: Apache-2.0
#include "plugin/cri_image_proxy.h"

#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "cri/client.h"
#include "remote/reference.h"

namespace slipstream::plugin {

namespace v1 = ::runtime::v1;

absl::StatusOr<remote::Credentials> CredentialsFromAuthConfig(const v1::AuthConfig& auth) {
  remote::Credentials c;
  c.identity_token = auth.identity_token();
  c.registry_token = auth.registry_token();
  if (!auth.username().empty() || !auth.password().empty()) {
    c.username = auth.username();
    c.password = auth.password();
  } else if (!auth.auth().empty()) {
    std::string decoded;
    size_t colon = std::string::npos;
    if (absl::Base64Unescape(auth.auth(), &decoded)) colon = decoded.find(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError("auth.auth is not base64 of \"user:password\"");
    }
    c.username = decoded.substr(0, colon);
    c.password = decoded.substr(colon + 1);
  }
  return c;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CriImageProxy::Dial(const std::string& address) {
  absl::StatusOr<std::string> target = cri::GrpcTarget(address);
  if (!target.ok()) return target.status();
  grpc::ChannelArguments args;
  // gRPC's default backoff grows to 2 minutes; kubelet retries image calls itself, so a
  // restarted containerd should be reachable again within a second.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(*target, grpc::InsecureChannelCredentials(), args);
}

CriImageProxy::CriImageProxy(std::shared_ptr<grpc::Channel> upstream, std::string upstream_name,
                             ModeSelector* modes, RuntimeCredentials* credentials)
    : stub_(v1::ImageService::NewStub(std::move(upstream))),
      upstream_name_(std::move(upstream_name)),
      modes_(modes),
      credentials_(credentials) {}

template <typename Call>
grpc::ServerUnaryReactor* CriImageProxy::Forward(grpc::CallbackServerContext* context,
                                                 const char* rpc, Call call) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  // Shared with the completion callback, which is the last user: gRPC keeps its own reference
  // to the call until the callback returned.
  std::shared_ptr<grpc::ClientContext> client = grpc::ClientContext::FromCallbackServerContext(*context);
  call(client.get(), [reactor, client, rpc, upstream = upstream_name_](grpc::Status status) {
    if (!status.ok()) {
      log::Debug("cri proxy: upstream error", {{"rpc", rpc},
                                               {"upstream", upstream},
                                               {"code", static_cast<int>(status.error_code())},
                                               {"error", status.error_message()}});
    }
    reactor->Finish(status);
  });
  return reactor;
}

grpc::ServerUnaryReactor* CriImageProxy::ListImages(grpc::CallbackServerContext* context,
                                                    const v1::ListImagesRequest* request,
                                                    v1::ListImagesResponse* response) {
  return Forward(context, "ListImages", [&](grpc::ClientContext* c, auto done) {
    stub_->async()->ListImages(c, request, response, std::move(done));
  });
}

grpc::ServerUnaryReactor* CriImageProxy::ImageStatus(grpc::CallbackServerContext* context,
                                                     const v1::ImageStatusRequest* request,
                                                     v1::ImageStatusResponse* response) {
  return Forward(context, "ImageStatus", [&](grpc::ClientContext* c, auto done) {
    stub_->async()->ImageStatus(c, request, response, std::move(done));
  });
}

grpc::ServerUnaryReactor* CriImageProxy::RemoveImage(grpc::CallbackServerContext* context,
                                                     const v1::RemoveImageRequest* request,
                                                     v1::RemoveImageResponse* response) {
  return Forward(context, "RemoveImage", [&](grpc::ClientContext* c, auto done) {
    stub_->async()->RemoveImage(c, request, response, std::move(done));
  });
}

grpc::ServerUnaryReactor* CriImageProxy::ImageFsInfo(grpc::CallbackServerContext* context,
                                                     const v1::ImageFsInfoRequest* request,
                                                     v1::ImageFsInfoResponse* response) {
  return Forward(context, "ImageFsInfo", [&](grpc::ClientContext* c, auto done) {
    stub_->async()->ImageFsInfo(c, request, response, std::move(done));
  });
}

grpc::ServerUnaryReactor* CriImageProxy::PullImage(grpc::CallbackServerContext* context,
                                                   const v1::PullImageRequest* request,
                                                   v1::PullImageResponse* response) {
  const std::string& image = request->image().image();
  const auto& annotations = request->sandbox_config().annotations();
  auto annotation = annotations.find(kPullModeAnnotation);
  absl::StatusOr<std::optional<PullMode>> mode =
      PullModeFromAnnotation(annotation == annotations.end() ? nullptr : &annotation->second);
  if (!mode.ok()) {
    log::Warn("cri pull refused", {{"image", image}, {"error", std::string(mode.status().message())}});
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 std::string(mode.status().message())));
    return reactor;
  }
  modes_->RecordPodChoice(image, *mode);

  // The registry the credentials are for is the image's: the one the daemon's client asks
  // the store about. An unparsable reference is containerd's to reject.
  absl::StatusOr<remote::Reference> ref = remote::Reference::Parse(image);
  std::string kind = "none";
  if (ref.ok() && request->has_auth()) {
    absl::StatusOr<remote::Credentials> creds = CredentialsFromAuthConfig(request->auth());
    if (!creds.ok()) {
      log::Warn("cri pull: credentials not recorded",
                {{"registry", ref->registry}, {"error", std::string(creds.status().message())}});
    } else if (!creds->empty()) {
      kind = CredentialKind(*creds);
      credentials_->Record(ref->registry, *std::move(creds));
    }
  }
  log::Info("cri pull", {{"image", image},
                         {"mode", mode->has_value() ? PullModeName(**mode) : "(not set)"},
                         {"registry", ref.ok() ? ref->registry : ""},
                         {"credentials", kind}});
  return Forward(context, "PullImage", [&](grpc::ClientContext* c, auto done) {
    stub_->async()->PullImage(c, request, response, std::move(done));
  });
}

}  // namespace slipstream::plugin
