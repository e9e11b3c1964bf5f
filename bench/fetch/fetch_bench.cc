// SPDX-License-Identifier: Apache-2.0
// fetch_bench: how fast slipstream's parallel Range download (RegistryClient::DownloadBlob)
// pulls one large blob from a real registry on 127.0.0.1, compared with a single-stream
// `curl`. Starts its own RegistryFixture, pushes the blob (pseudo-random, incompressible, or
// a file given with --blob), then alternates the methods for --reps rounds and prints a table.
// A benchmark, not a test: it asserts nothing beyond "every download verified".
#include <fcntl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <cstdint>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/digest.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "common/temp_dir.h"
#include "remote/registry_client.h"
#include "testkit/fault_proxy.h"
#include "testkit/registry_fixture.h"

namespace slipstream::bench {
namespace {

struct Flags {
  int64_t size_mib = 1024;
  std::string blob;  // push this file instead of generated data
  int reps = 3;
  std::string work_dir;  // default: a temp dir under $TMPDIR
  bool markdown = false;
  // > 0: put a FaultProxy in front of the registry that caps every blob response at this
  // many MiB/s, the per-connection limit real registries' blob storage applies.
  int64_t stream_cap_mib = 0;
};

// Writes `size` bytes of xorshift output (incompressible, reproducible) to `path` and
// returns their digest.
absl::StatusOr<Digest> WriteRandomBlob(const std::string& path, int64_t size) {
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_CREAT | O_WRONLY | O_TRUNC));
  Sha256Hasher hasher;
  std::string buf(4 << 20, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int64_t done = 0; done < size;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(size - done, buf.size()));
    for (size_t i = 0; i + 8 <= buf.size(); i += 8) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      std::memcpy(buf.data() + i, &x, 8);
    }
    const std::string_view piece(buf.data(), n);
    hasher.Update(piece);
    SS_RETURN_IF_ERROR(WriteAll(fd.get(), piece));
    done += static_cast<int64_t>(n);
  }
  return hasher.Finish();
}

absl::StatusOr<Digest> DigestOfFile(const std::string& path, int64_t* size) {
  SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(path, O_RDONLY));
  Sha256Hasher hasher;
  std::string buf(4 << 20, '\0');
  *size = 0;
  while (true) {
    const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) return LastErrnoStatus(absl::StrCat("read ", path));
    if (n == 0) break;
    hasher.Update(std::string_view(buf.data(), static_cast<size_t>(n)));
    *size += n;
  }
  return hasher.Finish();
}

struct Method {
  std::string name;
  // Downloads the blob into `out`; timed, including opening the file.
  std::function<absl::Status(const std::string& out)> run;
  // Checks the download after the clock stopped (for tools that verify nothing); may be null.
  std::function<absl::Status(const std::string& out)> verify;
};

std::string Machine() {
  utsname u{};
  ::uname(&u);
  std::string cpu = "unknown cpu";
  if (auto info = ReadFileToString("/proc/cpuinfo"); info.ok()) {
    const size_t pos = info->find("model name");
    if (pos != std::string::npos) {
      const size_t colon = info->find(':', pos);
      const size_t eol = info->find('\n', pos);
      cpu = info->substr(colon + 2, eol - colon - 2);
    }
  }
  return absl::StrCat(cpu, ", ", ::sysconf(_SC_NPROCESSORS_ONLN), " cpus, ", u.sysname, " ",
                      u.release, " ", u.machine);
}

std::string CapText(const Flags& flags) {
  if (flags.stream_cap_mib <= 0) return "loopback, no per-stream cap";
  return absl::StrCat("each HTTP stream capped at ", flags.stream_cap_mib, " MiB/s");
}

absl::Status Main(const Flags& flags) {
  std::optional<TempDir> temp;
  std::string work = flags.work_dir;
  if (work.empty()) {
    SS_ASSIGN_OR_RETURN(temp, TempDir::Create("fetch-bench-"));
    work = temp->path();
  }
  SS_ASSIGN_OR_RETURN(auto registry, testkit::RegistryFixture::Start());
  SS_ASSIGN_OR_RETURN(auto client, remote::RegistryClient::Create({}));
  std::unique_ptr<testkit::FaultProxy> proxy;
  std::string host = registry->host();
  std::string base_url = registry->url();
  if (flags.stream_cap_mib > 0) {
    SS_ASSIGN_OR_RETURN(proxy, testkit::FaultProxy::Start(registry->host()));
    proxy->Add(testkit::Fault::Throttle(flags.stream_cap_mib << 20).On("GET", "/blobs/").Times(-1));
    host = proxy->host();
    base_url = proxy->url();
  }
  SS_ASSIGN_OR_RETURN(remote::Reference repo, remote::Reference::Parse(host + "/bench/blob"));

  std::string blob_path = flags.blob;
  remote::Descriptor desc;
  desc.media_type = "application/octet-stream";
  if (blob_path.empty()) {
    blob_path = work + "/source.bin";
    desc.size = flags.size_mib << 20;
    std::cerr << "generating " << flags.size_mib << " MiB of random data\n";
    SS_ASSIGN_OR_RETURN(desc.digest, WriteRandomBlob(blob_path, desc.size));
  } else {
    SS_ASSIGN_OR_RETURN(desc.digest, DigestOfFile(blob_path, &desc.size));
  }
  {
    SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(blob_path, O_RDONLY));
    std::cerr << "pushing " << desc.digest.Short() << " (" << desc.size << " bytes)\n";
    SS_RETURN_IF_ERROR(client->PushBlobFromFile(repo, desc.digest, fd.get(), desc.size));
  }
  if (flags.blob.empty()) ::unlink(blob_path.c_str());  // free the disk before downloading

  const std::string url = absl::StrCat(base_url, "/v2/", repo.repository, "/blobs/",
                                       desc.digest.str());
  auto download = [&](const remote::ParallelFetchOptions& opts) {
    return [&, opts](const std::string& out) -> absl::Status {
      SS_ASSIGN_OR_RETURN(UniqueFd fd, OpenFile(out, O_CREAT | O_RDWR | O_TRUNC));
      return client->DownloadBlob(repo, desc, fd.get(), opts);
    };
  };
  remote::ParallelFetchOptions sixteen;
  sixteen.concurrency = 16;
  sixteen.chunk_size = (desc.size + 15) / 16;
  auto curl_verify = [&](const std::string& out) -> absl::Status {
    int64_t got = 0;
    SS_ASSIGN_OR_RETURN(Digest d, DigestOfFile(out, &got));
    if (d != desc.digest) return absl::DataLossError("curl download digest mismatch");
    return absl::OkStatus();
  };
  std::vector<Method> methods = {
      {"curl (1 stream)",
       [&](const std::string& out) -> absl::Status {
         SS_ASSIGN_OR_RETURN(SubprocessResult r,
                             RunSubprocess({"curl", "-sSf", "-o", out, url}));
         if (r.exit_code != 0) return absl::UnavailableError("curl: " + r.stderr_data);
         return absl::OkStatus();
       },
       curl_verify},
      // DownloadBlob verifies the sha256 itself, inside the timed call.
      {"slipstream auto", download({}), nullptr},
      {"slipstream 16 ranges", download(sixteen), nullptr},
  };

  // Warm-up: the first read of the blob from the registry's storage comes from disk;
  // every method should see the same (page-cached) registry.
  std::cerr << "warm-up\n";
  SS_RETURN_IF_ERROR(methods[1].run(work + "/out.bin"));
  ::unlink((work + "/out.bin").c_str());

  std::map<std::string, std::vector<double>> seconds;
  for (int rep = 0; rep < flags.reps; ++rep) {
    for (const Method& m : methods) {
      const std::string out = work + "/out.bin";
      const absl::Time start = absl::Now();
      absl::Status s = m.run(out);
      const double secs = absl::ToDoubleSeconds(absl::Now() - start);
      if (s.ok() && m.verify) s = m.verify(out);
      ::unlink(out.c_str());
      if (!s.ok()) return Annotate(s, m.name);
      seconds[m.name].push_back(secs);
      std::cerr << absl::StrFormat("rep %d %-22s %7.2f s\n", rep + 1, m.name, secs);
    }
  }

  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  const double curl = median(seconds[methods[0].name]);
  const double mib = static_cast<double>(desc.size) / (1 << 20);
  const std::string when = absl::FormatTime("%Y-%m-%d %H:%M UTC", absl::Now(), absl::UTCTimeZone());
  if (flags.markdown) {
    std::cout << absl::StrFormat("**%s**, %s; blob %.0f MiB%s, %d reps, median; %s.\n\n",
                                 when, Machine(), mib, flags.blob.empty() ? " (random)" : "",
                                 flags.reps, CapText(flags));
    std::cout << "| method | median s | MiB/s | speed vs curl |\n|---|---:|---:|---:|\n";
  } else {
    std::cout << when << "  " << Machine() << "\n";
    std::cout << absl::StrFormat("blob %.0f MiB, %d reps (median), %s\n", mib, flags.reps,
                                 CapText(flags));
    std::cout << absl::StrFormat("%-22s %10s %10s %14s\n", "method", "median s", "MiB/s",
                                 "speed vs curl");
  }
  for (const Method& m : methods) {
    const double s = median(seconds[m.name]);
    if (flags.markdown) {
      std::cout << absl::StrFormat("| %s | %.2f | %.0f | %.2fx |\n", m.name, s, mib / s,
                                   curl / s);
    } else {
      std::cout << absl::StrFormat("%-22s %10.2f %10.0f %13.2fx\n", m.name, s, mib / s,
                                   curl / s);
    }
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace slipstream::bench

int main(int argc, char** argv) {
  slipstream::bench::Flags flags;
  CLI::App app{"fetch_bench: slipstream parallel Range download vs curl, on a local registry"};
  app.add_option("--size-mib", flags.size_mib, "size of the generated blob")->capture_default_str();
  app.add_option("--blob", flags.blob, "push this file instead of generated random data");
  app.add_option("--reps", flags.reps, "repetitions per method")->capture_default_str();
  app.add_option("--work-dir", flags.work_dir, "scratch directory (default: a temp dir)");
  app.add_flag("--markdown", flags.markdown, "print the table as Markdown");
  app.add_option("--stream-cap-mib", flags.stream_cap_mib,
                 "cap each blob response at N MiB/s through a proxy (0 = direct)");
  CLI11_PARSE(app, argc, argv);
  slipstream::log::SetLevel(slipstream::log::Level::kWarn);
  if (flags.reps < 1 || flags.size_mib < 1) {
    std::cerr << "--reps and --size-mib must be positive\n";
    return 2;
  }
  absl::Status s = slipstream::bench::Main(flags);
  if (!s.ok()) {
    std::cerr << "fetch_bench: " << s << "\n";
    return 1;
  }
  return 0;
}
