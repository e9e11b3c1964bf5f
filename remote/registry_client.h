// SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/digest.h"
#include "remote/blob_reader.h"
#include "remote/credentials.h"
#include "remote/hosts.h"
#include "remote/http.h"
#include "remote/manifest.h"
#include "remote/platform.h"
#include "remote/reference.h"
#include "remote/retry.h"

namespace slipstream::remote {

class Authenticator;
class ChunkCache;

// How DownloadBlob splits a blob into concurrent Range requests.
struct ParallelFetchOptions {
  int64_t chunk_size = 0;   // bytes per Range request; 0 = auto (8 MiB)
  int concurrency = 0;      // requests in flight; 0 = auto (1 for small blobs, up to 16)
  // Called (from any fetching thread, serialized) with the total bytes written so far.
  std::function<void(int64_t bytes_done)> progress;
  // When set, chunks come from and go to this cache (keyed by digest, offset and chunk
  // length), so a repeated download of the same blob asks the registry for nothing. On a
  // digest mismatch the blob's chunks are erased from the cache.
  ChunkCache* cache = nullptr;
};

struct RegistryClientOptions {
  std::string hosts_dir;                         // containerd certs.d dir; empty = none
  std::shared_ptr<CredentialStore> credentials;  // null = anonymous
  RetryPolicy retry;
  std::string user_agent = "slipstream/0.1";
  absl::Duration redirect_ttl = absl::Minutes(5);  // remember presigned redirect targets
  // A transfer that receives no bytes for this long is aborted (and retried/resumed).
  absl::Duration stall_timeout = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(10);
  std::unique_ptr<HttpTransport> transport;        // null = CurlTransport
  // Test hooks: the clock and the sleep used between retries. Null = absl::Now/SleepFor.
  std::function<absl::Time()> now;
  std::function<void(absl::Duration)> sleep;
};

// Talks to OCI distribution registries: resolves tags, fetches manifests and blobs (whole,
// by Range, or in parallel Range chunks into a file) and pushes blobs and manifests. It walks
// the hosts.toml host list (mirrors first), answers auth challenges (Basic and Bearer token
// flow, tokens cached per host and scope), retries transient failures with backoff, follows
// and remembers redirects to blob storage (never sending the registry's Authorization there),
// and verifies every digest it can.
//
// One client per process, shared by both pull modes and the CLI; it owns its transport.
// Thread-safe: every method may be called from many threads at once.
//
// Errors name the host, repository, object and HTTP status, e.g.
// "GET localhost:5000/app blob sha256:ab12cd34ef56: HTTP 404 Not Found". Codes: 404 →
// NotFound, 401 → Unauthenticated, 403 → PermissionDenied, 429/5xx/timeouts → Unavailable
// (after retries), digest mismatch or corrupt data → DataLoss, bad registry answers →
// InvalidArgument / DataLoss, oversized manifests → ResourceExhausted.
class RegistryClient {
 public:
  // InvalidArgument for unusable options; Internal if libcurl cannot start.
  static absl::StatusOr<std::unique_ptr<RegistryClient>> Create(RegistryClientOptions options);
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  struct ManifestResult {
    Digest digest;           // sha256 of body
    std::string media_type;  // Content-Type, or the body's mediaType when absent
    std::string body;
  };
  // Fetches the manifest or index `ref` names (by digest when set, else by tag) with all four
  // manifest media types accepted. By-digest fetches are verified against the digest; by-tag
  // fetches are checked against Docker-Content-Digest when the registry sends it. DataLoss on
  // mismatch; ResourceExhausted over kMaxManifestBytes (announced or streamed).
  absl::StatusOr<ManifestResult> GetManifest(const Reference& ref);

  struct ResolvedImage {
    Reference ref;                      // the input, pinned to the top-level digest
    std::optional<Digest> index_digest; // set when `ref` named an index
    Digest manifest_digest;             // the platform manifest
    Manifest manifest;
    std::string manifest_body;
    ImageConfig config;
    std::string config_body;
  };
  // Resolves `ref` to the manifest for `platform` (through an index when there is one) and
  // fetches its config. NotFound (listing the platforms present) when the index lacks one.
  absl::StatusOr<ResolvedImage> ResolveImage(const Reference& ref, const Platform& platform);

  // Reads a whole blob into memory (for configs, indexes, small blobs: at most 64 MiB) and
  // verifies its size and sha256 (DataLoss on mismatch). `repo` supplies registry and
  // repository; its tag/digest are ignored.
  absl::StatusOr<std::string> ReadBlob(const Reference& repo, const Descriptor& blob);

  // Streams [offset, offset+length) of blob `digest` into `sink`; on a dropped connection
  // retries and resumes from the first byte not yet delivered, so `sink` sees each byte once
  // and in order. Copes with servers that ignore Range (answer 200 with the whole blob) and
  // checks 206 Content-Range. OutOfRange when the blob ends before offset+length. The sink's
  // own error is returned as is. `sink` is called on the calling thread.
  absl::Status ReadBlobRange(const Reference& repo, const Digest& digest, int64_t offset,
                             int64_t length, const BodySink& sink);

  // Downloads the whole blob into `fd` (pwrite at its offsets, from offset 0) with concurrent
  // Range GETs (through opts.cache when set), then verifies the sha256 of what was written
  // (DataLoss on mismatch). `fd` must be open for reading and writing. The file is not
  // truncated or synced.
  absl::Status DownloadBlob(const Reference& repo, const Descriptor& blob, int fd,
                            const ParallelFetchOptions& opts = {});

  // A BlobReader over `blob` that serves ReadAt with Range GETs through this client (which
  // must outlive it). Bytes are not verified (no whole-blob digest to check a slice against).
  std::unique_ptr<BlobReader> OpenBlob(const Reference& repo, const Descriptor& blob);

  // HEAD on the blob: true when present, false on 404. Other errors as above.
  absl::StatusOr<bool> BlobExists(const Reference& repo, const Digest& digest);

  // Uploads a blob unless the registry already has it (HEAD first). Blobs under 16 MiB go in
  // one POST + PUT; larger ones in PATCH chunks. `data` must hash to `digest`
  // (InvalidArgument otherwise, before anything is sent).
  absl::Status PushBlob(const Reference& repo, const Digest& digest, std::string_view data);
  // The same reading `size` bytes from `fd` at offsets 0..size (pread; the fd's offset is not
  // used), for blobs too large for memory. The registry verifies the digest.
  absl::Status PushBlobFromFile(const Reference& repo, const Digest& digest, int fd,
                                int64_t size);
  // PUTs a manifest or index under ref.TagOrDigest() (the tag, or the body's digest when the
  // reference has none) and returns the body's digest. InvalidArgument when `ref` carries a
  // digest that does not match the body; ResourceExhausted over kMaxManifestBytes.
  absl::StatusOr<Digest> PushManifest(const Reference& ref, std::string_view media_type,
                                      std::string_view body);

  // The OCI referrers API (distribution spec 1.1): GET /v2/<repo>/referrers/<subject>,
  // filtered by `artifact_type` when non-empty (by the registry when it supports the filter,
  // else here). Returns the index of manifests whose `subject` is `subject`. NotFound when
  // the registry has no referrers API (docker-registry 2.8): use the referrers tag
  // "sha256-<hex>" instead. Other errors as GetManifest. (remote/registry_referrers.cc)
  absl::StatusOr<ImageIndex> GetReferrers(const Reference& repo, const Digest& subject,
                                          std::string_view artifact_type);

 private:
  friend class HttpBlobReader;
  struct Call;
  struct Exchange;
  struct RangeState;

  explicit RegistryClient(RegistryClientOptions options);

  // The hosts able to do `cap` for `registry`, in order.
  absl::StatusOr<std::vector<RegistryHost>> HostsFor(const Reference& repo,
                                                     HostCapability cap) const;
  // Runs `call` against the host list with fallback, retries, auth and redirects.
  absl::StatusOr<Exchange> Execute(const Call& call);
  // `max_attempts` > 0 lowers the retry policy's limit (used for mirrors).
  absl::StatusOr<Exchange> ExecuteOnHost(const Call& call, const RegistryHost& host,
                                         int max_attempts = 0);
  // One attempt: the request (or its remembered redirect target) and redirect hops.
  absl::StatusOr<HttpResponse> Attempt(const Call& call, const RegistryHost& host,
                                       bool* via_cache, std::string* sent_auth,
                                       std::string* final_url);

  // Reads [offset, offset+length) of a blob into memory (Range GET, at most 64 MiB).
  absl::StatusOr<std::string> ReadRange(const Reference& repo, const Digest& digest,
                                        int64_t offset, int64_t length);
  absl::Status PushBlobImpl(const Reference& repo, const Digest& digest, int64_t size,
                            const std::function<absl::StatusOr<std::string>(int64_t, int64_t)>& read);
  absl::StatusOr<ManifestResult> FetchManifest(const Reference& ref, std::string_view what);

  // Redirect targets remembered per blob (key: host + repo + digest).
  std::optional<std::string> CachedRedirect(const std::string& key);
  void RememberRedirect(const std::string& key, const std::string& url);
  void ForgetRedirect(const std::string& key);

  absl::Time Now() const;
  void Sleep(absl::Duration d) const;

  RegistryClientOptions options_;
  std::unique_ptr<HttpTransport> transport_;
  std::unique_ptr<Authenticator> auth_;

  absl::Mutex mu_;
  struct RedirectEntry {
    std::string url;
    absl::Time expires;
  };
  std::map<std::string, RedirectEntry> redirects_ ABSL_GUARDED_BY(mu_);
  // Per origin ("scheme://host"): false once it answered a Range request with 200.
  std::map<std::string, bool> honours_range_ ABSL_GUARDED_BY(mu_);
};

}  // namespace slipstream::remote
