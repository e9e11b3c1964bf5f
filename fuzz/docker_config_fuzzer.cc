// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the docker config.json parser (remote/credentials.h:
// ParseDockerConfig), which reads a file any user or tool on the node may have written. What
// parses has registry keys already normalized (RegistryFromServerUrl is idempotent and maps
// each key to itself); an error starts with the path it was given and never quotes a secret:
// no password, auth, identitytoken or registrytoken value of the input (of 6+ bytes) appears in
// what the message says beyond the path, the document's keys and the parser's fixed wording.
// Seeds:
// fuzz/corpus/docker_config_fuzzer, config.json files as docker login and helpers write them.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

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

// The fixed wording of ParseDockerConfig's messages. A secret may happen to spell part of it
// ("password" is in `.auth is not "user:password"`): that is no leak.
constexpr std::string_view kWording[] = {
    ": malformed docker config (not a JSON object)",
    ": \"auths\" is not an object",
    ": \"credHelpers\" is not an object",
    ": \"credsStore\" is not a string",
    ": auths",
    ": credHelpers",
    " is not an object",
    " is not a string",
    ".auth is not valid base64",
    ".auth is not \"user:password\"",
    ".username",
    ".password",
    ".identitytoken",
    ".registrytoken",
};

// `message` with every occurrence of `part` replaced by one '\0' (a character no secret of
// 6+ bytes that survives the check below can span).
void Blank(std::string& message, std::string_view part) {
  if (part.empty()) return;
  for (size_t at = message.find(part); at != std::string::npos; at = message.find(part, at + 1)) {
    message.replace(at, part.size(), 1, '\0');
  }
}

// What the message says beyond the path, the document's own keys (as the parser quotes them:
// ["C-escaped, clipped to 120 bytes"]) and the fixed wording: where a secret could leak.
std::string Residue(std::string_view message, const std::vector<std::string>& keys) {
  std::string residue(message);
  Blank(residue, kWhere);
  std::vector<std::string> quoted;
  for (const std::string& k : keys) {
    const std::string clipped = absl::CHexEscape(AV(k).substr(0, 120));
    quoted.push_back(absl::StrCat("[\"", clipped, k.size() > 120 ? "..." : "", "\"]"));
  }
  // Longest first, so a key that contains another is blanked whole.
  std::sort(quoted.begin(), quoted.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  for (const std::string& q : quoted) Blank(residue, q);
  for (std::string_view w : kWording) Blank(residue, w);
  return residue;
}

void CheckNoSecret(std::string_view json, std::string_view message) {
  const Json j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  std::vector<std::string> keys, secrets;
  Collect(j, keys, secrets);
  const std::string residue = Residue(message, keys);
  for (const std::string& s : secrets) {
    if (s.size() < 6 || s.find('\0') != std::string::npos) continue;
    FUZZ_CHECK(residue.find(s) == std::string::npos);
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
