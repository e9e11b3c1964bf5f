// SPDX-License-Identifier: Apache-2.0
// A RegistryClient wired to a FakeTransport and a FakeClock, for unit tests.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "remote/registry_client.h"
#include "tests/remote/fake_transport.h"

namespace slipstream::remote::testing {

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// Owns the client; `fake` and `clock` stay inspectable. Registry "localhost:5000" is plain
// HTTP (loopback default), so URLs look like http://localhost:5000/v2/app/...
struct Env {
  FakeClock clock;
  FakeTransport* fake = nullptr;
  std::unique_ptr<RegistryClient> client;
  std::shared_ptr<StaticCredentials> creds = std::make_shared<StaticCredentials>();
  Reference repo = *Reference::Parse("localhost:5000/app:v1");

  explicit Env(FakeTransport::Handler handler, std::string hosts_dir = "",
               RetryPolicy retry = RetryPolicy()) {
    auto t = std::make_unique<FakeTransport>(std::move(handler));
    fake = t.get();
    RegistryClientOptions o;
    o.transport = std::move(t);
    o.credentials = creds;
    o.hosts_dir = std::move(hosts_dir);
    o.retry = retry;
    o.now = [this] { return clock.Now(); };
    o.sleep = [this](absl::Duration d) { clock.Sleep(d); };
    client = *RegistryClient::Create(std::move(o));
  }
};


}  // namespace slipstream::remote::testing
