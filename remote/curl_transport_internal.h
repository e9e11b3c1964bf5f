// SPDX-License-Identifier: Apache-2.0
// CurlTransport's per-transfer state, shared by curl_transport.cc (loop thread, Do) and
// curl_transport_easy.cc (easy-handle options and libcurl callbacks). Not a public header.
#pragma once

#include <curl/curl.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "remote/curl_transport.h"

namespace slipstream::remote {

// State of one Do() call, shared between the calling thread and the loop thread.
struct CurlTransport::Transfer {
  uint64_t id = 0;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  const BodySink* sink = nullptr;
  size_t max_body = 0;
  size_t buffer_limit = 0;
  char errbuf[CURL_ERROR_SIZE] = {};

  // Loop thread only until `done` is published, then the caller's.
  HttpResponse response;
  int64_t content_length = -1;  // of the current header block, -1 when not announced
  absl::Status local_error;  // set by a callback before it aborts the transfer
  // Stall detection (loop thread only): progress must grow by low_speed_bytes per window.
  int64_t low_speed_bytes = 1;
  absl::Duration low_speed_window = absl::Seconds(30);
  absl::Time window_start;
  curl_off_t window_bytes = 0;

  absl::Mutex mu;
  std::deque<std::string> chunks ABSL_GUARDED_BY(mu);
  size_t buffered ABSL_GUARDED_BY(mu) = 0;
  bool paused ABSL_GUARDED_BY(mu) = false;
  bool done ABSL_GUARDED_BY(mu) = false;
  CURLcode result ABSL_GUARDED_BY(mu) = CURLE_OK;

  // Creates `easy` and sets every option for `request` (which must outlive the transfer:
  // the body is not copied). `share` is the transport's CURLSH.
  absl::Status Configure(const HttpRequest& request, CURLSH* share);

  // libcurl callbacks, run on the loop thread.
  static size_t OnHeader(char* data, size_t size, size_t n, void* user);
  static int OnProgress(void* user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow);
  static size_t OnWrite(char* data, size_t size, size_t n, void* user);
};

// libcurl's share interface wants C callbacks for locking; one mutex per data kind.
struct CurlTransport::Shared {
  std::mutex locks[CURL_LOCK_DATA_LAST];
  static void Lock(CURL*, curl_lock_data data, curl_lock_access, void* user) {
    static_cast<Shared*>(user)->locks[data].lock();
  }
  static void Unlock(CURL*, curl_lock_data data, void* user) {
    static_cast<Shared*>(user)->locks[data].unlock();
  }
};


// The Status for a failed transfer: InvalidArgument for bad URLs, FailedPrecondition for TLS
// verification and redirect loops, Unavailable for everything else. The URL's query string
// (presigned credentials) is left out of the message.
absl::Status CurlError(CURLcode code, const char* errbuf, const std::string& url);

}  // namespace slipstream::remote
