// SPDX-License-Identifier: Apache-2.0
#include "testkit/net_fetch.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace slipstream::testkit {
namespace {

size_t OnBody(char* data, size_t size, size_t nmemb, void* user) {
  static_cast<FetchResult*>(user)->body.append(data, size * nmemb);
  return size * nmemb;
}

size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) {
  auto* result = static_cast<FetchResult*>(user);
  absl::string_view line(data, size * nmemb);
  // A new status line starts a new response (after 100 Continue or a redirect): keep only
  // the headers of the last one.
  if (absl::StartsWith(line, "HTTP/")) {
    result->headers.clear();
    return line.size();
  }
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    result->headers.emplace_back(
        absl::AsciiStrToLower(line.substr(0, colon)),
        std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
  }
  return line.size();
}

}  // namespace

std::string FetchResult::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

absl::StatusOr<FetchResult> Fetch(const std::string& url, const FetchOptions& options) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
  FetchResult result;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = nullptr;
  for (const std::string& h : options.headers) headers = curl_slist_append(headers, h.c_str());
  // curl adds "Expect: 100-continue" to large bodies; tests want one plain exchange.
  headers = curl_slist_append(headers, "Expect:");
  // curl would label a body application/x-www-form-urlencoded, which makes Go servers (the
  // registry) parse it as a form; raw bytes are what tests send unless they say otherwise.
  bool has_content_type = false;
  for (const std::string& h : options.headers) {
    if (absl::StartsWithIgnoreCase(h, "content-type:")) has_content_type = true;
  }
  if (!has_content_type && !options.body.empty()) {
    headers = curl_slist_append(headers, "Content-Type: application/octet-stream");
  }

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &result);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &result);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options.timeout)));
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, options.follow_redirects ? 1L : 0L);
  // Loopback servers only: never pick up a proxy from the environment.
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  if (!options.ca_file.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO, options.ca_file.c_str());
  if (!options.user_password.empty()) {
    curl_easy_setopt(curl, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
    curl_easy_setopt(curl, CURLOPT_USERPWD, options.user_password.c_str());
  }
  if (options.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (options.method != "GET" || !options.body.empty()) {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, options.method.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, options.body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(options.body.size()));
  }

  result.curl_code = curl_easy_perform(curl);
  if (result.curl_code != CURLE_OK) {
    result.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(result.curl_code);
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &result.status);
  curl_easy_getinfo(curl, CURLINFO_HTTP_VERSION, &result.http_version);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return result;
}

}  // namespace slipstream::testkit
