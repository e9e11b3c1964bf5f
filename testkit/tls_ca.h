// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace slipstream::testkit {

// PEM files of one key and its certificate.
struct CertFiles {
  std::string key_path;
  std::string cert_path;
};

// A throwaway certificate authority for TLS tests, made with the `openssl` CLI in a directory
// the caller owns (usually a TempDir). Create() also issues a server certificate valid for
// 127.0.0.1 and localhost, which is what every loopback test server needs. Keys are ECDSA
// P-256 (fast to generate). Immutable after creation; Issue() may be called from one thread
// at a time.
class TestCa {
 public:
  // Writes ca.key/ca.crt and server.key/server.crt into `dir` (which must exist). Internal
  // with openssl's stderr when a command fails; NotFound when openssl is not installed.
  static absl::StatusOr<TestCa> Create(const std::string& dir);

  const std::string& ca_cert_path() const { return ca_.cert_path; }
  const std::string& server_cert_path() const { return server_.cert_path; }
  const std::string& server_key_path() const { return server_.key_path; }

  // Issues `<name>.key`/`<name>.crt` signed by this CA. `sans` are subjectAltName entries
  // such as "IP:127.0.0.1" or "DNS:localhost" (may be empty); `client` selects the
  // clientAuth extended key usage instead of serverAuth (for mutual-TLS tests).
  absl::StatusOr<CertFiles> Issue(const std::string& name, const std::string& common_name,
                                  const std::vector<std::string>& sans, bool client) const;

 private:
  TestCa(std::string dir, CertFiles ca) : dir_(std::move(dir)), ca_(std::move(ca)) {}

  std::string dir_;
  CertFiles ca_;
  CertFiles server_;
};

// Writes `<name>.key` (RSA 2048) and a self-signed `<name>.crt` into `dir`. Used for the token
// signing key, whose certificate the registry trusts through `auth.token.rootcertbundle`.
absl::StatusOr<CertFiles> MakeSelfSignedRsaCert(const std::string& dir, const std::string& name,
                                                const std::string& common_name);

}  // namespace slipstream::testkit
