// SPDX-License-Identifier: Apache-2.0
#include "cmd/cli/registry_serve.h"

#include <signal.h>

#include "common/fd.h"
#include "common/status.h"
#include "testkit/registry_fixture.h"

namespace slipstream::cli {

absl::Status ServeRegistry(const std::string& ready_file, std::ostream& out) {
  // Block the signals before any thread starts so that only sigwait below receives them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  SS_ASSIGN_OR_RETURN(auto registry, testkit::RegistryFixture::Start());
  out << "registry " << registry->host() << std::endl;
  if (!ready_file.empty()) SS_RETURN_IF_ERROR(WriteFileAtomic(ready_file, registry->host()));
  int sig = 0;
  sigwait(&stop, &sig);
  registry->Stop();
  return absl::OkStatus();
}

}  // namespace slipstream::cli
