// SPDX-License-Identifier: Apache-2.0
#include "testkit/registry_fixture.h"

#include <unistd.h>

#include <random>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "testkit/net_fetch.h"
#include "testkit/tls_ca.h"
#include "testkit/token_server.h"

namespace slipstream::testkit {
namespace {

constexpr const char* kRegistryBinary = "docker-registry";
constexpr const char* kSetpriv = "/usr/bin/setpriv";

std::string RandomHex(size_t bytes) {
  std::random_device rd;
  std::string out;
  static constexpr char kHex[] = "0123456789abcdef";
  for (size_t i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    out.push_back(kHex[v >> 4]);
    out.push_back(kHex[v & 0xf]);
  }
  return out;
}

const char* AuthName(RegistryAuth auth) {
  switch (auth) {
    case RegistryAuth::kAnonymous: return "anonymous";
    case RegistryAuth::kBasic: return "basic";
    case RegistryAuth::kToken: return "token";
  }
  return "?";
}

std::string Quote(const std::string& s) { return absl::StrCat("\"", s, "\""); }

}  // namespace

RegistryFixture::RegistryFixture(RegistryFixtureOptions options, TempDir dir)
    : options_(std::move(options)), dir_(std::move(dir)) {
  storage_dir_ = dir_.Join("storage");
  config_path_ = dir_.Join("config.yml");
  log_path_ = dir_.Join("registry.log");
  // The secret signs upload-state tokens in Location URLs; keeping it across Restart() keeps
  // resumable uploads resumable.
  secret_ = RandomHex(16);
}

RegistryFixture::~RegistryFixture() { Stop(); }

absl::StatusOr<std::unique_ptr<RegistryFixture>> RegistryFixture::Start(
    RegistryFixtureOptions options) {
  SS_ASSIGN_OR_RETURN(TempDir dir, TempDir::Create("slipstream-registry-"));
  std::unique_ptr<RegistryFixture> fixture(new RegistryFixture(std::move(options), std::move(dir)));
  SS_RETURN_IF_ERROR(fixture->Prepare());
  SS_RETURN_IF_ERROR(fixture->Launch(0));
  log::Info("registry fixture started",
            {{"url", fixture->url()}, {"dir", fixture->dir_.path()},
             {"auth", AuthName(fixture->options_.auth)}});
  return fixture;
}

absl::Status RegistryFixture::Prepare() {
  SS_RETURN_IF_ERROR(MakeDirs(storage_dir_));
  if (options_.tls) {
    std::string tls_dir = dir_.Join("tls");
    SS_RETURN_IF_ERROR(MakeDirs(tls_dir));
    SS_ASSIGN_OR_RETURN(TestCa ca, TestCa::Create(tls_dir));
    ca_cert_path_ = ca.ca_cert_path();
    server_cert_path_ = ca.server_cert_path();
    server_key_path_ = ca.server_key_path();
  }
  if (options_.auth == RegistryAuth::kBasic) {
    SubprocessOptions sub;
    sub.timeout = absl::Seconds(30);
    SS_ASSIGN_OR_RETURN(SubprocessResult r,
                        RunSubprocess({"htpasswd", "-Bbn", options_.username, options_.password},
                                      sub));
    if (r.exit_code != 0) {
      return absl::InternalError(absl::StrCat("htpasswd failed: ", r.stderr_data));
    }
    htpasswd_path_ = dir_.Join("htpasswd");
    SS_RETURN_IF_ERROR(WriteFileAtomic(htpasswd_path_, r.stdout_data));
  }
  if (options_.auth == RegistryAuth::kToken) {
    std::string token_dir = dir_.Join("token");
    SS_RETURN_IF_ERROR(MakeDirs(token_dir));
    TokenServerOptions token_options;
    token_options.users[options_.username] = options_.password;
    token_options.anonymous_pull = options_.anonymous_pull;
    token_options.token_ttl = options_.token_ttl;
    SS_ASSIGN_OR_RETURN(token_server_, TokenServer::Start(token_dir, std::move(token_options)));
  }
  return absl::OkStatus();
}

absl::Status RegistryFixture::WriteConfig(int port) const {
  // Only what the tests need: filesystem storage with deletes, no background upload purging
  // (it would delete uploads a slow test left open), no health checks, access log kept for
  // debugging.
  std::string yml = absl::StrCat(
      "version: 0.1\n",
      "log:\n  level: info\n  fields:\n    service: registry\n",
      "storage:\n",
      "  filesystem:\n    rootdirectory: ", Quote(storage_dir_), "\n",
      "  delete:\n    enabled: true\n",
      "  maintenance:\n    uploadpurging:\n      enabled: false\n",
      "http:\n",
      "  addr: ", Quote(absl::StrCat("127.0.0.1:", port)), "\n",
      "  secret: ", Quote(secret_), "\n",
      "  headers:\n    X-Content-Type-Options: [nosniff]\n");
  if (options_.tls) {
    absl::StrAppend(&yml, "  tls:\n    certificate: ", Quote(server_cert_path_), "\n",
                    "    key: ", Quote(server_key_path_), "\n");
  }
  switch (options_.auth) {
    case RegistryAuth::kAnonymous:
      break;
    case RegistryAuth::kBasic:
      absl::StrAppend(&yml, "auth:\n  htpasswd:\n    realm: slipstream-test\n",
                      "    path: ", Quote(htpasswd_path_), "\n");
      break;
    case RegistryAuth::kToken:
      absl::StrAppend(&yml, "auth:\n  token:\n",
                      "    realm: ", Quote(token_server_->realm()), "\n",
                      "    service: ", Quote(token_server_->service()), "\n",
                      "    issuer: ", Quote(token_server_->issuer()), "\n",
                      "    rootcertbundle: ", Quote(token_server_->cert_path()), "\n");
      break;
  }
  if (!options_.extra_config.empty()) {
    absl::StrAppend(&yml, options_.extra_config);
    if (yml.back() != '\n') yml.push_back('\n');
  }
  return WriteFileAtomic(config_path_, yml);
}

absl::Status RegistryFixture::Launch(int port) {
  SS_RETURN_IF_ERROR(WriteConfig(port));
  // The log is appended across restarts; only lines after this offset belong to this run.
  size_t log_offset = 0;
  if (absl::StatusOr<std::string> old = ReadFileToString(log_path_); old.ok()) {
    log_offset = old->size();
  }
  std::vector<std::string> argv = {kRegistryBinary, "serve", config_path_};
  // A test killed by a timeout or a crash never runs our destructor; PR_SET_PDEATHSIG (set by
  // util-linux setpriv, which then execs the registry in place) makes the kernel kill the
  // registry with us instead of leaving it running forever.
  if (::access(kSetpriv, X_OK) == 0) {
    argv.insert(argv.begin(), {kSetpriv, "--pdeathsig", "KILL"});
  }
  SS_ASSIGN_OR_RETURN(ChildProcess child, ChildProcess::Start(argv, log_path_));
  process_ = std::make_unique<ChildProcess>(std::move(child));
  int bound = 0;
  absl::Status status = WaitForListenLine(log_offset, &bound);
  if (status.ok()) {
    port_ = bound;
    host_ = absl::StrCat("127.0.0.1:", port_);
    status = WaitForV2();
  }
  if (!status.ok()) {
    process_.reset();
    return absl::UnavailableError(absl::StrCat("registry did not start: ", status.message(),
                                               "\n--- ", log_path_, " (tail) ---\n", LogTail()));
  }
  return absl::OkStatus();
}

absl::Status RegistryFixture::WaitForListenLine(size_t log_offset, int* port) {
  // With addr 127.0.0.1:0 only the registry knows its port; it logs
  // `msg="listening on 127.0.0.1:PORT"` (", tls" appended for HTTPS) once the socket is bound.
  absl::Time deadline = absl::Now() + options_.start_timeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<std::string> log = ReadFileToString(log_path_);
    if (log.ok() && log->size() > log_offset) {
      absl::string_view fresh = absl::string_view(*log).substr(log_offset);
      constexpr absl::string_view kMarker = "listening on 127.0.0.1:";
      size_t at = fresh.find(kMarker);
      if (at != absl::string_view::npos) {
        absl::string_view rest = fresh.substr(at + kMarker.size());
        size_t digits = 0;
        while (digits < rest.size() && rest[digits] >= '0' && rest[digits] <= '9') ++digits;
        if (absl::SimpleAtoi(rest.substr(0, digits), port) && *port > 0) return absl::OkStatus();
      }
    }
    if (!process_->Running()) return absl::UnavailableError("docker-registry exited");
    // The registry has no readiness fd; polling its log every 20 ms is prompt and cheap.
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError("no \"listening on\" line in the registry log");
}

absl::Status RegistryFixture::WaitForV2() {
  absl::Time deadline = absl::Now() + options_.start_timeout;
  std::string probe = absl::StrCat(url(), "/v2/");
  absl::Status last;
  while (absl::Now() < deadline) {
    FetchOptions fetch;
    fetch.ca_file = ca_cert_path_;
    fetch.timeout = absl::Seconds(2);
    SS_ASSIGN_OR_RETURN(FetchResult r, Fetch(probe, fetch));
    // 200 (anonymous) and 401 (auth) both mean the API is serving.
    if (r.ok() && (r.status == 200 || r.status == 401)) return absl::OkStatus();
    last = absl::UnavailableError(r.ok() ? absl::StrCat("GET /v2/ answered ", r.status) : r.error);
    if (!process_->Running()) return absl::UnavailableError("docker-registry exited");
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("GET /v2/ never answered: ", last.message()));
}

std::string RegistryFixture::url() const {
  return absl::StrCat(options_.tls ? "https://" : "http://", host_);
}

std::string RegistryFixture::LogTail(size_t max_lines) const {
  absl::StatusOr<std::string> log = ReadFileToString(log_path_);
  if (!log.ok()) return absl::StrCat("(no log: ", log.status().message(), ")");
  std::vector<absl::string_view> lines = absl::StrSplit(*log, '\n');
  size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
  std::string out;
  for (size_t i = first; i < lines.size(); ++i) absl::StrAppend(&out, lines[i], "\n");
  return out;
}

absl::Status RegistryFixture::Restart() {
  Stop();
  return Launch(port_);
}

void RegistryFixture::Stop() {
  if (process_ != nullptr) {
    process_->Stop();
    process_.reset();
  }
}

pid_t RegistryFixture::pid() const { return process_ != nullptr ? process_->pid() : -1; }

const std::string& RegistryFixture::dir() const { return dir_.path(); }

bool RegistryFixture::running() { return process_ != nullptr && process_->Running(); }

}  // namespace slipstream::testkit
