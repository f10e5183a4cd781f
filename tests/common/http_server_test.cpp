#include "common/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <thread>

#include "common/crypto.h"
#include "common/json.h"
#include "tests/common/eventually.h"
#include "tests/common/http_test_client.h"
#include "tests/common/tls_test_pki.h"

namespace tasklease {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::TestClient;
using testing::TestClientOptions;

using testing::eventually;

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("https-" + randomHex(6));
    fs::create_directories(dir_);
    ca_ = testing::makeTestCa("test-ca");
    auto leaf = testing::issueTestServerCert(ca_, "server-1", {"IP:127.0.0.1", "DNS:localhost"});
    certFile_ = (dir_ / "tls.crt").string();
    keyFile_ = (dir_ / "tls.key").string();
    testing::writeFile(certFile_, leaf.certPem);
    testing::writeFile(keyFile_, leaf.keyPem);
    routes_.add("POST", "/echo", [](const HttpRequest& r) {
      HttpResponse out;
      out.body = r.body;
      return out;
    });
    routes_.add("GET", "/healthz", [](const HttpRequest&) {
      HttpResponse out;
      out.contentType = "text/plain";
      out.body = "ok";
      return out;
    });
    routes_.add("GET", "/throw",
                [](const HttpRequest&) -> HttpResponse { throw std::runtime_error("boom"); });
    options_.address = "127.0.0.1";
    options_.port = 0;
    options_.tls = TlsFiles{certFile_, keyFile_};
    options_.certReloadInterval = std::chrono::milliseconds(50);
    options_.onError = [this](HttpServerError e, const std::string&) {
      std::lock_guard<std::mutex> lock(errorsMu_);
      errors_.push_back(e);
    };
  }

  void TearDown() override {
    if (server_) server_->shutdown(std::chrono::seconds(1));
    fs::remove_all(dir_);
  }

  void start() {
    auto s = HttpServer::start(options_, routes_);
    ASSERT_TRUE(s.ok()) << s.status().toString();
    server_ = std::move(*s);
  }

  std::unique_ptr<TestClient> client(const std::string& caPem = "") {
    TestClientOptions o;
    o.caPem = caPem.empty() ? ca_.certPem : caPem;
    std::string error;
    auto c = TestClient::connect(server_->port(), o, &error);
    EXPECT_NE(c, nullptr) << error;
    return c;
  }

  bool sawError(HttpServerError e) {
    std::lock_guard<std::mutex> lock(errorsMu_);
    return std::find(errors_.begin(), errors_.end(), e) != errors_.end();
  }

  fs::path dir_;
  testing::TestCert ca_;
  std::string certFile_, keyFile_;
  HttpRoutes routes_;
  HttpServerOptions options_;
  HttpServerPtr server_;
  std::mutex errorsMu_;
  std::vector<HttpServerError> errors_;  // guarded by errorsMu_
};

TEST_F(HttpServerTest, TlsHandshakeVerifiesAgainstTheCaWithTls12OrLater) {
  start();
  auto c = client();
  ASSERT_NE(c, nullptr);
  EXPECT_GE(c->tlsVersion(), TLS1_2_VERSION);
  EXPECT_EQ(c->peerCommonName(), "server-1");
  auto r = c->request("GET", "/healthz");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
}

TEST_F(HttpServerTest, RefusesClientsOlderThanTls12) {
  start();
  TestClientOptions o;
  o.caPem = ca_.certPem;
  o.maxTlsVersion = TLS1_1_VERSION;
  std::string error;
  EXPECT_EQ(TestClient::connect(server_->port(), o, &error), nullptr);
  EXPECT_THAT(error, HasSubstr("handshake"));
  EXPECT_TRUE(eventually([&] { return sawError(HttpServerError::kTlsHandshake); }));
}

TEST_F(HttpServerTest, StartFailsWithTheFileNameWhenTheKeyDoesNotMatch) {
  auto other = testing::issueTestServerCert(ca_, "other", {"IP:127.0.0.1"});
  testing::writeFile(keyFile_, other.keyPem);
  auto s = HttpServer::start(options_, routes_);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(keyFile_));
}

TEST_F(HttpServerTest, KeepsOneConnectionAliveAcrossRequests) {
  start();
  auto c = client();
  for (int i = 0; i < 5; ++i) {
    auto r = c->request("POST", "/echo", "{\"n\":" + std::to_string(i) + "}");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.body, "{\"n\":" + std::to_string(i) + "}");
    EXPECT_TRUE(r.keepAlive);
  }
  EXPECT_EQ(server_->openConnections(), 1U);
}

TEST_F(HttpServerTest, BodyOverTheLimitGets413) {
  options_.bodyLimit = 1024 * 1024;
  start();
  auto c = client();
  auto r = c->request("POST", "/echo", std::string(2 * 1024 * 1024, 'x'));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 413);
  EXPECT_FALSE(r.keepAlive);
  EXPECT_EQ(Json::parse(r.body)["reason"], "RequestEntityTooLarge");
  EXPECT_TRUE(sawError(HttpServerError::kBodyTooLarge));
  // A body at the limit is fine.
  auto ok = client()->request("POST", "/echo", std::string(1024 * 1024, 'x'));
  EXPECT_EQ(ok.status, 200);
}

TEST_F(HttpServerTest, MalformedHttpGets400WithAMessage) {
  start();
  auto r = client()->raw("NOT AN HTTP REQUEST\r\n\r\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 400);
  EXPECT_THAT(Json::parse(r.body)["message"].get<std::string>(), HasSubstr("malformed HTTP"));
  auto bad = client()->raw("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n");
  EXPECT_EQ(bad.status, 400);
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405) {
  start();
  auto c = client();
  EXPECT_EQ(c->request("GET", "/nope").status, 404);
  EXPECT_EQ(c->request("GET", "/echo").status, 405);
}

TEST_F(HttpServerTest, HandlerThatThrowsGets500AndTheServerGoesOn) {
  start();
  auto c = client();
  EXPECT_EQ(c->request("GET", "/throw").status, 500);
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
  EXPECT_TRUE(sawError(HttpServerError::kHandlerFailed));
}

TEST_F(HttpServerTest, TlsGarbageIsClosedAndTheServerGoesOn) {
  start();
  TestClientOptions plain;
  // Plain HTTP to the TLS port, then a TLS record whose handshake message is nonsense.
  for (std::string garbage : {std::string("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"),
                              std::string("\x16\x03\x01\x00\x05hello", 10)}) {
    auto raw = TestClient::connect(server_->port(), plain);
    ASSERT_NE(raw, nullptr);
    raw->send(garbage);
    EXPECT_TRUE(raw->closedByServer());
  }
  EXPECT_TRUE(eventually([&] { return sawError(HttpServerError::kTlsHandshake); }));
  EXPECT_EQ(client()->request("GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  options_.idleTimeout = std::chrono::milliseconds(200);
  start();
  auto c = client();
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
  EXPECT_TRUE(c->closedByServer());
  EXPECT_TRUE(eventually([&] { return sawError(HttpServerError::kTimeout); }));
}

TEST_F(HttpServerTest, SlowClientIsClosedAfterTheReadTimeout) {
  options_.readTimeout = std::chrono::milliseconds(200);
  start();
  auto c = client();
  ASSERT_TRUE(c->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"partial"));
  EXPECT_TRUE(c->closedByServer());
  EXPECT_TRUE(eventually([&] { return sawError(HttpServerError::kTimeout); }));
}

TEST_F(HttpServerTest, CertificateReloadKeepsOpenConnectionsAndServesTheNewOneToNewOnes) {
  std::atomic<int> reloaded{0};
  options_.onCertificateReload = [&] { reloaded++; };
  start();
  auto before = client();
  ASSERT_EQ(before->request("GET", "/healthz").status, 200);

  auto ca2 = testing::makeTestCa("test-ca-2");
  auto leaf2 = testing::issueTestServerCert(ca2, "server-2", {"IP:127.0.0.1"});
  // As Kubernetes updates a mounted Secret: new files, swapped in by rename.
  testing::writeFile(certFile_ + ".new", leaf2.certPem);
  testing::writeFile(keyFile_ + ".new", leaf2.keyPem);
  fs::rename(keyFile_ + ".new", keyFile_);
  fs::rename(certFile_ + ".new", certFile_);
  ASSERT_TRUE(eventually([&] { return server_->certificateReloads() >= 1; }));
  EXPECT_GE(reloaded.load(), 1);

  auto r = before->request("POST", "/echo", "still here");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.body, "still here");
  EXPECT_EQ(before->peerCommonName(), "server-1");

  auto after = client(ca2.certPem);
  ASSERT_NE(after, nullptr);
  EXPECT_EQ(after->peerCommonName(), "server-2");
}

TEST_F(HttpServerTest, UnloadableNewCertificateKeepsTheOldOne) {
  start();
  testing::writeFile(certFile_, "-----BEGIN CERTIFICATE-----\nnot base64\n");
  ASSERT_TRUE(eventually([&] { return sawError(HttpServerError::kCertificateReload); }));
  EXPECT_EQ(server_->certificateReloads(), 0U);
  auto c = client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->peerCommonName(), "server-1");
}

TEST_F(HttpServerTest, GracefulShutdownAnswersTheRequestInFlight) {
  std::promise<void> entered;
  std::promise<void> release;
  auto releaseFuture = release.get_future().share();
  routes_.add("POST", "/slow", [&](const HttpRequest& r) {
    entered.set_value();
    releaseFuture.wait();
    HttpResponse out;
    out.body = r.body;
    return out;
  });
  start();
  auto idle = client();
  ASSERT_EQ(idle->request("GET", "/healthz").status, 200);
  auto busy = client();
  auto answer =
      std::async(std::launch::async, [&] { return busy->request("POST", "/slow", "review"); });
  entered.get_future().wait();

  auto stopped =
      std::async(std::launch::async, [&] { server_->shutdown(std::chrono::seconds(10)); });
  // Idle connections are closed at once; new ones are refused.
  EXPECT_TRUE(idle->closedByServer());
  EXPECT_TRUE(eventually([&] {
    TestClientOptions o;
    o.caPem = ca_.certPem;
    return TestClient::connect(server_->port(), o) == nullptr;
  }));
  release.set_value();
  testing::TestResponse r = answer.get();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "review");
  EXPECT_FALSE(r.keepAlive);
  busy.reset();
  stopped.get();
  EXPECT_EQ(server_->openConnections(), 0U);
}

TEST_F(HttpServerTest, ANewConnectionIsRefusedOnlyWhenEveryConnectionHasARequestInFlight) {
  // The request is being handled elsewhere (as reviews are, on workers) and not answered yet.
  std::promise<HttpResponder> handedOff;
  routes_.addAsync("POST", "/slow", [&](HttpRequest&&, HttpResponder respond) {
    handedOff.set_value(std::move(respond));
  });
  options_.maxConnections = 1;
  start();
  auto busy = client();
  auto answer = std::async(std::launch::async, [&] { return busy->request("POST", "/slow"); });
  HttpResponder respond = handedOff.get_future().get();
  TestClientOptions o;
  o.caPem = ca_.certPem;
  EXPECT_EQ(TestClient::connect(server_->port(), o), nullptr);
  EXPECT_TRUE(eventually([&] { return sawError(HttpServerError::kTooManyConnections); }));
  respond(HttpResponse{});
  EXPECT_EQ(answer.get().status, 200);
}

// Opens n TCP connections that never start their TLS handshake.
std::vector<std::unique_ptr<TestClient>> silentConnections(uint16_t port, int n) {
  std::vector<std::unique_ptr<TestClient>> out;
  TestClientOptions plain;  // no TLS: the connection stays silent
  for (int i = 0; i < n; ++i) {
    auto c = TestClient::connect(port, plain);
    if (c != nullptr) out.push_back(std::move(c));
  }
  return out;
}

TEST_F(HttpServerTest, AFloodOfSilentConnectionsDoesNotLockOutNewClients) {
  // The attack: more idle TCP connections than the limit, none starting its TLS handshake. A
  // client that comes next must still be served (it closes the oldest silent one).
  options_.maxConnections = 8;
  start();
  auto flood = silentConnections(server_->port(), 20);
  ASSERT_EQ(flood.size(), 20U);
  ASSERT_TRUE(eventually([&] { return server_->openConnections() == 8; }));
  for (int i = 0; i < 3; ++i) {
    auto c = client();
    ASSERT_NE(c, nullptr);
    auto r = c->request("GET", "/healthz");
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_TRUE(sawError(HttpServerError::kConnectionEvicted));
  EXPECT_FALSE(sawError(HttpServerError::kTooManyConnections));
  EXPECT_TRUE(flood.front()->closedByServer());  // the oldest went first
}

TEST_F(HttpServerTest, OnePeerHoldsNoMoreHandshakesThanItsLimit) {
  options_.maxHandshakesPerPeer = 4;
  start();
  auto flood = silentConnections(server_->port(), 12);
  ASSERT_EQ(flood.size(), 12U);
  ASSERT_TRUE(eventually([&] { return server_->openConnections() == 4; }));
  EXPECT_TRUE(flood.front()->closedByServer());
  EXPECT_TRUE(sawError(HttpServerError::kConnectionEvicted));
  // The same peer still gets a new connection through: it closes that peer's oldest handshake.
  auto c = client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, AtTheLimitTheConnectionIdleTheLongestMakesRoom) {
  options_.maxConnections = 2;
  start();
  auto oldest = client();
  ASSERT_EQ(oldest->request("GET", "/healthz").status, 200);
  auto newer = client();
  ASSERT_EQ(newer->request("GET", "/healthz").status, 200);
  auto third = client();
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->request("GET", "/healthz").status, 200);
  EXPECT_TRUE(oldest->closedByServer());
  EXPECT_EQ(newer->request("GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, AtTheLimitTheSlowestSenderMakesRoomWhenNoneIsIdle) {
  options_.maxConnections = 1;
  start();
  auto trickling = client();
  ASSERT_TRUE(trickling->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"));
  ASSERT_TRUE(eventually([&] { return server_->openConnections() == 1; }));
  auto c = client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
  EXPECT_TRUE(trickling->closedByServer());
}

TEST_F(HttpServerTest, AnAsyncHandlerAnswersLaterWhileTheIoThreadServesOthers) {
  // One I/O thread: a handler that held it would stop /healthz too.
  options_.threads = 1;
  std::promise<HttpResponder> handedOff;
  routes_.addAsync("POST", "/later", [&](HttpRequest&& r, HttpResponder respond) {
    EXPECT_EQ(r.header("content-type"), "text/plain");
    EXPECT_EQ(r.body, "question");
    handedOff.set_value(std::move(respond));
  });
  start();
  auto asking = client();
  auto answer = std::async(std::launch::async, [&] {
    return asking->request("POST", "/later", "question", "text/plain");
  });
  HttpResponder respond = handedOff.get_future().get();
  auto other = client();
  EXPECT_EQ(other->request("GET", "/healthz").status, 200);  // served meanwhile
  std::thread([respond] {
    HttpResponse out;
    out.body = "answer";
    respond(out);
    respond(HttpResponse{});  // a second answer is ignored
  }).join();
  const testing::TestResponse r = answer.get();
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.body, "answer");
  EXPECT_TRUE(r.keepAlive);
  EXPECT_EQ(asking->request("GET", "/healthz").status, 200);  // the connection goes on
}

TEST_F(HttpServerTest, AnAsyncHandlerThatDropsItsRequestIsAnswered500) {
  routes_.addAsync("POST", "/lost", [](HttpRequest&&, HttpResponder) {});
  start();
  auto c = client();
  auto r = c->request("POST", "/lost", "{}");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 500);
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
}

TEST_F(HttpServerTest, PlainHttpWithoutTls) {
  options_.tls.reset();
  start();
  TestClientOptions plain;
  auto c = TestClient::connect(server_->port(), plain);
  ASSERT_NE(c, nullptr);
  auto r = c->request("GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain");
}

TEST_F(HttpServerTest, HandlersReadRequestHeadersAndAddResponseHeaders) {
  routes_.add("POST", "/headers", [](const HttpRequest& r) {
    HttpResponse out;
    out.body = std::string(r.header("CONTENT-type")) + "|" + std::string(r.header("x-absent"));
    out.headers = {{"X-Request-Length", std::to_string(r.body.size())},
                   {"Content-Length", "999"},  // the server's own, not the handler's
                   {"connection", "close"},
                   {"Transfer-Encoding", "chunked"},
                   {"X-Injected", "a\r\nSet-Cookie: stolen=1"}};  // a line break: left out
    return out;
  });
  routes_.add("DELETE", "/nothing", [](const HttpRequest&) {
    HttpResponse out;
    out.status = 204;
    out.body = "ignored";  // a 204 has no body
    return out;
  });
  start();
  auto c = client();
  auto r = c->request("POST", "/headers", "{}", "application/json; charset=utf-8");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.body, "application/json; charset=utf-8|");
  EXPECT_EQ(r.headers["x-request-length"], "2");
  EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
  EXPECT_EQ(r.headers.count("transfer-encoding"), 0U);
  EXPECT_EQ(r.headers.count("x-injected"), 0U);
  EXPECT_EQ(r.headers.count("set-cookie"), 0U);
  EXPECT_TRUE(r.keepAlive);
  auto empty = c->request("DELETE", "/nothing");
  ASSERT_TRUE(empty.ok) << empty.error;
  EXPECT_EQ(empty.status, 204);
  EXPECT_EQ(empty.headers.count("content-length"), 0U);
  EXPECT_EQ(empty.body, "");
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);  // still open, nothing left unread
}

TEST_F(HttpServerTest, Http10ClientsGetTheirOwnKeepAliveRules) {
  start();
  auto c = client();
  // HTTP/1.0 closes unless asked to keep the connection; HTTP/1.1 keeps it unless asked not to.
  auto kept = c->raw("GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  ASSERT_TRUE(kept.ok) << kept.error;
  EXPECT_EQ(kept.body, "ok");
  EXPECT_EQ(kept.headers["connection"], "keep-alive");
  auto closing = c->raw("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(closing.ok) << closing.error;
  EXPECT_EQ(closing.headers["connection"], "close");
  EXPECT_TRUE(c->closedByServer());
  auto c10 = client();
  auto once = c10->raw("GET /healthz HTTP/1.0\r\n\r\n");
  ASSERT_TRUE(once.ok) << once.error;
  EXPECT_EQ(once.headers.count("connection"), 0U);
  EXPECT_TRUE(c10->closedByServer());
}

TEST(OpenFileLimitTest, TheSoftLimitIsRaisedToTheHardLimit) {
  struct rlimit files {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  if (files.rlim_max == RLIM_INFINITY || files.rlim_max < 512) {
    GTEST_SKIP() << "needs a finite hard limit of at least 512 open files";
  }
  files.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &files), 0);
  EXPECT_EQ(raiseOpenFileLimit(), static_cast<size_t>(files.rlim_max));
  struct rlimit now {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &now), 0);
  EXPECT_EQ(now.rlim_cur, files.rlim_max);
}

}  // namespace
}  // namespace tasklease
