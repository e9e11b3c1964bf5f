// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <ctime>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace slipstream::remote {

// Secrets for one registry. At most one kind is normally set. A plain value type.
struct Credentials {
  std::string username, password;
  std::string identity_token;   // OAuth2 refresh token (docker "identitytoken")
  std::string registry_token;   // a bearer token to send as is (docker "registrytoken")
  bool empty() const {
    return username.empty() && password.empty() && identity_token.empty() &&
           registry_token.empty();
  }
  friend bool operator==(const Credentials&, const Credentials&) = default;
};

// The parts of a docker CLI config.json that name credentials, with every registry key
// normalized by RegistryFromServerUrl. A plain value type; immutable once parsed.
struct DockerConfig {
  std::map<std::string, Credentials, std::less<>> auths;          // by registry
  std::map<std::string, std::string, std::less<>> cred_helpers;   // registry → helper name
  std::string creds_store;                                        // default helper, or ""
};

// Parses the text of a config.json (see DockerConfigCredentials for the fields read; other
// fields are ignored). Where several `auths` keys name one registry, the first non-empty
// entry wins. InvalidArgument starting with `where` (normally the file's path) for malformed
// JSON, a top level that is not an object, or a field of the wrong type or encoding; the
// message never quotes a secret (nor the JSON parser's own message, which may). Pure; thread-safe.
absl::StatusOr<DockerConfig> ParseDockerConfig(std::string_view json, std::string_view where);

// Where registry credentials come from. Implementations are thread-safe.
class CredentialStore {
 public:
  virtual ~CredentialStore() = default;
  // Credentials for `registry` (Reference::registry, e.g. "docker.io", "localhost:5000");
  // empty when there are none (anonymous access). Errors only for a broken config file or
  // helper: InvalidArgument / Unavailable naming the file or helper, never a secret.
  virtual absl::StatusOr<Credentials> Lookup(std::string_view registry) = 0;
};

// Reads a docker CLI config.json: `auths` (keyed "https://index.docker.io/v1/" for docker.io,
// "http(s)://host[/path]" or a bare host), base64 "auth" or username/password,
// "identitytoken", "registrytoken"; `credHelpers` per registry and the `credsStore` default,
// run as `docker-credential-<name> get` (found in PATH; stdin is the host, or
// "https://index.docker.io/v1/" for docker.io). A helper that has nothing ("credentials not
// found") falls back to the `auths` entry. Registries are matched case-insensitively after
// normalizing URLs to hosts (index.docker.io, registry-1.docker.io → docker.io). The file is
// re-read when its inode, size or mtime changes; a missing file means anonymous everywhere.
// Secrets never appear in errors or logs. Thread-safe: helpers run without holding the lock.
class DockerConfigCredentials : public CredentialStore {
 public:
  explicit DockerConfigCredentials(std::string config_path,
                                   absl::Duration helper_timeout = absl::Seconds(30));
  // $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json.
  static std::string DefaultPath();

  absl::StatusOr<Credentials> Lookup(std::string_view registry) override;

 private:
  using Config = DockerConfig;  // the parsed file
  // Re-reads the file when it changed; returns the current parse.
  absl::StatusOr<std::shared_ptr<const Config>> Current();
  absl::StatusOr<Credentials> RunHelper(const std::string& helper, std::string_view registry);

  const std::string path_;
  const absl::Duration helper_timeout_;
  absl::Mutex mu_;
  std::shared_ptr<const Config> config_ ABSL_GUARDED_BY(mu_);
  // Identity of the file the cached parse came from; a change of any field means re-read.
  struct FileStamp {
    bool exists = false;
    unsigned long long inode = 0;
    long long size = -1;
    struct timespec mtime = {};
  };
  FileStamp stamp_ ABSL_GUARDED_BY(mu_);
  bool loaded_ ABSL_GUARDED_BY(mu_) = false;
};

// Credentials set in code (from CLI flags or tests). Thread-safe.
class StaticCredentials : public CredentialStore {
 public:
  // Sets (replaces) the credentials for `registry`.
  void Set(std::string registry, Credentials c);
  absl::StatusOr<Credentials> Lookup(std::string_view registry) override;

 private:
  absl::Mutex mu_;
  std::map<std::string, Credentials, std::less<>> creds_ ABSL_GUARDED_BY(mu_);
};

// Asks several stores in order and returns the first non-empty answer; an error from a store
// is returned at once (a broken config should not silently fall through to anonymous).
// Owns its stores. Thread-safe when they are.
class ChainedCredentials : public CredentialStore {
 public:
  explicit ChainedCredentials(std::vector<std::unique_ptr<CredentialStore>> stores);
  absl::StatusOr<Credentials> Lookup(std::string_view registry) override;

 private:
  const std::vector<std::unique_ptr<CredentialStore>> stores_;
};

// The registry a config.json `auths` key or credential-helper ServerURL names:
// "https://index.docker.io/v1/" → "docker.io", "https://host:5000/v2/x" → "host:5000",
// "host" → "host". Exposed for tests.
std::string RegistryFromServerUrl(std::string_view url);

}  // namespace slipstream::remote
