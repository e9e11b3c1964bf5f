// SPDX-License-Identifier: Apache-2.0
#include "plugin/runtime_credentials.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "common/strings.h"

namespace slipstream::plugin {
namespace {

// Registry hosts are case-insensitive; Reference::registry keeps the user's spelling.
std::string Key(std::string_view registry) { return absl::AsciiStrToLower(AV(registry)); }

}  // namespace

RuntimeCredentials::RuntimeCredentials(absl::Duration ttl, Clock now)
    : ttl_(ttl), now_(std::move(now)) {}

void RuntimeCredentials::Record(std::string_view registry, remote::Credentials credentials) {
  if (credentials.empty()) return;
  absl::Time expires = Now() + ttl_;
  absl::MutexLock lock(&mu_);
  entries_.insert_or_assign(Key(registry), Entry{std::move(credentials), expires});
}

absl::StatusOr<remote::Credentials> RuntimeCredentials::Lookup(std::string_view registry) {
  absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(Key(registry));
  if (it == entries_.end()) return remote::Credentials{};
  if (it->second.expires <= now) {
    entries_.erase(it);
    return remote::Credentials{};
  }
  return it->second.credentials;
}

int RuntimeCredentials::size() {
  absl::Time now = Now();
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [registry, entry] : entries_) n += entry.expires > now ? 1 : 0;
  return n;
}

const char* CredentialKind(const remote::Credentials& c) {
  if (!c.registry_token.empty()) return "registry token";
  if (!c.identity_token.empty()) return "identity token";
  if (!c.username.empty() || !c.password.empty()) return "username/password";
  return "none";
}

}  // namespace slipstream::plugin
