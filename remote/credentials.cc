// SPDX-License-Identifier: Apache-2.0
#include "remote/credentials.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/subprocess.h"

namespace slipstream::remote {

namespace {

using Json = nlohmann::json;

constexpr size_t kMaxConfigBytes = 4u << 20;
constexpr absl::string_view kDockerHubServerUrl = "https://index.docker.io/v1/";

// Names (registries, helper names, file paths) may appear in messages; secrets never do.
std::string Clip(absl::string_view text) {
  constexpr size_t kMax = 120;
  std::string out = absl::CHexEscape(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  return out;
}

absl::StatusOr<std::string> OptionalString(const Json& obj, absl::string_view key,
                                           const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (!it->is_string()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ".", key, " is not a string"));
  }
  return it->get<std::string>();
}

absl::StatusOr<Credentials> ParseAuthEntry(const Json& entry, const std::string& where) {
  if (!entry.is_object()) return absl::InvalidArgumentError(absl::StrCat(where, " is not an object"));
  Credentials c;
  SS_ASSIGN_OR_RETURN(std::string auth, OptionalString(entry, "auth", where));
  if (!auth.empty()) {
    std::string decoded;
    if (!absl::Base64Unescape(auth, &decoded)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".auth is not valid base64"));
    }
    size_t colon = decoded.find(':');
    if (colon == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".auth is not \"user:password\""));
    }
    c.username = decoded.substr(0, colon);
    c.password = decoded.substr(colon + 1);
  } else {
    SS_ASSIGN_OR_RETURN(c.username, OptionalString(entry, "username", where));
    SS_ASSIGN_OR_RETURN(c.password, OptionalString(entry, "password", where));
  }
  SS_ASSIGN_OR_RETURN(c.identity_token, OptionalString(entry, "identitytoken", where));
  SS_ASSIGN_OR_RETURN(c.registry_token, OptionalString(entry, "registrytoken", where));
  return c;
}


std::string ServerUrlForHelper(absl::string_view registry) {
  // Helpers store Docker Hub under the legacy v1 URL, everything else under the host.
  if (registry == "docker.io") return std::string(kDockerHubServerUrl);
  return std::string(registry);
}

bool ValidHelperName(absl::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' &&
        c != '.') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string RegistryFromServerUrl(std::string_view url) {
  absl::string_view rest = AV(url);
  for (absl::string_view scheme : {"https://", "http://"}) {
    if (rest.size() >= scheme.size() &&
        absl::EqualsIgnoreCase(rest.substr(0, scheme.size()), scheme)) {
      rest.remove_prefix(scheme.size());
      break;
    }
  }
  std::string host = absl::AsciiStrToLower(rest.substr(0, rest.find('/')));
  if (host == "index.docker.io" || host == "registry-1.docker.io" ||
      host == "registry.hub.docker.com" || host == "docker.io") {
    return "docker.io";
  }
  return host;
}

absl::StatusOr<DockerConfig> ParseDockerConfig(std::string_view json, std::string_view where) {
  const std::string path(where);
  DockerConfig config;
  Json j;
  try {
    j = Json::parse(json, nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception&) {
    j = Json(Json::value_t::discarded);
  }
  // nlohmann's own messages quote the input, which may hold a password: say only where.
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": malformed docker config (not a JSON object)"));
  }
  if (auto it = j.find("auths"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": \"auths\" is not an object"));
    }
    for (const auto& [key, entry] : it->items()) {
      SS_ASSIGN_OR_RETURN(
          Credentials c,
          ParseAuthEntry(entry, absl::StrCat(path, ": auths[\"", Clip(key), "\"]")));
      // Several spellings may name one registry; the first non-empty one wins.
      std::string registry = RegistryFromServerUrl(key);
      auto found = config.auths.find(registry);
      if (found == config.auths.end() || found->second.empty()) {
        config.auths[registry] = std::move(c);
      }
    }
  }
  if (auto it = j.find("credHelpers"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": \"credHelpers\" is not an object"));
    }
    for (const auto& [key, helper] : it->items()) {
      if (!helper.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": credHelpers[\"", Clip(key), "\"] is not a string"));
      }
      config.cred_helpers.emplace(RegistryFromServerUrl(key), helper.get<std::string>());
    }
  }
  if (auto it = j.find("credsStore"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": \"credsStore\" is not a string"));
    }
    config.creds_store = it->get<std::string>();
  }
  return config;
}

DockerConfigCredentials::DockerConfigCredentials(std::string config_path,
                                                 absl::Duration helper_timeout)
    : path_(std::move(config_path)), helper_timeout_(helper_timeout) {}

std::string DockerConfigCredentials::DefaultPath() {
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir != '\0') {
    return absl::StrCat(dir, "/config.json");
  }
  const char* home = std::getenv("HOME");
  return absl::StrCat(home != nullptr ? home : "", "/.docker/config.json");
}

absl::StatusOr<std::shared_ptr<const DockerConfigCredentials::Config>>
DockerConfigCredentials::Current() {
  FileStamp stamp;
  struct stat st;
  if (stat(path_.c_str(), &st) == 0) {
    stamp.exists = true;
    stamp.inode = st.st_ino;
    stamp.size = st.st_size;
    stamp.mtime = st.st_mtim;
  } else if (errno != ENOENT && errno != ENOTDIR) {
    return LastErrnoStatus(absl::StrCat("stat ", path_));
  }
  auto same = [](const FileStamp& a, const FileStamp& b) {
    return a.exists == b.exists && a.inode == b.inode && a.size == b.size &&
           a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec;
  };
  {
    absl::MutexLock lock(&mu_);
    if (loaded_ && same(stamp_, stamp)) return config_;
  }

  // Read and parse without the lock; concurrent reloads just do the same work twice.
  auto config = std::make_shared<Config>();
  if (stamp.exists) {
    auto text = ReadFileToString(path_, kMaxConfigBytes);
    if (absl::IsNotFound(text.status())) {
      stamp.exists = false;
    } else if (!text.ok()) {
      return Annotate(text.status(), "docker config");
    } else {
      SS_ASSIGN_OR_RETURN(*config, ParseDockerConfig(*text, path_));
    }
  }

  absl::MutexLock lock(&mu_);
  config_ = config;
  stamp_ = stamp;
  loaded_ = true;
  return config_;
}

absl::StatusOr<Credentials> DockerConfigCredentials::RunHelper(const std::string& helper,
                                                               std::string_view registry) {
  std::string program = absl::StrCat("docker-credential-", helper);
  if (!ValidHelperName(helper)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": invalid credential helper name \"", Clip(helper), "\""));
  }
  SubprocessOptions options;
  options.stdin_data = ServerUrlForHelper(AV(registry));
  options.timeout = helper_timeout_;
  options.max_output = 1u << 20;
  auto result = RunSubprocess({program, "get"}, options);
  if (!result.ok()) {
    if (absl::IsNotFound(result.status())) {
      return absl::UnavailableError(absl::StrCat("credential helper ", program,
                                                 " (from ", path_, ") not found in PATH"));
    }
    if (absl::IsDeadlineExceeded(result.status())) {
      return absl::UnavailableError(absl::StrCat("credential helper ", program, " timed out after ",
                                                 absl::FormatDuration(helper_timeout_)));
    }
    return absl::UnavailableError(
        absl::StrCat("credential helper ", program, ": ", result.status().message()));
  }
  if (result->exit_code != 0) {
    // docker-credential-helpers report a missing entry as a failure with this text.
    if (absl::StrContains(result->stdout_data, "credentials not found") ||
        absl::StrContains(result->stderr_data, "credentials not found")) {
      return Credentials{};
    }
    // The helper's output is not quoted: it may echo what it was given.
    return absl::UnavailableError(absl::StrCat("credential helper ", program, " failed for ",
                                               Clip(AV(registry)), " (exit ", result->exit_code,
                                               result->term_signal != 0
                                                   ? absl::StrCat(", signal ", result->term_signal)
                                                   : std::string(),
                                               ")"));
  }
  Json j;
  try {
    j = Json::parse(result->stdout_data, nullptr, /*allow_exceptions=*/false);
  } catch (const std::exception&) {
    j = Json(Json::value_t::discarded);
  }
  auto bad_answer = [&] {
    return absl::UnavailableError(
        absl::StrCat("credential helper ", program, " gave a malformed answer"));
  };
  if (j.is_discarded() || !j.is_object()) return bad_answer();
  auto username = OptionalString(j, "Username", program);
  auto secret = OptionalString(j, "Secret", program);
  if (!username.ok() || !secret.ok()) return bad_answer();
  Credentials c;
  if (*username == "<token>") {
    c.identity_token = *std::move(secret);
  } else {
    c.username = *std::move(username);
    c.password = *std::move(secret);
  }
  return c;
}

absl::StatusOr<Credentials> DockerConfigCredentials::Lookup(std::string_view registry) {
  SS_ASSIGN_OR_RETURN(std::shared_ptr<const Config> config, Current());
  std::string key = RegistryFromServerUrl(registry);
  std::string helper = config->creds_store;
  if (auto it = config->cred_helpers.find(key); it != config->cred_helpers.end()) {
    helper = it->second;
  }
  if (!helper.empty()) {
    SS_ASSIGN_OR_RETURN(Credentials c, RunHelper(helper, key));
    if (!c.empty()) return c;
    // The helper knows nothing: an inline "auths" entry (e.g. from "docker login" before a
    // helper was configured) is still better than anonymous.
  }
  if (auto it = config->auths.find(key); it != config->auths.end()) return it->second;
  return Credentials{};
}

void StaticCredentials::Set(std::string registry, Credentials c) {
  absl::MutexLock lock(&mu_);
  creds_[std::move(registry)] = std::move(c);
}

absl::StatusOr<Credentials> StaticCredentials::Lookup(std::string_view registry) {
  absl::MutexLock lock(&mu_);
  auto it = creds_.find(registry);
  if (it == creds_.end()) return Credentials{};
  return it->second;
}

ChainedCredentials::ChainedCredentials(std::vector<std::unique_ptr<CredentialStore>> stores)
    : stores_(std::move(stores)) {}

absl::StatusOr<Credentials> ChainedCredentials::Lookup(std::string_view registry) {
  for (const auto& store : stores_) {
    if (store == nullptr) continue;
    SS_ASSIGN_OR_RETURN(Credentials c, store->Lookup(registry));
    if (!c.empty()) return c;
  }
  return Credentials{};
}

}  // namespace slipstream::remote
