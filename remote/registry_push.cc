// SPDX-License-Identifier: Apache-2.0
// RegistryClient: blob uploads (monolithic and chunked) and manifest PUT.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/fd.h"
#include "common/log.h"
#include "common/status.h"
#include "remote/registry_client.h"
#include "remote/registry_client_internal.h"
#include "remote/retry.h"

namespace slipstream::remote {
namespace {

// Blobs at least this large are uploaded in PATCH chunks of this size, so neither side
// holds a whole layer in memory.
constexpr int64_t kChunkedUploadThreshold = 16 << 20;
constexpr int64_t kUploadChunk = 16 << 20;

std::string WithDigestParam(const std::string& url, const Digest& digest) {
  return absl::StrCat(url, url.find('?') == std::string::npos ? "?" : "&",
                      "digest=", digest.str());
}

}  // namespace

absl::Status RegistryClient::PushBlob(const Reference& repo, const Digest& digest,
                                      std::string_view data) {
  Digest got = Sha256Of(data);
  if (got != digest) {
    return absl::InvalidArgumentError(absl::StrCat("push blob ", digest.str(),
                                                   ": data hashes to ", got.str()));
  }
  return PushBlobImpl(repo, digest, static_cast<int64_t>(data.size()),
                      [data](int64_t off, int64_t len) -> absl::StatusOr<std::string> {
                        return std::string(data.substr(off, len));
                      });
}

absl::Status RegistryClient::PushBlobFromFile(const Reference& repo, const Digest& digest,
                                              int fd, int64_t size) {
  return PushBlobImpl(repo, digest, size,
                      [fd](int64_t off, int64_t len) -> absl::StatusOr<std::string> {
                        std::string buf(static_cast<size_t>(len), '\0');
                        SS_RETURN_IF_ERROR(PreadExact(fd, buf.data(), buf.size(),
                                                      static_cast<uint64_t>(off)));
                        return buf;
                      });
}

absl::Status RegistryClient::PushBlobImpl(
    const Reference& repo, const Digest& digest, int64_t size,
    const std::function<absl::StatusOr<std::string>(int64_t, int64_t)>& read) {
  const std::string what = absl::StrCat("blob ", internal::ShortDigest(digest));
  {
    // HEAD through a push-capable host (with the push scope, so the token we get is reused).
    Call head;
    head.method = "HEAD";
    head.repo = &repo;
    head.cap = kCapPush;
    head.push = true;
    head.what = what;
    head.build = [&](const RegistryHost& host) {
      HttpRequest req;
      req.method = "HEAD";
      req.url = absl::StrCat(host.BaseUrl(), "/", repo.repository, "/blobs/", digest.str());
      return req;
    };
    SS_ASSIGN_OR_RETURN(Exchange ex, Execute(head));
    if (ex.response.status == 200) return absl::OkStatus();  // already there
    if (ex.response.status != 404) {
      return internal::HttpError(internal::Context("HEAD", ex.host, repo, what), ex.response);
    }
  }

  // PATCH and PUT of an upload session cannot be repeated blindly, so a failure restarts
  // the whole upload from POST, under the same retry policy as single requests.
  Backoff backoff(options_.retry, [this] { return Now(); });
  for (;;) {
    absl::Status st = [&]() -> absl::Status {
      Call post;
      post.method = "POST";
      post.repo = &repo;
      post.cap = kCapPush;
      post.push = true;
      post.what = "upload of " + what;
      post.follow_redirects = false;
      post.build = [&](const RegistryHost& host) {
        HttpRequest req;
        req.method = "POST";
        req.url = absl::StrCat(host.BaseUrl(), "/", repo.repository, "/blobs/uploads/");
        return req;
      };
      SS_ASSIGN_OR_RETURN(Exchange ex, Execute(post));
      const RegistryHost host = ex.host;
      if (ex.response.status != 202) {
        return internal::HttpError(internal::Context("POST", host, repo, post.what), ex.response);
      }
      std::string location = ex.response.Header("location");
      if (location.empty()) {
        return absl::DataLossError(internal::Context("POST", host, repo, post.what) +
                                   ": 202 without Location");
      }
      location = internal::ResolveUrl(ex.url, location);

      // Every later step goes to the same host: the upload session lives there.
      auto step = [&](std::string method, std::string url, std::string body,
                      std::vector<std::pair<std::string, std::string>> headers,
                      long want) -> absl::StatusOr<Exchange> {
        Call c;
        c.method = method;
        c.repo = &repo;
        c.cap = kCapPush;
        c.push = true;
        c.what = "upload of " + what;
        c.idempotent = false;
        c.follow_redirects = false;
        c.build = [&](const RegistryHost&) {
          HttpRequest req;
          req.method = method;
          req.url = url;
          req.body = body;
          req.headers = headers;
          return req;
        };
        SS_ASSIGN_OR_RETURN(Exchange r, ExecuteOnHost(c, host));
        if (r.response.status != want) {
          return internal::HttpError(internal::Context(method, host, repo, c.what), r.response);
        }
        return r;
      };

      if (size < kChunkedUploadThreshold) {
        SS_ASSIGN_OR_RETURN(std::string data, read(0, size));
        SS_ASSIGN_OR_RETURN(Exchange done,
                            step("PUT", WithDigestParam(location, digest), std::move(data),
                                 {{"Content-Type", "application/octet-stream"}}, 201));
        (void)done;
        return absl::OkStatus();
      }
      for (int64_t off = 0; off < size; off += kUploadChunk) {
        const int64_t len = std::min(kUploadChunk, size - off);
        SS_ASSIGN_OR_RETURN(std::string chunk, read(off, len));
        SS_ASSIGN_OR_RETURN(
            Exchange r,
            step("PATCH", location, std::move(chunk),
                 {{"Content-Type", "application/octet-stream"},
                  {"Content-Range", absl::StrCat(off, "-", off + len - 1)}},
                 202));
        std::string next = r.response.Header("location");
        if (!next.empty()) location = internal::ResolveUrl(r.url, next);
      }
      SS_ASSIGN_OR_RETURN(Exchange done, step("PUT", WithDigestParam(location, digest), "",
                                              {{"Content-Type", "application/octet-stream"}}, 201));
      (void)done;
      return absl::OkStatus();
    }();
    if (st.ok() || !IsRetryableTransportError(st)) return st;
    std::optional<absl::Duration> delay = backoff.Next();
    if (!delay) return st;
    log::Info("restarting blob upload", {{"blob", digest.str()}, {"error", st.message()}});
    Sleep(*delay);
  }
}

absl::StatusOr<Digest> RegistryClient::PushManifest(const Reference& ref,
                                                    std::string_view media_type,
                                                    std::string_view body) {
  if (body.size() > kMaxManifestBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("push manifest ", ref.String(), ": ",
                                                     body.size(), " bytes exceeds ",
                                                     kMaxManifestBytes));
  }
  const Digest digest = Sha256Of(body);
  if (!ref.digest.empty() && ref.digest != digest.str()) {
    return absl::InvalidArgumentError(absl::StrCat("push manifest ", ref.String(),
                                                   ": body hashes to ", digest.str()));
  }
  const std::string object = ref.tag.empty() || !ref.digest.empty() ? digest.str() : ref.tag;
  const std::string what = "manifest " + object;
  const std::string body_copy(body);
  const std::string type(media_type);
  Call call;
  call.method = "PUT";
  call.repo = &ref;
  call.cap = kCapPush;
  call.push = true;
  call.what = what;
  call.follow_redirects = false;
  // Same bytes to the same name: repeating the PUT is harmless.
  call.idempotent = true;
  call.build = [&](const RegistryHost& host) {
    HttpRequest req;
    req.method = "PUT";
    req.url = absl::StrCat(host.BaseUrl(), "/", ref.repository, "/manifests/", object);
    req.body = body_copy;
    req.headers.emplace_back("Content-Type", type);
    return req;
  };
  SS_ASSIGN_OR_RETURN(Exchange ex, Execute(call));
  if (ex.response.status != 201 && ex.response.status != 200) {
    return internal::HttpError(internal::Context("PUT", ex.host, ref, what), ex.response);
  }
  return digest;
}

}  // namespace slipstream::remote
