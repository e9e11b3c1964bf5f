// SPDX-License-Identifier: Apache-2.0
// Pins proto/cri/api.proto to the upstream k8s.io/cri-api runtime/v1 numbering: a field with
// the wrong number or type would make containerd (or kubelet, once slipstreamd proxies the
// ImageService) read garbage without any error.
#include <google/protobuf/descriptor.h>

#include <string>

#include "cri/api.pb.h"
#include "gtest/gtest.h"

namespace slipstream::cri {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;

struct FieldPin {
  const char* message;  // without the "runtime.v1." package
  const char* field;
  int number;
  FieldDescriptor::Type type;
};

constexpr auto kString = FieldDescriptor::TYPE_STRING;
constexpr auto kMessage = FieldDescriptor::TYPE_MESSAGE;
constexpr auto kBool = FieldDescriptor::TYPE_BOOL;
constexpr auto kEnum = FieldDescriptor::TYPE_ENUM;
constexpr auto kInt64 = FieldDescriptor::TYPE_INT64;
constexpr auto kInt32 = FieldDescriptor::TYPE_INT32;
constexpr auto kUint64 = FieldDescriptor::TYPE_UINT64;
constexpr auto kUint32 = FieldDescriptor::TYPE_UINT32;

// Every field of every ImageService message, and the RuntimeService fields RunOnce uses.
const FieldPin kPins[] = {
    {"ImageSpec", "image", 1, kString},
    {"ImageSpec", "annotations", 2, kMessage},
    {"ImageSpec", "user_specified_image", 18, kString},
    {"ImageSpec", "runtime_handler", 19, kString},
    {"ImageSpec", "image_ref", 20, kString},
    {"AuthConfig", "username", 1, kString},
    {"AuthConfig", "password", 2, kString},
    {"AuthConfig", "auth", 3, kString},
    {"AuthConfig", "server_address", 4, kString},
    {"AuthConfig", "identity_token", 5, kString},
    {"AuthConfig", "registry_token", 6, kString},
    {"PullImageRequest", "image", 1, kMessage},
    {"PullImageRequest", "auth", 2, kMessage},
    {"PullImageRequest", "sandbox_config", 3, kMessage},
    {"PullImageResponse", "image_ref", 1, kString},
    {"ImageFilter", "image", 1, kMessage},
    {"ListImagesRequest", "filter", 1, kMessage},
    {"ListImagesResponse", "images", 1, kMessage},
    {"Image", "id", 1, kString},
    {"Image", "repo_tags", 2, kString},
    {"Image", "repo_digests", 3, kString},
    {"Image", "size", 4, kUint64},
    {"Image", "uid", 5, kMessage},
    {"Image", "username", 6, kString},
    {"Image", "spec", 7, kMessage},
    {"Image", "pinned", 8, kBool},
    {"Image", "image_source", 9, kString},
    {"ImageStatusRequest", "image", 1, kMessage},
    {"ImageStatusRequest", "verbose", 2, kBool},
    {"ImageStatusResponse", "image", 1, kMessage},
    {"ImageStatusResponse", "info", 2, kMessage},
    {"RemoveImageRequest", "image", 1, kMessage},
    {"ImageFsInfoResponse", "image_filesystems", 1, kMessage},
    {"ImageFsInfoResponse", "container_filesystems", 2, kMessage},
    {"FilesystemUsage", "timestamp", 1, kInt64},
    {"FilesystemUsage", "fs_id", 2, kMessage},
    {"FilesystemUsage", "used_bytes", 3, kMessage},
    {"FilesystemUsage", "inodes_used", 4, kMessage},
    {"FilesystemIdentifier", "mountpoint", 1, kString},
    {"UInt64Value", "value", 1, kUint64},
    {"Int64Value", "value", 1, kInt64},
    {"PodSandboxConfig", "metadata", 1, kMessage},
    {"PodSandboxConfig", "hostname", 2, kString},
    {"PodSandboxConfig", "log_directory", 3, kString},
    {"PodSandboxConfig", "dns_config", 4, kMessage},
    {"PodSandboxConfig", "port_mappings", 5, kMessage},
    {"PodSandboxConfig", "labels", 6, kMessage},
    {"PodSandboxConfig", "annotations", 7, kMessage},
    {"PodSandboxConfig", "linux", 8, kMessage},
    {"PodSandboxConfig", "windows", 9, kMessage},
    {"PodSandboxMetadata", "name", 1, kString},
    {"PodSandboxMetadata", "uid", 2, kString},
    {"PodSandboxMetadata", "namespace", 3, kString},
    {"PodSandboxMetadata", "attempt", 4, kUint32},
    {"LinuxPodSandboxConfig", "cgroup_parent", 1, kString},
    {"LinuxPodSandboxConfig", "security_context", 2, kMessage},
    {"LinuxPodSandboxConfig", "sysctls", 3, kMessage},
    {"LinuxPodSandboxConfig", "overhead", 4, kMessage},
    {"LinuxPodSandboxConfig", "resources", 5, kMessage},
    {"LinuxSandboxSecurityContext", "namespace_options", 1, kMessage},
    {"LinuxSandboxSecurityContext", "run_as_group", 8, kMessage},
    {"LinuxSandboxSecurityContext", "supplemental_groups_policy", 11, kEnum},
    {"NamespaceOption", "network", 1, kEnum},
    {"NamespaceOption", "pid", 2, kEnum},
    {"NamespaceOption", "ipc", 3, kEnum},
    {"NamespaceOption", "target_id", 4, kString},
    {"NamespaceOption", "userns_options", 5, kMessage},
    {"RunPodSandboxRequest", "config", 1, kMessage},
    {"RunPodSandboxRequest", "runtime_handler", 2, kString},
    {"RunPodSandboxResponse", "pod_sandbox_id", 1, kString},
    {"CreateContainerRequest", "pod_sandbox_id", 1, kString},
    {"CreateContainerRequest", "config", 2, kMessage},
    {"CreateContainerRequest", "sandbox_config", 3, kMessage},
    {"ContainerConfig", "metadata", 1, kMessage},
    {"ContainerConfig", "image", 2, kMessage},
    {"ContainerConfig", "command", 3, kString},
    {"ContainerConfig", "args", 4, kString},
    {"ContainerConfig", "envs", 6, kMessage},
    {"ContainerConfig", "log_path", 11, kString},
    {"ContainerConfig", "linux", 15, kMessage},
    {"ContainerConfig", "CDI_devices", 17, kMessage},
    {"LinuxContainerSecurityContext", "namespace_options", 3, kMessage},
    {"LinuxContainerSecurityContext", "supplemental_groups_policy", 17, kEnum},
    {"StopContainerRequest", "timeout", 2, kInt64},
    {"ContainerStatusRequest", "container_id", 1, kString},
    {"ContainerStatus", "state", 3, kEnum},
    {"ContainerStatus", "finished_at", 6, kInt64},
    {"ContainerStatus", "exit_code", 7, kInt32},
    {"ContainerStatus", "reason", 10, kString},
    {"ContainerStatus", "log_path", 15, kString},
    {"ContainerStatus", "image_source", 19, kString},
    {"VersionResponse", "runtime_api_version", 4, kString},
};

TEST(CriApiProtoTest, FieldNumbersAndTypesMatchUpstream) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  // Make sure the generated file is linked in before looking names up.
  ASSERT_NE(::runtime::v1::PullImageRequest::descriptor(), nullptr);
  for (const FieldPin& pin : kPins) {
    const Descriptor* message =
        pool->FindMessageTypeByName(std::string("runtime.v1.") + pin.message);
    ASSERT_NE(message, nullptr) << pin.message;
    const FieldDescriptor* field = message->FindFieldByName(pin.field);
    ASSERT_NE(field, nullptr) << pin.message << "." << pin.field;
    EXPECT_EQ(field->number(), pin.number) << pin.message << "." << pin.field;
    EXPECT_EQ(field->type(), pin.type) << pin.message << "." << pin.field;
  }
}

TEST(CriApiProtoTest, EnumValuesMatchUpstream) {
  EXPECT_EQ(::runtime::v1::POD, 0);
  EXPECT_EQ(::runtime::v1::CONTAINER, 1);
  EXPECT_EQ(::runtime::v1::NODE, 2);
  EXPECT_EQ(::runtime::v1::TARGET, 3);
  EXPECT_EQ(::runtime::v1::CONTAINER_CREATED, 0);
  EXPECT_EQ(::runtime::v1::CONTAINER_RUNNING, 1);
  EXPECT_EQ(::runtime::v1::CONTAINER_EXITED, 2);
  EXPECT_EQ(::runtime::v1::CONTAINER_UNKNOWN, 3);
  EXPECT_EQ(::runtime::v1::SANDBOX_READY, 0);
  EXPECT_EQ(::runtime::v1::SANDBOX_NOTREADY, 1);
  EXPECT_EQ(::runtime::v1::SCTP, 2);
  EXPECT_EQ(::runtime::v1::PROPAGATION_BIDIRECTIONAL, 2);
  EXPECT_EQ(::runtime::v1::SecurityProfile::Localhost, 2);
  EXPECT_EQ(::runtime::v1::Strict, 1);
}

TEST(CriApiProtoTest, ServicesHaveTheUpstreamNames) {
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  ASSERT_NE(::runtime::v1::PullImageRequest::descriptor(), nullptr);
  auto* image = pool->FindServiceByName("runtime.v1.ImageService");
  ASSERT_NE(image, nullptr);
  for (const char* rpc : {"ListImages", "ImageStatus", "PullImage", "RemoveImage", "ImageFsInfo"}) {
    EXPECT_NE(image->FindMethodByName(rpc), nullptr) << rpc;
  }
  auto* runtime = pool->FindServiceByName("runtime.v1.RuntimeService");
  ASSERT_NE(runtime, nullptr);
  for (const char* rpc : {"Version", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox",
                          "PodSandboxStatus", "CreateContainer", "StartContainer", "StopContainer",
                          "RemoveContainer", "ListContainers", "ContainerStatus"}) {
    EXPECT_NE(runtime->FindMethodByName(rpc), nullptr) << rpc;
  }
}

// Fields this file leaves out survive a parse/serialize round trip, so a proxy forwards
// them untouched.
TEST(CriApiProtoTest, UndeclaredFieldsPassThrough) {
  ::runtime::v1::ContainerConfig config;
  config.set_log_path("x.log");
  std::string wire = config.SerializeAsString();
  // Field 16 (windows, not declared here), length-delimited, 2 bytes of payload.
  wire += std::string("\x82\x01\x02\x08\x01", 5);
  ::runtime::v1::ContainerConfig parsed;
  ASSERT_TRUE(parsed.ParseFromString(wire));
  EXPECT_EQ(parsed.log_path(), "x.log");
  EXPECT_EQ(parsed.SerializeAsString(), wire);
}

}  // namespace
}  // namespace slipstream::cri
