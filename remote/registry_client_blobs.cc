// SPDX-License-Identifier: Apache-2.0
// RegistryClient: whole-blob and Range reads, blob existence.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "remote/registry_client.h"
#include "remote/registry_client_internal.h"
#include "remote/registry_client_util.h"

namespace slipstream::remote {
namespace {

constexpr int64_t kMaxReadBlob = 64 << 20;
// The first Range request to a host we know nothing about is small and buffered, so that a
// host answering 200 (whole blob) instead of 206 is found out before bytes reach the sink.
constexpr int64_t kProbeBytes = 1 << 20;

std::string BlobUrl(const RegistryHost& host, const Reference& repo, const Digest& d) {
  return absl::StrCat(host.BaseUrl(), "/", repo.repository, "/blobs/", d.str());
}

std::string RedirectKey(const Reference& repo, const Digest& d) {
  return absl::StrCat(repo.registry, "/", repo.repository, "@", d.str());
}

// Parses "bytes <first>-<last>/<total or *>" into first and last.
bool ParseContentRange(std::string_view v, int64_t* first, int64_t* last) {
  v = util::Strip(v);
  if (v.substr(0, 6) != "bytes ") return false;
  v.remove_prefix(6);
  size_t dash = v.find('-');
  size_t slash = v.find('/');
  if (dash == std::string_view::npos || slash == std::string_view::npos || slash < dash) {
    return false;
  }
  return util::ParseInt64(v.substr(0, dash), first) &&
         util::ParseInt64(v.substr(dash + 1, slash - dash - 1), last) && *last >= *first;
}

}  // namespace

// Progress of one ReadBlobRange across attempts, hosts and rounds.
struct RegistryClient::RangeState {
  int64_t offset = 0;
  int64_t length = 0;
  int64_t delivered = 0;        // bytes handed to the caller's sink
  const BodySink* user_sink = nullptr;
  absl::Status user_status;     // the caller's sink error, returned as is
  // Per attempt (reset by the request builder):
  bool skip_mode = false;       // no Range header: the body starts at blob byte 0
  bool probe = false;           // buffer instead of delivering; see kProbeBytes
  int64_t attempt_start = 0;    // blob offset the Range header asked for
  int64_t body_pos = 0;         // body bytes seen in this attempt
  bool enough = false;          // all wanted bytes delivered; the transfer was cut short
  std::string probe_buffer;

  int64_t next() const { return offset + delivered; }
  int64_t end() const { return offset + length; }

  // Hands the part of a body chunk that lies in [next(), end()) to the caller.
  absl::Status Consume(std::string_view chunk) {
    const int64_t abs = (skip_mode ? 0 : attempt_start) + body_pos;
    body_pos += static_cast<int64_t>(chunk.size());
    const int64_t lo = std::max(abs, next());
    const int64_t hi = std::min(abs + static_cast<int64_t>(chunk.size()), end());
    if (lo < hi) {
      absl::Status st = (*user_sink)(chunk.substr(lo - abs, hi - lo));
      if (!st.ok()) {
        user_status = st;
        return st;
      }
      delivered += hi - lo;
    }
    if (next() >= end()) {
      enough = true;
      // Cut the transfer only when the body runs past the range (a 200 with the whole blob);
      // aborting a 206 that is about to end anyway would cost its connection.
      if (abs + static_cast<int64_t>(chunk.size()) > end()) {
        return absl::CancelledError("range complete");
      }
    }
    return absl::OkStatus();
  }
};

absl::Status RegistryClient::ReadBlobRange(const Reference& repo, const Digest& digest,
                                           int64_t offset, int64_t length,
                                           const BodySink& sink) {
  if (offset < 0 || length < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("blob ", digest.str(), ": bad range offset=", offset, " length=", length));
  }
  if (length == 0) return absl::OkStatus();
  RangeState st;
  st.offset = offset;
  st.length = length;
  st.user_sink = &sink;
  const std::string what = absl::StrCat("blob ", internal::ShortDigest(digest));

  BodySink wrapper = [&st](std::string_view chunk) -> absl::Status {
    if (st.probe) {
      st.probe_buffer.append(chunk.data(), chunk.size());
      if (static_cast<int64_t>(st.probe_buffer.size()) > kProbeBytes) {
        return absl::AbortedError("range ignored");
      }
      return absl::OkStatus();
    }
    return st.Consume(chunk);
  };

  Call call;
  call.method = "GET";
  call.repo = &repo;
  call.cap = kCapPull;
  call.what = what;
  call.sink = &wrapper;
  call.redirect_key = RedirectKey(repo, digest);
  std::string origin_key;
  call.build = [&](const RegistryHost& host) {
    origin_key = host.BaseUrl();
    std::optional<bool> honours;
    {
      absl::MutexLock lock(&mu_);
      auto it = honours_range_.find(origin_key);
      if (it != honours_range_.end()) honours = it->second;
    }
    st.attempt_start = st.next();
    st.body_pos = 0;
    st.skip_mode = honours.has_value() && !*honours;
    st.probe = !honours.has_value() && st.attempt_start > 0;
    st.probe_buffer.clear();
    HttpRequest req;
    req.url = BlobUrl(host, repo, digest);
    if (!st.skip_mode) {
      int64_t last = st.end() - 1;
      if (st.probe) last = std::min(last, st.attempt_start + kProbeBytes - 1);
      req.headers.emplace_back("Range", absl::StrCat("bytes=", st.attempt_start, "-", last));
    }
    return req;
  };
  auto set_honours = [&](bool v) {
    absl::MutexLock lock(&mu_);
    honours_range_[origin_key] = v;
  };

  // Each round is one Execute (which itself retries and resumes); a round ends early when
  // the probe finished or the host turned out to ignore Range.
  for (int round = 0; st.delivered < length; ++round) {
    if (round > 16) return absl::InternalError(what + ": range read makes no progress");
    const int64_t before = st.delivered;
    absl::StatusOr<Exchange> ex = Execute(call);
    if (!st.user_status.ok()) return st.user_status;
    if (!ex.ok()) {
      if (st.enough) return absl::OkStatus();
      if (st.probe && absl::IsAborted(ex.status())) {
        set_honours(false);  // a >1 MiB answer to a ≤1 MiB Range request: it was the whole blob
        continue;
      }
      return ex.status();
    }
    const HttpResponse& r = ex->response;
    const std::string context = internal::Context("GET", ex->host, repo, what);
    if (r.status != 200 && r.status != 206) return internal::HttpError(context, r);
    if (st.probe) {
      if (r.status == 206) {
        int64_t first = 0, last = 0;
        if (!ParseContentRange(r.Header("content-range"), &first, &last) ||
            first != st.attempt_start) {
          return absl::DataLossError(absl::StrCat(context, ": bad Content-Range \"",
                                                  r.Header("content-range"), "\" for offset ",
                                                  st.attempt_start));
        }
        set_honours(true);
      } else {
        set_honours(false);
        st.skip_mode = true;  // the buffered body starts at byte 0
      }
      st.probe = false;
      st.body_pos = 0;
      std::string buffered = std::move(st.probe_buffer);
      absl::Status consumed = st.Consume(buffered);
      if (!st.user_status.ok()) return st.user_status;
      (void)consumed;  // "range complete" is expected here
    } else if (r.status == 206) {
      int64_t first = 0, last = 0;
      if (!ParseContentRange(r.Header("content-range"), &first, &last) ||
          first != st.attempt_start) {
        return absl::DataLossError(absl::StrCat(context, ": bad Content-Range \"",
                                                r.Header("content-range"), "\" for offset ",
                                                st.attempt_start));
      }
      set_honours(true);  // later reads at other offsets need no probe
    } else if (!st.skip_mode && st.attempt_start > 0) {
      // 200 to a Range request after this host had answered 206 before: what we streamed
      // was the wrong part of the blob. Remember, and let the caller retry.
      set_honours(false);
      return absl::DataLossError(context + ": server ignored the Range header");
    }
    if (st.delivered < length && st.delivered == before && r.status != 200 && !st.probe) {
      // A complete 206 that stopped short: the blob ends before offset+length.
      return absl::OutOfRangeError(absl::StrCat(context, ": blob ends before offset ",
                                                offset + length));
    }
    if (st.delivered < length && r.status == 200 && st.skip_mode && st.delivered == before) {
      return absl::OutOfRangeError(absl::StrCat(context, ": blob ends before offset ",
                                                offset + length));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> RegistryClient::ReadRange(const Reference& repo,
                                                      const Digest& digest, int64_t offset,
                                                      int64_t length) {
  if (length > kMaxReadBlob) {
    return absl::ResourceExhaustedError(
        absl::StrCat("blob ", digest.str(), ": range of ", length, " bytes is too large to buffer"));
  }
  std::string out;
  out.reserve(static_cast<size_t>(length));
  SS_RETURN_IF_ERROR(ReadBlobRange(repo, digest, offset, length, [&out](std::string_view c) {
    out.append(c.data(), c.size());
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::string> RegistryClient::ReadBlob(const Reference& repo,
                                                     const Descriptor& blob) {
  if (blob.size < 0 || blob.size > kMaxReadBlob) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "blob ", blob.digest.str(), " of ", blob.size, " bytes is too large to read into memory"));
  }
  const std::string what = absl::StrCat("blob ", internal::ShortDigest(blob.digest));
  // Streamed into our own buffer (rather than collected by the transport) so that error
  // bodies stay readable and an overlong body is a DataLoss, not a transport limit.
  std::string body;
  bool too_long = false;
  BodySink collect = [&](std::string_view chunk) -> absl::Status {
    if (static_cast<int64_t>(body.size() + chunk.size()) > blob.size) {
      too_long = true;
      return absl::DataLossError("longer than its descriptor");
    }
    body.append(chunk.data(), chunk.size());
    return absl::OkStatus();
  };
  Call call;
  call.method = "GET";
  call.repo = &repo;
  call.cap = kCapPull;
  call.what = what;
  call.sink = &collect;
  call.redirect_key = RedirectKey(repo, blob.digest);
  call.build = [&](const RegistryHost& host) {
    body.clear();  // a retry starts over
    HttpRequest req;
    req.url = BlobUrl(host, repo, blob.digest);
    return req;
  };
  absl::StatusOr<Exchange> ex = Execute(call);
  if (!ex.ok()) {
    if (too_long) {
      return absl::DataLossError(absl::StrCat("GET ", repo.registry, "/", repo.repository, " ",
                                              what, ": longer than its descriptor's ",
                                              blob.size, " bytes"));
    }
    return ex.status();
  }
  const std::string context = internal::Context("GET", ex->host, repo, what);
  if (ex->response.status != 200) return internal::HttpError(context, ex->response);
  if (static_cast<int64_t>(body.size()) != blob.size) {
    return absl::DataLossError(absl::StrCat(context, ": got ", body.size(), " bytes, want ",
                                            blob.size));
  }
  Digest got = Sha256Of(body);
  if (got != blob.digest) {
    return absl::DataLossError(absl::StrCat(context, ": content hashes to ", got.str()));
  }
  return body;
}

absl::StatusOr<bool> RegistryClient::BlobExists(const Reference& repo, const Digest& digest) {
  const std::string what = absl::StrCat("blob ", internal::ShortDigest(digest));
  Call call;
  call.method = "HEAD";
  call.repo = &repo;
  call.cap = kCapPull;
  call.what = what;
  call.build = [&](const RegistryHost& host) {
    HttpRequest req;
    req.method = "HEAD";
    req.url = BlobUrl(host, repo, digest);
    return req;
  };
  SS_ASSIGN_OR_RETURN(Exchange ex, Execute(call));
  if (ex.response.status == 200) return true;
  if (ex.response.status == 404) return false;
  return internal::HttpError(internal::Context("HEAD", ex.host, repo, what), ex.response);
}

}  // namespace slipstream::remote
