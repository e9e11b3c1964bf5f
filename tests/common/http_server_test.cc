// SPDX-License-Identifier: Apache-2.0
// Tests of the tiny HttpServer through raw sockets (framing, keep-alive, limits, shutdown).
#include "common/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "common/net.h"
#include "testkit/net_fetch.h"

namespace slipstream {
namespace {

using testkit::Fetch;
using testkit::FetchOptions;
using testkit::FetchResult;

// Echoes method, path, decoded query parameter "q" and the body length.
HttpServerResponse Echo(const HttpServerRequest& r) {
  return HttpServerResponse::Text(
      200, absl::StrCat(r.method, " ", r.path, " q=", r.QueryParam("q"), " len=", r.body.size(),
                        " body=", r.body));
}

std::unique_ptr<HttpServer> StartOrDie(HttpHandler handler, HttpServerOptions options = {}) {
  absl::StatusOr<std::unique_ptr<HttpServer>> s = HttpServer::Start(std::move(handler), options);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(s).value() : nullptr;
}

UniqueFd ConnectOrDie(const HttpServer& server) {
  absl::StatusOr<UniqueFd> fd = ConnectTcp("127.0.0.1", server.port(), absl::Seconds(5));
  EXPECT_TRUE(fd.ok()) << fd.status();
  if (!fd.ok()) return UniqueFd();
  SetSocketTimeouts(fd->get(), absl::Seconds(10));
  return *std::move(fd);
}

// Reads one response with a Content-Length body; returns "STATUS BODY".
std::string ReadResponse(SocketReader& reader) {
  absl::StatusOr<HttpHead> head = ReadHttpHead(reader);
  if (!head.ok()) return absl::StrCat("error: ", head.status().ToString());
  while (absl::StartsWith(head->start_line, "HTTP/1.1 100")) {
    head = ReadHttpHead(reader);
    if (!head.ok()) return absl::StrCat("error: ", head.status().ToString());
  }
  int64_t length = 0;
  if (!absl::SimpleAtoi(head->Header("content-length"), &length)) return "no content-length";
  absl::StatusOr<std::string> body = reader.ReadExact(static_cast<size_t>(length));
  if (!body.ok()) return absl::StrCat("error: ", body.status().ToString());
  return absl::StrCat(head->start_line.substr(9, 3), " ", *body);
}

TEST(HttpServerTest, KeepAliveChunkedBodiesAndDecodedQuery) {
  auto server = StartOrDie(&Echo);
  ASSERT_NE(server, nullptr);
  UniqueFd fd = ConnectOrDie(*server);
  SocketReader reader(fd.get());
  // Two pipelined requests on one connection, the second with a chunked body.
  ASSERT_TRUE(SendAll(fd.get(),
                      "GET /a?q=x%2Fy+z HTTP/1.1\r\nHost: t\r\n\r\n"
                      "POST /b HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n")
                  .ok());
  EXPECT_EQ(ReadResponse(reader), "200 GET /a q=x/y z len=0 body=");
  EXPECT_EQ(ReadResponse(reader), "200 POST /b q= len=7 body=abcdefg");
  EXPECT_EQ(server->connections_accepted(), 1);
}

TEST(HttpServerTest, AnswersExpectContinueBeforeTheBody) {
  auto server = StartOrDie(&Echo);
  ASSERT_NE(server, nullptr);
  UniqueFd fd = ConnectOrDie(*server);
  SocketReader reader(fd.get());
  ASSERT_TRUE(SendAll(fd.get(), "PUT /up HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                "Expect: 100-continue\r\n\r\n")
                  .ok());
  absl::StatusOr<HttpHead> interim = ReadHttpHead(reader);
  ASSERT_TRUE(interim.ok()) << interim.status();
  EXPECT_EQ(interim->start_line, "HTTP/1.1 100 Continue");
  ASSERT_TRUE(SendAll(fd.get(), "hello").ok());
  EXPECT_EQ(ReadResponse(reader), "200 PUT /up q= len=5 body=hello");
}

TEST(HttpServerTest, StreamsChunkedAndFixedLengthBodiesAndHead) {
  auto server = StartOrDie([](const HttpServerRequest& r) {
    HttpServerResponse resp;
    if (r.path == "/fixed") resp.content_length = 6;
    resp.body_stream = [](BodyWriter& w) -> absl::Status {
      absl::Status s = w.Write("abc");
      if (s.ok()) s = w.Write("def");
      return s;
    };
    return resp;
  });
  ASSERT_NE(server, nullptr);
  FetchResult chunked = *Fetch(server->url() + "/chunked");
  EXPECT_TRUE(chunked.ok()) << chunked.error;
  EXPECT_EQ(chunked.Header("transfer-encoding"), "chunked");
  EXPECT_EQ(chunked.body, "abcdef");
  FetchResult fixed = *Fetch(server->url() + "/fixed");
  EXPECT_EQ(fixed.Header("content-length"), "6");
  EXPECT_EQ(fixed.body, "abcdef");
  FetchOptions head;
  head.method = "HEAD";
  FetchResult headed = *Fetch(server->url() + "/fixed", head);
  EXPECT_TRUE(headed.ok()) << headed.error;
  EXPECT_EQ(headed.Header("content-length"), "6");
  EXPECT_TRUE(headed.body.empty());
}

TEST(HttpServerTest, ShortStreamedBodyClosesTheConnection) {
  auto server = StartOrDie([](const HttpServerRequest&) {
    HttpServerResponse resp;
    resp.content_length = 10;
    resp.body_stream = [](BodyWriter& w) { return w.Write("only4"); };
    return resp;
  });
  ASSERT_NE(server, nullptr);
  FetchResult r = *Fetch(server->url() + "/");
  EXPECT_EQ(r.curl_code, CURLE_PARTIAL_FILE) << r.error;
  EXPECT_EQ(r.body, "only4");
}

TEST(HttpServerTest, MalformedRequestGets400) {
  auto server = StartOrDie(&Echo);
  ASSERT_NE(server, nullptr);
  UniqueFd fd = ConnectOrDie(*server);
  SocketReader reader(fd.get());
  ASSERT_TRUE(SendAll(fd.get(), "NONSENSE\r\n\r\n").ok());
  EXPECT_EQ(ReadResponse(reader), "400 ");
}

TEST(HttpServerTest, ConnectionsBeyondTheLimitWaitForAFreeSlot) {
  HttpServerOptions options;
  options.max_connections = 1;
  auto server = StartOrDie(&Echo, options);
  ASSERT_NE(server, nullptr);
  UniqueFd first = ConnectOrDie(*server);
  SocketReader first_reader(first.get());
  ASSERT_TRUE(SendAll(first.get(), "GET /1 HTTP/1.1\r\n\r\n").ok());
  ASSERT_EQ(ReadResponse(first_reader), "200 GET /1 q= len=0 body=");

  UniqueFd second = ConnectOrDie(*server);  // sits in the backlog
  ASSERT_TRUE(SendAll(second.get(), "GET /2 HTTP/1.1\r\n\r\n").ok());
  pollfd p{second.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 200), 0) << "served beyond max_connections";
  first.Reset();  // frees the only slot
  SocketReader second_reader(second.get());
  EXPECT_EQ(ReadResponse(second_reader), "200 GET /2 q= len=0 body=");
}

TEST(HttpServerTest, StopWakesPausedHandlersAndJoins) {
  std::atomic<int> paused{0};
  std::atomic<bool> cancelled{false};
  auto server = StartOrDie([&](const HttpServerRequest&) {
    HttpServerResponse resp;
    resp.body_stream = [&](BodyWriter& w) -> absl::Status {
      absl::Status s = w.Write("x");
      paused.fetch_add(1);
      if (s.ok()) s = w.Pause(absl::InfiniteDuration());
      cancelled = absl::IsCancelled(s);
      return s;
    };
    return resp;
  });
  ASSERT_NE(server, nullptr);
  UniqueFd idle = ConnectOrDie(*server);  // an idle keep-alive connection must not block Stop
  UniqueFd fd = ConnectOrDie(*server);
  ASSERT_TRUE(SendAll(fd.get(), "GET / HTTP/1.1\r\n\r\n").ok());
  absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (paused.load() == 0 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_EQ(paused.load(), 1);
  absl::Time start = absl::Now();
  server->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(cancelled.load());
  // The port is closed now.
  EXPECT_FALSE(ConnectTcp("127.0.0.1", server->port(), absl::Seconds(1)).ok());
}

TEST(HttpServerTest, UrlDecoding) {
  EXPECT_EQ(UrlDecode("a%3Ab+c%zz%4"), "a:b c%zz%4");
  EXPECT_EQ(UrlDecode("a+b", /*plus_is_space=*/false), "a+b");
  auto pairs = ParseUrlEncoded("scope=repository%3Aa%3Apull&flag&=v&x=1");
  ASSERT_EQ(pairs.size(), 4u);
  EXPECT_EQ(pairs[0].second, "repository:a:pull");
  EXPECT_EQ(pairs[1].first, "flag");
  EXPECT_EQ(pairs[1].second, "");
  EXPECT_EQ(pairs[2].first, "");
}

}  // namespace
}  // namespace slipstream
