// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace slipstream::remote {

// One challenge of a WWW-Authenticate header. A plain value type.
struct AuthChallenge {
  std::string scheme;                          // lower-cased: "bearer", "basic"
  std::map<std::string, std::string> params;   // keys lower-cased: realm, service, scope, error
  std::string token68;                         // the token68 form, if used instead of params

  // The value of param `key` (lower-case) or empty.
  std::string Param(std::string_view key) const;
};

// Parses a WWW-Authenticate value (RFC 7235: several comma-separated challenges,
// auth-params with token or quoted-string values, backslash escapes, commas inside quotes,
// token68). When a parameter repeats, the first wins. InvalidArgument on malformed input
// (the message quotes at most a short prefix of the value).
absl::StatusOr<std::vector<AuthChallenge>> ParseWwwAuthenticate(std::string_view value);

}  // namespace slipstream::remote
