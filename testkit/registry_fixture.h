// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"

namespace slipstream::testkit {

class TokenServer;

// How the fixture's registry authenticates clients.
enum class RegistryAuth {
  kAnonymous,  // no auth: everyone may pull and push
  kBasic,      // htpasswd Basic auth with the fixture's username/password
  kToken,      // Bearer tokens from a TokenServer started with the fixture
};

struct RegistryFixtureOptions {
  RegistryAuth auth = RegistryAuth::kAnonymous;
  // Serve HTTPS (HTTP/1.1 and HTTP/2) with a certificate from a per-fixture test CA.
  bool tls = false;
  // Credentials for kBasic and kToken.
  std::string username = "slipstream";
  std::string password = "slipstream-secret";
  // kToken only: lifetime of issued tokens and whether anonymous clients get pull tokens.
  absl::Duration token_ttl = absl::Minutes(5);
  bool anonymous_pull = true;
  // Top-level YAML appended verbatim to the generated config, e.g. a `proxy:` section
  // ("proxy:\n  remoteurl: http://127.0.0.1:5000\n") to make a pull-through cache. Must not
  // repeat the keys the fixture writes: version, log, storage, http, auth.
  std::string extra_config;
  // Bound on waiting for the registry to answer GET /v2/.
  absl::Duration start_timeout = absl::Seconds(30);
};

// A real distribution registry (`docker-registry serve`, Debian's distribution 2.8) on
// 127.0.0.1 with a kernel-chosen port and its own temp directory (config, filesystem storage,
// log, certificates), removed on destruction. Several fixtures can run at once (mirror tests).
// The test that creates it owns it; the registry process dies with it, and also when the
// test process dies without cleaning up (the kernel kills it when the thread that started it
// exits, so start fixtures on a thread that outlives them, e.g. the test's main thread).
// Accessors are thread-safe; Restart() and Stop() must not race with each other.
class RegistryFixture {
 public:
  // Starts the registry (and the CA / htpasswd file / TokenServer the variant needs) and
  // waits until `GET /v2/` answers. Unavailable with the tail of the registry log when it
  // does not come up within options.start_timeout; NotFound when docker-registry, openssl or
  // htpasswd is missing.
  static absl::StatusOr<std::unique_ptr<RegistryFixture>> Start(
      RegistryFixtureOptions options = {});
  ~RegistryFixture();
  RegistryFixture(const RegistryFixture&) = delete;
  RegistryFixture& operator=(const RegistryFixture&) = delete;

  // "127.0.0.1:PORT": the registry host as it appears in references and hosts.toml.
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  // "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT".
  std::string url() const;
  bool tls() const { return options_.tls; }
  // The registry's filesystem storage root (persists across Restart()).
  const std::string& storage_dir() const { return storage_dir_; }
  // PEM bundle to verify the server certificate; empty unless tls().
  const std::string& ca_cert_path() const { return ca_cert_path_; }
  const std::string& username() const { return options_.username; }
  const std::string& password() const { return options_.password; }
  RegistryAuth auth() const { return options_.auth; }
  // The token server of a kToken fixture, else nullptr. Owned by the fixture.
  TokenServer* token_server() const { return token_server_.get(); }
  // The registry's combined stdout/stderr.
  const std::string& log_path() const { return log_path_; }
  // The last `max_lines` lines of the registry log, for failure messages.
  std::string LogTail(size_t max_lines = 40) const;

  // Stops the registry and starts it again on the same port with the same storage and
  // secret (so in-progress upload URLs stay valid). Errors as in Start().
  absl::Status Restart();
  // Stops the registry (SIGTERM, then SIGKILL). Idempotent; clients then see connection
  // refused on port().
  void Stop();
  // True while the registry process runs.
  bool running();
  // The registry's process id while it runs, else -1 (e.g. to SIGSTOP it in a hang test).
  pid_t pid() const;
  // The fixture's temp directory (config, log, storage, certificates).
  const std::string& dir() const;

 private:
  RegistryFixture(RegistryFixtureOptions options, TempDir dir);
  absl::Status Prepare();
  absl::Status WriteConfig(int port) const;
  // Launches the process on `port` (0 = any) and waits until it answers.
  absl::Status Launch(int port);
  absl::Status WaitForListenLine(size_t log_offset, int* port);
  absl::Status WaitForV2();

  RegistryFixtureOptions options_;
  TempDir dir_;
  std::string storage_dir_;
  std::string config_path_;
  std::string log_path_;
  std::string ca_cert_path_;
  std::string server_cert_path_;
  std::string server_key_path_;
  std::string htpasswd_path_;
  std::string secret_;
  std::unique_ptr<TokenServer> token_server_;
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  std::string host_;
};

}  // namespace slipstream::testkit
