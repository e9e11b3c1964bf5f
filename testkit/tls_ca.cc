// SPDX-License-Identifier: Apache-2.0
#include "testkit/tls_ca.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/fd.h"
#include "common/status.h"
#include "common/subprocess.h"

namespace slipstream::testkit {
namespace {

// Runs one openssl command; its stderr becomes the error message since openssl says exactly
// what it disliked.
absl::Status RunOpenssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessOptions opts;
  opts.timeout = absl::Seconds(60);
  SS_ASSIGN_OR_RETURN(SubprocessResult r, RunSubprocess(argv, opts));
  if (r.exit_code != 0) {
    return absl::InternalError(absl::StrCat("openssl ", args.empty() ? "" : args[0], " failed (exit ",
                                            r.exit_code, "): ", r.stderr_data));
  }
  return absl::OkStatus();
}

// Short validity keeps these certificates useless outside the test that made them, yet
// longer than any test run.
constexpr const char* kDays = "2";

}  // namespace

absl::StatusOr<TestCa> TestCa::Create(const std::string& dir) {
  CertFiles ca{dir + "/ca.key", dir + "/ca.crt"};
  SS_RETURN_IF_ERROR(RunOpenssl({"req", "-x509", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", ca.key_path,
                                 "-out", ca.cert_path, "-days", kDays, "-subj",
                                 "/CN=slipstream test CA", "-addext",
                                 "basicConstraints=critical,CA:TRUE", "-addext",
                                 "keyUsage=critical,keyCertSign,cRLSign"}));
  TestCa result(dir, ca);
  SS_ASSIGN_OR_RETURN(result.server_,
                      result.Issue("server", "localhost", {"IP:127.0.0.1", "DNS:localhost"},
                                   /*client=*/false));
  return result;
}

absl::StatusOr<CertFiles> TestCa::Issue(const std::string& name, const std::string& common_name,
                                        const std::vector<std::string>& sans, bool client) const {
  CertFiles out{absl::StrCat(dir_, "/", name, ".key"), absl::StrCat(dir_, "/", name, ".crt")};
  std::string csr = absl::StrCat(dir_, "/", name, ".csr");
  std::string ext_path = absl::StrCat(dir_, "/", name, ".ext");
  std::string ext = absl::StrCat("basicConstraints=CA:FALSE\n",
                                 "keyUsage=critical,digitalSignature,keyEncipherment\n",
                                 "extendedKeyUsage=", client ? "clientAuth" : "serverAuth", "\n");
  if (!sans.empty()) absl::StrAppend(&ext, "subjectAltName=", absl::StrJoin(sans, ","), "\n");
  SS_RETURN_IF_ERROR(WriteFileAtomic(ext_path, ext));
  SS_RETURN_IF_ERROR(RunOpenssl({"req", "-new", "-newkey", "ec", "-pkeyopt",
                                 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", out.key_path,
                                 "-out", csr, "-subj", absl::StrCat("/CN=", common_name)}));
  // -CAcreateserial keeps a serial file next to the CA so every issued certificate gets a
  // distinct serial number, which TLS stacks expect from one issuer.
  SS_RETURN_IF_ERROR(RunOpenssl({"x509", "-req", "-in", csr, "-CA", ca_.cert_path, "-CAkey",
                                 ca_.key_path, "-CAcreateserial", "-CAserial", dir_ + "/ca.srl",
                                 "-days", kDays, "-extfile", ext_path, "-out", out.cert_path}));
  return out;
}

absl::StatusOr<CertFiles> MakeSelfSignedRsaCert(const std::string& dir, const std::string& name,
                                                const std::string& common_name) {
  CertFiles out{absl::StrCat(dir, "/", name, ".key"), absl::StrCat(dir, "/", name, ".crt")};
  SS_RETURN_IF_ERROR(RunOpenssl({"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                                 out.key_path, "-out", out.cert_path, "-days", kDays, "-subj",
                                 absl::StrCat("/CN=", common_name)}));
  return out;
}

}  // namespace slipstream::testkit
