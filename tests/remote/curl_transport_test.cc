// SPDX-License-Identifier: Apache-2.0
// CurlTransport against the in-process testkit HttpServer on 127.0.0.1.
#include "remote/curl_transport.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/http_server.h"
#include "remote/remote_metrics.h"

namespace slipstream::remote {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<CurlTransport> NewTransport(CurlTransport::Options o = {}) {
  auto t = CurlTransport::Create(o);
  EXPECT_TRUE(t.ok()) << t.status();
  return *std::move(t);
}

std::unique_ptr<HttpServer> Serve(HttpHandler h) {
  auto s = HttpServer::Start(std::move(h));
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

TEST(CurlTransportTest, GetCollectsBodyAndLowerCasedHeaders) {
  auto server = Serve([](const HttpServerRequest& r) {
    HttpServerResponse resp = HttpServerResponse::Text(200, "hello " + r.path);
    resp.headers.emplace_back("X-Thing", "Value");
    return resp;
  });
  auto t = NewTransport();
  HttpRequest req;
  req.url = server->url() + "/a/b";
  auto resp = t->Do(req, nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "hello /a/b");
  EXPECT_EQ(resp->body_bytes, 10);
  EXPECT_EQ(resp->Header("x-thing"), "Value");
  EXPECT_EQ(resp->Header("X-THING"), "Value");
  EXPECT_EQ(resp->effective_url, req.url);
}

TEST(CurlTransportTest, CountsRequestsBytesAndDurationsInTheProcessMetrics) {
  auto server = Serve([](const HttpServerRequest& r) {
    return HttpServerResponse::Text(r.path == "/missing" ? 404 : 200, std::string(1000, 'x'));
  });
  const RemoteMetrics& m = Metrics();
  const int64_t ok = m.requests.With({"2xx"}).value();
  const int64_t not_found = m.requests.With({"4xx"}).value();
  const int64_t errors = m.requests.With({"error"}).value();
  const int64_t bytes = m.bytes_fetched.value();
  const int64_t timed = m.request_seconds.Read().count;
  auto t = NewTransport();
  HttpRequest req;
  req.url = server->url() + "/blob";
  ASSERT_TRUE(t->Do(req, nullptr).ok());
  req.url = server->url() + "/missing";
  ASSERT_TRUE(t->Do(req, nullptr).ok());
  const std::string dead = server->url();
  server->Stop();
  req.url = dead + "/gone";
  EXPECT_FALSE(t->Do(req, nullptr).ok());
  EXPECT_EQ(m.requests.With({"2xx"}).value() - ok, 1);
  EXPECT_EQ(m.requests.With({"4xx"}).value() - not_found, 1);
  EXPECT_EQ(m.requests.With({"error"}).value() - errors, 1);
  EXPECT_EQ(m.bytes_fetched.value() - bytes, 2000);
  EXPECT_EQ(m.request_seconds.Read().count - timed, 3);
}

TEST(CurlTransportTest, SendsMethodHeadersAndBody) {
  std::string method, body, custom, content_type, expect;
  auto server = Serve([&](const HttpServerRequest& r) {
    method = r.method;
    body = r.body;
    custom = r.Header("x-custom");
    content_type = r.Header("content-type");
    expect = r.Header("expect");
    return HttpServerResponse::Text(201, "");
  });
  auto t = NewTransport();
  HttpRequest req;
  req.method = "PATCH";
  req.url = server->url() + "/upload";
  req.body = std::string(3 << 20, 'z');  // big enough that libcurl would add Expect
  req.headers = {{"X-Custom", "1"}};
  auto resp = t->Do(req, nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 201);
  EXPECT_EQ(method, "PATCH");
  EXPECT_EQ(body.size(), 3u << 20);
  EXPECT_EQ(custom, "1");
  EXPECT_EQ(content_type, "");  // no form content type slipped in
  EXPECT_EQ(expect, "");

  req.method = "HEAD";
  req.body.clear();
  resp = t->Do(req, nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(method, "HEAD");
}

TEST(CurlTransportTest, SinkStreamsLargeBodyInOrderWithBackpressure) {
  std::string big(8 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 13));
  auto server = Serve([&](const HttpServerRequest&) {
    HttpServerResponse resp;
    resp.body = big;
    return resp;
  });
  CurlTransport::Options o;
  o.buffer_limit = 64 << 10;  // force pauses
  auto t = NewTransport(o);
  HttpRequest req;
  req.url = server->url() + "/big";
  std::string got;
  int calls = 0;
  BodySink sink = [&](std::string_view c) {
    ++calls;
    got.append(c.data(), c.size());
    if (calls % 50 == 0) std::this_thread::yield();  // a slow-ish consumer
    return absl::OkStatus();
  };
  auto resp = t->Do(req, &sink);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_TRUE(resp->body.empty());
  EXPECT_EQ(resp->body_bytes, static_cast<int64_t>(big.size()));
  EXPECT_TRUE(got == big);
}

TEST(CurlTransportTest, SinkErrorAbortsAndIsReturned) {
  auto server = Serve([](const HttpServerRequest&) {
    HttpServerResponse resp;
    resp.body = std::string(4 << 20, 'x');
    return resp;
  });
  auto t = NewTransport();
  HttpRequest req;
  req.url = server->url() + "/x";
  BodySink sink = [](std::string_view) { return absl::DataLossError("sink says no"); };
  auto resp = t->Do(req, &sink);
  EXPECT_TRUE(absl::IsDataLoss(resp.status())) << resp.status();
  // The transport stays usable.
  auto again = t->Do(req, nullptr, 8 << 20);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->body.size(), 4u << 20);
}

TEST(CurlTransportTest, ErrorBodiesDoNotReachTheSink) {
  auto server = Serve([](const HttpServerRequest&) {
    return HttpServerResponse::Text(404, R"({"errors":[{"code":"BLOB_UNKNOWN"}]})");
  });
  auto t = NewTransport();
  HttpRequest req;
  req.url = server->url() + "/missing";
  bool called = false;
  BodySink sink = [&](std::string_view) {
    called = true;
    return absl::OkStatus();
  };
  auto resp = t->Do(req, &sink);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 404);
  EXPECT_THAT(resp->body, HasSubstr("BLOB_UNKNOWN"));
  EXPECT_FALSE(called);
}

TEST(CurlTransportTest, MaxBodyIsEnforced) {
  auto server = Serve([](const HttpServerRequest& r) {
    HttpServerResponse resp;
    resp.body = std::string(100000, 'x');
    if (r.path == "/chunked") {
      resp.content_length = -1;
      resp.body_stream = [](BodyWriter& w) {
        for (int i = 0; i < 10; ++i) {
          if (!w.Write(std::string(10000, 'y')).ok()) break;
        }
        return absl::OkStatus();
      };
    }
    return resp;
  });
  auto t = NewTransport();
  for (const char* path : {"/fixed", "/chunked"}) {
    HttpRequest req;
    req.url = server->url() + path;
    auto resp = t->Do(req, nullptr, 50000);
    EXPECT_TRUE(absl::IsResourceExhausted(resp.status())) << path << ": " << resp.status();
  }
}

TEST(CurlTransportTest, ConnectionRefusedIsUnavailable) {
  auto server = Serve([](const HttpServerRequest&) { return HttpServerResponse::Text(200, ""); });
  const std::string url = server->url();
  server->Stop();
  auto t = NewTransport();
  HttpRequest req;
  req.url = url + "/x";
  auto resp = t->Do(req, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(resp.status())) << resp.status();
  req.url = "not a url";
  EXPECT_FALSE(t->Do(req, nullptr).ok());
}

TEST(CurlTransportTest, TruncatedBodyIsUnavailable) {
  auto server = Serve([](const HttpServerRequest&) {
    HttpServerResponse resp;
    resp.content_length = 10000;
    resp.body_stream = [](BodyWriter& w) { return w.Write(std::string(5000, 'x')); };
    return resp;
  });
  auto t = NewTransport();
  HttpRequest req;
  req.url = server->url() + "/short";
  std::string got;
  BodySink sink = [&](std::string_view c) {
    got.append(c.data(), c.size());
    return absl::OkStatus();
  };
  auto resp = t->Do(req, &sink);
  EXPECT_TRUE(absl::IsUnavailable(resp.status())) << resp.status();
  EXPECT_EQ(got.size(), 5000u);
}

TEST(CurlTransportTest, StallIsDetectedByLowSpeedWindow) {
  auto server = Serve([](const HttpServerRequest&) {
    HttpServerResponse resp;
    resp.content_length = 10000;
    resp.body_stream = [](BodyWriter& w) {
      absl::Status st = w.Write(std::string(100, 'x'));
      if (!st.ok()) return st;
      return w.Pause(absl::InfiniteDuration());
    };
    return resp;
  });
  auto t = NewTransport();
  HttpRequest req;
  req.url = server->url() + "/stall";
  req.low_speed_window = absl::Seconds(1);
  absl::Time start = absl::Now();
  auto resp = t->Do(req, nullptr);
  EXPECT_TRUE(absl::IsUnavailable(resp.status())) << resp.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_THAT(std::string(resp.status().message()), HasSubstr("stalled"));
}

TEST(CurlTransportTest, FollowedRedirectDropsAuthorizationAcrossHosts) {
  std::atomic<int> target_with_auth{0};
  auto target = Serve([&](const HttpServerRequest& r) {
    if (!r.Header("authorization").empty()) ++target_with_auth;
    HttpServerResponse resp = HttpServerResponse::Text(200, "payload");
    resp.headers.emplace_back("X-Final", "yes");
    return resp;
  });
  // Same IP, different port: a different origin. "localhost" makes the host name differ too.
  const std::string target_url = "http://localhost:" + std::to_string(target->port()) + "/obj";
  auto origin = Serve([&](const HttpServerRequest&) {
    HttpServerResponse resp = HttpServerResponse::Text(307, "");
    resp.headers.emplace_back("Location", target_url);
    resp.headers.emplace_back("X-Hop", "first");
    return resp;
  });
  auto t = NewTransport();
  HttpRequest req;
  req.url = origin->url() + "/blob";
  req.headers = {{"Authorization", "Bearer secret"}};
  auto resp = t->Do(req, nullptr);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, "payload");
  EXPECT_EQ(resp->effective_url, target_url);
  EXPECT_EQ(resp->Header("x-final"), "yes");
  EXPECT_EQ(resp->Header("x-hop"), "");  // headers of the final hop only
  EXPECT_EQ(target_with_auth, 0);

  req.follow_redirects = false;
  resp = t->Do(req, nullptr);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 307);
  EXPECT_EQ(resp->Header("location"), target_url);
}

TEST(CurlTransportTest, ManyConcurrentRequestsReuseConnections) {
  auto server = Serve([](const HttpServerRequest& r) {
    return HttpServerResponse::Text(200, std::string(20000, r.path.back()));
  });
  auto t = NewTransport();
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 25; ++j) {
        HttpRequest req;
        req.url = absl::StrCat(server->url(), "/", j % 10);
        auto resp = t->Do(req, nullptr);
        if (!resp.ok() || resp->body != std::string(20000, '0' + j % 10)) ++bad;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, 0);
  // 200 requests from 8 threads: connections are cached and reused, not one per request.
  EXPECT_LE(server->connections_accepted(), 16);
  CurlTransport::Stats st = t->stats();
  EXPECT_EQ(st.requests, 200);
  EXPECT_EQ(st.connections_opened, server->connections_accepted());
  EXPECT_EQ(st.http2_responses, 0);  // plain HTTP/1.1 server
}

}  // namespace
}  // namespace slipstream::remote
