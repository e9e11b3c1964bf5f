// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the docker config.json parser (remote/credentials.h:
// ParseDockerConfig), which reads a file any user or tool on the node may have written. What
// parses has registry keys already normalized (RegistryFromServerUrl is idempotent and maps
// each key to itself); an error starts with the path it was given and never quotes a secret:
// no password, auth, identitytoken or registrytoken value of the input (of 6+ bytes, that is
// not also some key of the document) appears in the message. Seeds:
// fuzz/corpus/docker_config_fuzzer, config.json files as docker login and helpers write them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz/fuzz_check.h"
#include "remote/credentials.h"

namespace slipstream::fuzz {
namespace {

using Json = nlohmann::json;

constexpr char kWhere[] = "/root/.docker/config.json";

// Every object key and every secret-bearing string value of `j` (any depth).
void Collect(const Json& j, std::vector<std::string>& keys, std::vector<std::string>& secrets) {
  if (j.is_object()) {
    for (const auto& [key, value] : j.items()) {
      keys.push_back(key);
      if (value.is_string() && (key == "password" || key == "auth" || key == "identitytoken" ||
                                key == "registrytoken")) {
        secrets.push_back(value.get<std::string>());
      }
      Collect(value, keys, secrets);
    }
  } else if (j.is_array()) {
    for (const Json& item : j) Collect(item, keys, secrets);
  }
}

void CheckNoSecret(std::string_view json, std::string_view message) {
  const Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  std::vector<std::string> keys, secrets;
  Collect(j, keys, secrets);
  for (const std::string& s : secrets) {
    if (s.size() < 6 || std::string_view(kWhere).find(s) != std::string_view::npos) continue;
    bool is_key_part = false;
    for (const std::string& k : keys) is_key_part |= k.find(s) != std::string::npos;
    if (!is_key_part) FUZZ_CHECK(message.find(s) == std::string_view::npos);
  }
}

}  // namespace
}  // namespace slipstream::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slipstream;
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<remote::DockerConfig> config = remote::ParseDockerConfig(json, fuzz::kWhere);
  if (!config.ok()) {
    FUZZ_CHECK(config.status().code() == absl::StatusCode::kInvalidArgument);
    const std::string message(config.status().message());
    FUZZ_CHECK(message.substr(0, sizeof(fuzz::kWhere) - 1) == fuzz::kWhere);
    fuzz::CheckNoSecret(json, message);
    return 0;
  }
  for (const auto& [registry, creds] : config->auths) {
    FUZZ_CHECK(remote::RegistryFromServerUrl(registry) == registry);
  }
  for (const auto& [registry, helper] : config->cred_helpers) {
    FUZZ_CHECK(remote::RegistryFromServerUrl(registry) == registry);
  }
  return 0;
}
