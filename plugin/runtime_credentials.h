// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "remote/credentials.h"

namespace slipstream::plugin {

// Registry credentials that kubelet handed over in CRI PullImage requests (its image pull
// secrets), kept in memory only, per registry host, each for `ttl` after it was last given.
// The daemon puts this store first in the credential chain of its RegistryClient, so lazy
// reads and background completion long after the pull still authenticate as the pod did.
// Nothing is written to disk; a restarted daemon knows no runtime credentials until kubelet
// pulls again. Owned by the daemon (shared with the client's chain); thread-safe.
class RuntimeCredentials final : public remote::CredentialStore {
 public:
  using Clock = std::function<absl::Time()>;
  // `now` = null: absl::Now.
  explicit RuntimeCredentials(absl::Duration ttl, Clock now = nullptr);

  // Sets (replaces) the credentials of `registry` (Reference::registry: "docker.io",
  // "127.0.0.1:5000") until now + ttl. Empty credentials are ignored.
  void Record(std::string_view registry, remote::Credentials credentials);

  // The unexpired credentials of `registry`, or empty ones. Expired entries are dropped here.
  // Never fails.
  absl::StatusOr<remote::Credentials> Lookup(std::string_view registry) override;

  // Registries with unexpired credentials (for status and tests; no secrets).
  int size();

 private:
  struct Entry {
    remote::Credentials credentials;
    absl::Time expires;
  };
  absl::Time Now() const { return now_ ? now_() : absl::Now(); }

  const absl::Duration ttl_;
  const Clock now_;
  absl::Mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_ ABSL_GUARDED_BY(mu_);
};

// The kind of credential, for logs: "username/password", "identity token", "registry token"
// or "none". Never the secret itself.
const char* CredentialKind(const remote::Credentials& credentials);

// A CredentialStore that asks another, shared one: lets one store (the runtime credentials)
// sit in a ChainedCredentials, which owns its members, while the daemon keeps using it.
// Thread-safe when the target is.
class SharedCredentials final : public remote::CredentialStore {
 public:
  explicit SharedCredentials(std::shared_ptr<remote::CredentialStore> target)
      : target_(std::move(target)) {}
  absl::StatusOr<remote::Credentials> Lookup(std::string_view registry) override {
    return target_->Lookup(registry);
  }

 private:
  const std::shared_ptr<remote::CredentialStore> target_;
};

}  // namespace slipstream::plugin
