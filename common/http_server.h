#pragma once
// A small HTTP/1.1 server, with or without TLS, for the webhook's admission endpoint and for
// every component's health and metrics endpoints. Handlers are plain functions from a request
// to a response; they run on the server's I/O threads and must not block for long. Work that
// can take longer goes to an asynchronous handler, which hands the request elsewhere (a
// WorkerPool) and answers later through its HttpResponder, from any thread: the I/O threads keep
// serving other connections and the quick routes (health) meanwhile.
//
//   HttpServerOptions opts;
//   opts.port = 8443;
//   opts.tls = TlsFiles{"tls.crt", "tls.key"};
//   HttpRoutes routes;
//   routes.add("GET", "/healthz", [](const HttpRequest&) { return ok(); });
//   routes.addAsync("POST", "/validate", [&](HttpRequest&& r, HttpResponder respond) {
//     pool.trySubmit([r = std::move(r), respond] { respond(review(r.body)); });
//   });
//   auto server = HttpServer::start(opts, std::move(routes));
//   ...
//   (*server)->shutdown(std::chrono::seconds(10));   // answers what is in flight, then stops
//
// What it guarantees (docs/webhook.md): TLS 1.2 or later; the certificate and key are
// re-read when their files change, for new connections, without touching open ones; bodies
// over the limit get 413, malformed HTTP gets 400, and both close the connection; a
// connection idle between requests, or too slow to deliver one, is closed; shutdown stops
// accepting, closes idle connections and lets requests in flight be answered. At the connection
// limit a new connection still gets in: the oldest connection still in its TLS handshake is
// closed for it, else the one idle the longest, else the one slowest to send its request; and
// one peer can hold only so many handshakes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tasklease {

struct HttpRequest {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', or empty
  // Name and value of each header as received: views into the request, valid while the
  // handler runs, or for an asynchronous handler until it answers (copy what must outlive
  // that). See header().
  std::vector<std::pair<std::string_view, std::string_view>> headers;
  std::string body;

  // The value of the first header with this name (compared without case), or "".
  std::string_view header(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string contentType = "application/json";
  std::string body;
  // More headers. The server writes Content-Type, Content-Length and Connection itself; those
  // names and Transfer-Encoding are ignored here, as is a header with a line break or NUL in it.
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

// Answers one request of an asynchronous handler, from any thread, once: later calls do
// nothing. Copies share the request; when the last copy goes without answering, the request is
// answered 500 (a handler that loses it must not leave the client waiting). Every responder must
// be answered or dropped before the server is destroyed (stop the pools that hold them first).
class HttpResponder {
 public:
  class Target {
   public:
    virtual ~Target() = default;
    virtual void answer(HttpResponse response) = 0;
  };
  HttpResponder() = default;
  explicit HttpResponder(std::shared_ptr<Target> target) : target_(std::move(target)) {}
  void operator()(HttpResponse response) const {
    if (target_) target_->answer(std::move(response));
  }

 private:
  std::shared_ptr<Target> target_;
};

// Runs on an I/O thread and must return at once, having handed the request on.
using AsyncHttpHandler = std::function<void(HttpRequest&& request, HttpResponder respond)>;

// A metav1.Status body ({"kind":"Status","status":"Failure","code":...,"reason":...,"message":...})
// with that HTTP status: what Kubernetes clients expect from an error.
HttpResponse statusResponse(int code, std::string reason, std::string message);

class HttpRoutes {
 public:
  struct Route {
    HttpHandler handler;            // answered on the I/O thread, or
    AsyncHttpHandler asyncHandler;  // handed on, answered later
  };
  void add(std::string method, std::string path, HttpHandler handler);
  void addAsync(std::string method, std::string path, AsyncHttpHandler handler);
  // nullptr when no route has this path; *pathKnown tells 404 from 405.
  const Route* find(std::string_view method, std::string_view path, bool* pathKnown) const;

 private:
  std::map<std::pair<std::string, std::string>, Route> routes_;
};

struct TlsFiles {
  std::string certFile;  // PEM chain, leaf first
  std::string keyFile;   // PEM private key
};

// Why a connection or request failed before reaching a handler: for metrics and logs.
enum class HttpServerError {
  kBodyTooLarge,        // answered 413
  kHeaderTooLarge,      // answered 431
  kMalformedRequest,    // answered 400
  kTimeout,             // closed
  kTlsHandshake,        // closed
  kTooManyConnections,  // closed at accept (every connection had a request being handled), or
                        // accept failed (out of open files): accepting pauses 50 ms
  kConnectionEvicted,   // closed to make room for a new one (in its handshake, idle, reading)
  kHandlerFailed,       // a handler threw: answered 500
  kCertificateReload,   // new files could not be loaded; the previous ones stay in use
};
const char* httpServerErrorName(HttpServerError e);

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  uint16_t port = 0;  // 0: any free port, see HttpServer::port()
  std::optional<TlsFiles> tls;
  std::chrono::milliseconds certReloadInterval{10000};
  size_t bodyLimit = size_t{3} * 1024 * 1024;
  size_t headerLimit = size_t{16} * 1024;
  std::chrono::milliseconds handshakeTimeout{5000};
  std::chrono::milliseconds idleTimeout{90000};  // between requests on a kept-alive connection
  std::chrono::milliseconds readTimeout{10000};  // to receive a whole request once it started
  std::chrono::milliseconds writeTimeout{10000};
  // At this many connections a new one closes the oldest still in its TLS handshake, else the
  // one idle the longest between requests, else the one reading its request the longest; only
  // when every one has a request being handled or answered is the new one refused.
  size_t maxConnections = 4096;
  // A peer (source address) with this many connections in their TLS handshake has its oldest
  // one closed for each new one: a flood from one address takes only these slots.
  size_t maxHandshakesPerPeer = 128;
  int threads = 2;
  std::function<void(HttpServerError, const std::string& detail)> onError;
  std::function<void()> onCertificateReload;
};

class HttpServer {
 public:
  // Binds, loads the certificate (errors name the file), and starts serving.
  static StatusOr<std::unique_ptr<HttpServer>> start(HttpServerOptions options, HttpRoutes routes);

  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, closes idle connections, waits up to `grace` for requests in flight to be
  // answered, then closes everything. Idempotent.
  virtual void shutdown(std::chrono::milliseconds grace) = 0;
  // Successful certificate reloads so far.
  virtual uint64_t certificateReloads() const = 0;
  virtual size_t openConnections() const = 0;
};
using HttpServerPtr = std::unique_ptr<HttpServer>;

// Raises this process's soft limit on open files to its hard limit, as Go programs do at start,
// and returns the soft limit then in force. A server must reach its own connection limit, where
// it makes room (HttpServerOptions::maxConnections), before the process runs out of files:
// then accept fails and no new connection can get in at all.
size_t raiseOpenFileLimit();

}  // namespace tasklease
