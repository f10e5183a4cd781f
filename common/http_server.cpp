#include "common/http_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <cstdio>
#include <limits>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "common/json.h"

namespace tasklease {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using SslContextPtr = std::shared_ptr<ssl::context>;
// Each connection lives on one io_context (see HttpServerImpl), so its sockets and timers name
// that executor type rather than the type-erased any_io_executor: every asynchronous step of
// the TLS and HTTP layers copies, compares and tracks the executor, which through the erased
// type cost more than the review's own rules (measured with perf, docs/webhook.md).
using Executor = net::io_context::executor_type;
using Socket = net::basic_stream_socket<tcp, Executor>;
using TcpStream = beast::basic_stream<tcp, Executor>;

// After answering a request that was not read to its end (413, 400), the rest of what the
// client is still sending is read and dropped for a while before closing: closing a socket with
// unread input resets the connection and can destroy the answer in flight.
constexpr std::chrono::milliseconds kLingerTime{2000};
constexpr size_t kLingerBytes = size_t{16} * 1024 * 1024;
constexpr std::chrono::milliseconds kTlsShutdownTime{1000};
// The first read of a request asks for this much, so that a typical review (a few KiB to a few
// dozen) arrives in one read rather than in a chain of small ones, each an asynchronous round.
constexpr size_t kReadChunk = size_t{64} * 1024;
// A connection keeps its answer buffer between requests up to this size.
constexpr size_t kKeptResponseCapacity = size_t{64} * 1024;

std::string opensslErrors() {
  std::string out;
  unsigned long e = 0;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

StatusOr<SslContextPtr> loadTlsContext(const TlsFiles& files) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  beast::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use,
                   ec);
  SSL_CTX* native = ctx->native_handle();
  if (ec || SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return internalError("configuring TLS: " + opensslErrors());
  }
  SSL_CTX_set_options(
      native, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(native, files.certFile.c_str()) != 1) {
    return invalidArgument("loading TLS certificate chain from " + files.certFile + ": " +
                           opensslErrors());
  }
  if (SSL_CTX_use_PrivateKey_file(native, files.keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
    return invalidArgument("loading TLS private key from " + files.keyFile + ": " +
                           opensslErrors());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return invalidArgument("TLS private key " + files.keyFile + " does not match certificate " +
                           files.certFile);
  }
  return ctx;
}

// What identifies a file's content without reading it: Kubernetes updates mounted Secrets by
// swapping a symlink, which changes the inode; editors change size or mtime.
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  int64_t mtimeNs = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stampOf(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return {};
  return {true, st.st_dev, st.st_ino, st.st_size,
          static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

class SessionBase {
 public:
  // kReading: a request has started arriving; kBusy: it is being handled or answered.
  enum class Phase { kHandshake, kIdle, kReading, kBusy };

  virtual ~SessionBase() = default;
  virtual void beginShutdown() = 0;
  virtual void forceClose() = 0;
  virtual void evict() = 0;

  // Written by the session's thread, read by the acceptor when it looks for a connection to
  // close at the limit.
  std::atomic<Phase> phase{Phase::kHandshake};
  std::atomic<int64_t> phaseSinceNs{0};  // steady clock, when phase became kIdle or kReading

  // Guarded by SharedState::sessionsMu.
  std::string peer;                                                // the client's address
  std::optional<std::list<SessionBase*>::iterator> handshakeSlot;  // in SharedState::handshaking
};

int64_t steadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// What the listener and every session share. Sessions hold it by shared_ptr, so it outlives
// the last of them however the server is torn down.
struct SharedState {
  HttpServerOptions options;
  HttpRoutes routes;
  std::atomic<bool> shuttingDown{false};
  std::atomic<uint64_t> reloads{0};

  std::mutex ctxMu;
  SslContextPtr ctx;  // guarded by ctxMu: the context new connections get

  std::mutex sessionsMu;
  std::condition_variable sessionsGone;
  std::map<SessionBase*, std::weak_ptr<SessionBase>> sessions;  // guarded by sessionsMu
  // Connections in their TLS handshake, oldest first, and how many each peer has: at the
  // connection limit these are closed first (docs/webhook.md, "Connection floods").
  std::list<SessionBase*> handshaking;             // guarded by sessionsMu
  std::map<std::string, size_t> handshakesByPeer;  // guarded by sessionsMu

  void error(HttpServerError e, const std::string& detail) const {
    if (options.onError) options.onError(e, detail);
  }
  SslContextPtr currentContext() {
    std::lock_guard<std::mutex> lock(ctxMu);
    return ctx;
  }
  size_t sessionCount() {
    std::lock_guard<std::mutex> lock(sessionsMu);
    return sessions.size();
  }

  void enterHandshakeLocked(SessionBase* s) {
    s->handshakeSlot = handshaking.insert(handshaking.end(), s);
    ++handshakesByPeer[s->peer];
  }
  void leaveHandshakeLocked(SessionBase* s) {
    if (!s->handshakeSlot) return;
    handshaking.erase(*s->handshakeSlot);
    s->handshakeSlot.reset();
    auto count = handshakesByPeer.find(s->peer);
    if (count != handshakesByPeer.end() && --count->second == 0) handshakesByPeer.erase(count);
  }
  // The session is closed to make room: it no longer counts against the limits.
  std::shared_ptr<SessionBase> evictLocked(SessionBase* s) {
    auto found = sessions.find(s);
    std::shared_ptr<SessionBase> alive = found != sessions.end() ? found->second.lock() : nullptr;
    if (found != sessions.end()) sessions.erase(found);
    leaveHandshakeLocked(s);
    return alive;
  }
};
using SharedStatePtr = std::shared_ptr<SharedState>;

// The response as it goes on the wire, written into out (whose capacity a connection reuses):
// status line, Content-Type, the handler's headers, Content-Length, Connection when it differs
// from the version's default, and the body. Written directly rather than through Beast's
// serializer, which cost more than the review's own decoding (measured, docs/webhook.md).
void serialize(const HttpResponse& r, unsigned version, bool keepAlive, std::string& out) {
  // A line break or NUL in a header would let it write other headers: such headers are left out.
  const auto safe = [](std::string_view text) {
    return text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
  };
  out.clear();
  out += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(r.status);
  out += ' ';
  const auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
  out.append(reason.data(), reason.size());
  out += "\r\nContent-Type: ";
  out += safe(r.contentType) ? std::string_view(r.contentType) : "application/octet-stream";
  for (const auto& [name, value] : r.headers) {
    if (beast::iequals(name, "content-type") || beast::iequals(name, "content-length") ||
        beast::iequals(name, "connection") || beast::iequals(name, "transfer-encoding") ||
        !safe(name) || !safe(value)) {
      continue;
    }
    out += "\r\n";
    out += name;
    out += ": ";
    out += value;
  }
  // 1xx, 204 and 304 answers have no body, and no Content-Length (RFC 9110, 8.6).
  const bool bodyless = r.status < 200 || r.status == 204 || r.status == 304;
  if (!bodyless) {
    out += "\r\nContent-Length: ";
    out += std::to_string(r.body.size());
  }
  if (!keepAlive && version >= 11) out += "\r\nConnection: close";
  if (keepAlive && version < 11) out += "\r\nConnection: keep-alive";
  out += "\r\n\r\n";
  if (!bodyless) out += r.body;
}

template <class Stream>
class Session : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(SharedStatePtr shared, Stream stream, SslContextPtr ctx)
      : shared_(std::move(shared)), ctx_(std::move(ctx)), stream_(std::move(stream)) {}

  ~Session() override {
    std::lock_guard<std::mutex> lock(shared_->sessionsMu);
    shared_->sessions.erase(this);
    shared_->leaveHandshakeLocked(this);
    if (shared_->sessions.empty()) shared_->sessionsGone.notify_all();
  }

  void run(std::string peerAddress) {
    {
      std::lock_guard<std::mutex> lock(shared_->sessionsMu);
      peer = std::move(peerAddress);
      shared_->sessions[this] = this->shared_from_this();
      if constexpr (kTls) shared_->enterHandshakeLocked(this);
    }
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->start(); });
  }

  void beginShutdown() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (!self->busy_) self->lowest().close();
    });
  }

  void forceClose() override {
    net::post(stream_.get_executor(),
              [self = this->shared_from_this()] { self->lowest().close(); });
  }

  // Closed to make room: at once, unless a request arrived meanwhile and is being judged or
  // answered (the acceptor chose it idle or reading a moment ago); then after its answer, which
  // is never lost (with failurePolicy: Ignore a lost answer would admit the object unchecked).
  void evict() override {
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      if (self->phase.load(std::memory_order_relaxed) == Phase::kBusy) {
        self->closeAfterAnswer_ = true;
        return;
      }
      self->lowest().close();
    });
  }

 private:
  static constexpr bool kTls = !std::is_same_v<Stream, TcpStream>;

  TcpStream& lowest() { return beast::get_lowest_layer(stream_); }
  const HttpServerOptions& opts() const { return shared_->options; }

  void start() {
    if constexpr (kTls) {
      lowest().expires_after(opts().handshakeTimeout);
      stream_.async_handshake(
          ssl::stream_base::server,
          [self = this->shared_from_this()](beast::error_code ec) { self->onHandshake(ec); });
    } else {
      waitForRequest();
    }
  }

  void onHandshake(beast::error_code ec) {
    {
      std::lock_guard<std::mutex> lock(shared_->sessionsMu);
      shared_->leaveHandshakeLocked(this);
    }
    if (ec) {
      if (ec != net::error::operation_aborted) {
        shared_->error(HttpServerError::kTlsHandshake, ec.message());
      }
      return;  // the session ends; the socket closes with it
    }
    waitForRequest();
  }

  // Idle until the first byte of the next request, under the idle timeout; then the whole
  // request must arrive within the read timeout.
  void waitForRequest() {
    busy_ = false;
    if (shared_->shuttingDown) return closeNow();
    if (buffer_.size() > 0) return readRequest();
    phaseSinceNs.store(steadyNowNs(), std::memory_order_relaxed);
    phase.store(Phase::kIdle, std::memory_order_relaxed);
    lowest().expires_after(opts().idleTimeout);
    stream_.async_read_some(buffer_.prepare(kReadChunk),
                            [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                              self->onFirstBytes(ec, n);
                            });
  }

  void onFirstBytes(beast::error_code ec, size_t n) {
    if (ec) {
      if (ec == beast::error::timeout) shared_->error(HttpServerError::kTimeout, "idle connection");
      return closeNow();
    }
    buffer_.commit(n);
    readRequest();
  }

  void readRequest() {
    busy_ = true;
    phaseSinceNs.store(steadyNowNs(), std::memory_order_relaxed);
    phase.store(Phase::kReading, std::memory_order_relaxed);
    parser_.emplace();
    parser_->body_limit(opts().bodyLimit);
    parser_->header_limit(static_cast<std::uint32_t>(opts().headerLimit));
    lowest().expires_after(opts().readTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->onRead(ec); });
  }

  void onRead(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      shared_->error(HttpServerError::kBodyTooLarge, "");
      return respondAndClose(statusResponse(
          413, "RequestEntityTooLarge",
          "request body larger than " + std::to_string(opts().bodyLimit) + " bytes"));
    }
    if (ec == http::error::header_limit) {
      shared_->error(HttpServerError::kHeaderTooLarge, "");
      return respondAndClose(statusResponse(
          431, "RequestHeaderFieldsTooLarge",
          "request headers larger than " + std::to_string(opts().headerLimit) + " bytes"));
    }
    if (ec == beast::error::timeout) {
      shared_->error(HttpServerError::kTimeout, "request not received in time");
      return closeNow();
    }
    if (ec && ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message) {
      shared_->error(HttpServerError::kMalformedRequest, ec.message());
      return respondAndClose(
          statusResponse(400, "BadRequest", "malformed HTTP request: " + ec.message()));
    }
    if (ec) return closeNow();  // the client went away
    handle(parser_->release());
  }

  void handle(http::request<http::string_body> message) {
    phase.store(Phase::kBusy, std::memory_order_relaxed);
    // Kept by the session until answered: the headers below are views into it.
    request_ = std::move(message);
    http::request<http::string_body>& req = request_;
    HttpRequest r;
    r.method = std::string(req.method_string());
    std::string_view target(req.target().data(), req.target().size());
    size_t q = target.find('?');
    r.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) r.query = std::string(target.substr(q + 1));
    r.headers.reserve(8);
    for (const auto& f : req) {
      r.headers.emplace_back(std::string_view(f.name_string().data(), f.name_string().size()),
                             std::string_view(f.value().data(), f.value().size()));
    }
    r.body = std::move(req.body());
    bool pathKnown = false;
    const HttpRoutes::Route* route = shared_->routes.find(r.method, r.path, &pathKnown);
    if (route != nullptr && route->asyncHandler) {
      auto pending = std::make_shared<PendingAnswer>(this->shared_from_this());
      try {
        route->asyncHandler(std::move(r), HttpResponder(pending));
      } catch (const std::exception& e) {
        shared_->error(HttpServerError::kHandlerFailed, e.what());
        pending->answer(statusResponse(500, "InternalError", "internal error"));
      }
      return;
    }
    HttpResponse out;
    if (route == nullptr) {
      out = pathKnown
                ? statusResponse(405, "MethodNotAllowed", r.method + " is not allowed on " + r.path)
                : statusResponse(404, "NotFound", "no such path: " + r.path);
    } else {
      try {
        out = route->handler(r);
      } catch (const std::exception& e) {
        shared_->error(HttpServerError::kHandlerFailed, e.what());
        out = statusResponse(500, "InternalError", "internal error");
      }
    }
    const bool keepAlive = req.keep_alive() && !shared_->shuttingDown;
    const unsigned version = req.version();
    request_ = {};  // an idle connection keeps nothing of its last request
    write(out, version, !keepAlive, false);
  }

  // The answer of an asynchronous handler, given from any thread, written on the session's.
  class PendingAnswer final : public HttpResponder::Target {
   public:
    explicit PendingAnswer(std::shared_ptr<Session> session) : session_(std::move(session)) {}
    ~PendingAnswer() override {
      if (!answered_.load()) {
        answer(statusResponse(500, "InternalError", "internal error: the request was dropped"));
      }
    }
    void answer(HttpResponse response) override {
      if (answered_.exchange(true)) return;
      std::shared_ptr<Session> session = session_;
      net::post(session->stream_.get_executor(),
                [session, response = std::move(response)] { session->answerAsync(response); });
    }

   private:
    std::shared_ptr<Session> session_;
    std::atomic<bool> answered_{false};
  };

  void answerAsync(const HttpResponse& response) {
    const unsigned version = request_.version();
    const bool keepAlive = request_.keep_alive() && !shared_->shuttingDown;
    request_ = {};
    write(response, version, !keepAlive, false);
  }

  void respondAndClose(const HttpResponse& r) { write(r, 11, true, true); }

  void write(const HttpResponse& res, unsigned version, bool close, bool linger) {
    close = close || closeAfterAnswer_;
    serialize(res, version, !close, response_);
    lowest().expires_after(opts().writeTimeout);
    net::async_write(
        stream_, net::buffer(response_),
        [self = this->shared_from_this(), close, linger](beast::error_code ec, size_t) {
          if (self->response_.capacity() > kKeptResponseCapacity) {
            std::string().swap(self->response_);  // a large answer is not kept
          }
          if (ec) return self->closeNow();
          if (linger) return self->lingerThenClose();
          if (close) return self->closeGracefully();
          self->waitForRequest();
        });
  }

  void lingerThenClose() {
    if constexpr (!kTls) {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
    lowest().expires_after(kLingerTime);
    drain(0);
  }

  void drain(size_t drained) {
    if (drained > kLingerBytes) return closeNow();
    buffer_.consume(buffer_.size());
    stream_.async_read_some(buffer_.prepare(kReadChunk), [self = this->shared_from_this(), drained](
                                                             beast::error_code ec, size_t n) {
      if (ec) return self->closeNow();
      self->drain(drained + n);
    });
  }

  void closeGracefully() {
    if constexpr (kTls) {
      lowest().expires_after(kTlsShutdownTime);
      stream_.async_shutdown(
          [self = this->shared_from_this()](beast::error_code) { self->closeNow(); });
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      closeNow();
    }
  }

  void closeNow() {
    busy_ = false;
    lowest().close();
  }

  SharedStatePtr shared_;
  SslContextPtr ctx_;  // keeps the context this connection was accepted with
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;  // being handled: HttpRequest::headers view it
  std::string response_;  // the answer being written; its buffer is reused by the next one
  bool busy_ = false;     // a request has started arriving and is not answered yet
  bool closeAfterAnswer_ = false;  // evicted while its request was being handled
};

// One io_context per thread, each connection on one of them: a connection's handlers never
// cross threads, so nothing needs a strand or a lock on the hot path (measured: a shared
// io_context served fewer reviews with two threads than with one). The first context also
// runs the acceptor and the certificate-reload timer.
class HttpServerImpl : public HttpServer {
 public:
  HttpServerImpl(SharedStatePtr shared, int threads)
      : shared_(std::move(shared)),
        contexts_(makeContexts(threads)),
        acceptor_(*contexts_.front()),
        reloadTimer_(*contexts_.front()),
        acceptBackoff_(*contexts_.front()) {
    for (auto& c : contexts_) guards_.emplace_back(net::make_work_guard(*c));
  }

  ~HttpServerImpl() override { shutdown(std::chrono::milliseconds(0)); }

  Status listen() {
    beast::error_code ec;
    auto address = net::ip::make_address(shared_->options.address, ec);
    if (ec) return invalidArgument("bad listen address \"" + shared_->options.address + "\"");
    tcp::endpoint endpoint(address, shared_->options.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return unavailable("listening on " + shared_->options.address + ":" +
                         std::to_string(shared_->options.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint(ec).port();
    return {};
  }

  void startThreads() {
    accept();
    if (shared_->options.tls) {
      certStamps_ = {stampOf(shared_->options.tls->certFile),
                     stampOf(shared_->options.tls->keyFile)};
      scheduleReload();
    }
    for (auto& context : contexts_) {
      net::io_context* ioc = context.get();
      threads_.emplace_back([this, ioc] {
        // Handlers catch their own exceptions; this keeps the thread serving if anything
        // else escapes.
        for (;;) {
          try {
            ioc->run();
            return;
          } catch (const std::exception& e) {
            shared_->error(HttpServerError::kHandlerFailed, e.what());
          }
        }
      });
    }
  }

  uint16_t port() const override { return port_; }
  uint64_t certificateReloads() const override { return shared_->reloads.load(); }
  size_t openConnections() const override { return shared_->sessionCount(); }

  void shutdown(std::chrono::milliseconds grace) override {
    std::lock_guard<std::mutex> once(shutdownMu_);
    if (threads_.empty()) return;
    shared_->shuttingDown = true;
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
    net::post(reloadTimer_.get_executor(), [this] {
      reloadTimer_.cancel();
      acceptBackoff_.cancel();
    });
    for (auto& s : liveSessions()) s->beginShutdown();
    {
      std::unique_lock<std::mutex> lock(shared_->sessionsMu);
      shared_->sessionsGone.wait_for(lock, grace, [&] { return shared_->sessions.empty(); });
    }
    for (auto& s : liveSessions()) s->forceClose();
    // With the acceptor, the timer and every socket closed and the work guards gone, each
    // run() returns once its last handler has finished.
    for (auto& g : guards_) g.reset();
    for (auto& t : threads_) t.join();
    threads_.clear();
  }

 private:
  std::vector<std::shared_ptr<SessionBase>> liveSessions() {
    std::vector<std::shared_ptr<SessionBase>> out;
    std::lock_guard<std::mutex> lock(shared_->sessionsMu);
    for (auto& [ptr, weak] : shared_->sessions) {
      if (auto s = weak.lock()) out.push_back(std::move(s));
    }
    return out;
  }

  void accept() {
    net::io_context& next = *contexts_[nextContext_++ % contexts_.size()];
    acceptor_.async_accept(next, [this](beast::error_code ec, Socket socket) {
      if (ec == net::error::operation_aborted || !acceptor_.is_open()) return;
      if (!ec) {
        onAccept(std::move(socket));
        return accept();
      }
      // Out of open files (or buffers): accepting again at once would fail again at once, on
      // one core, for as long as it lasts. Pause briefly, while the connections close.
      shared_->error(HttpServerError::kTooManyConnections, "accept failed: " + ec.message());
      acceptBackoff_.expires_after(kAcceptBackoff);
      acceptBackoff_.async_wait([this](beast::error_code waited) {
        if (waited == net::error::operation_aborted || !acceptor_.is_open()) return;
        accept();
      });
    });
  }

  void onAccept(Socket socket) {
    if (shared_->shuttingDown) return;
    beast::error_code ec;
    const tcp::endpoint remote = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    std::string peer = remote.address().to_string();
    if (!makeRoomFor(peer)) {
      shared_->error(HttpServerError::kTooManyConnections, "");
      return;  // the socket closes as it goes out of scope
    }
    if (shared_->options.tls) {
      SslContextPtr ctx = shared_->currentContext();
      auto session = std::make_shared<Session<beast::ssl_stream<TcpStream>>>(
          shared_, beast::ssl_stream<TcpStream>(TcpStream(std::move(socket)), *ctx), ctx);
      session->run(std::move(peer));
    } else {
      auto session =
          std::make_shared<Session<TcpStream>>(shared_, TcpStream(std::move(socket)), nullptr);
      session->run(std::move(peer));
    }
  }

  // Keeps the server accepting under a flood of connections that never finish their handshake,
  // sit idle or trickle a request in: a peer at its handshake limit loses its oldest handshake;
  // at the connection limit the oldest handshake of anyone goes, else the connection idle the
  // longest, else the one that has been reading its request the longest. False when every
  // connection has a request being handled or answered: then the new one is refused.
  bool makeRoomFor(const std::string& peer) {
    std::shared_ptr<SessionBase> victim;
    const char* why = nullptr;
    {
      std::lock_guard<std::mutex> lock(shared_->sessionsMu);
      const HttpServerOptions& o = shared_->options;
      SessionBase* chosen = nullptr;
      if (o.tls) {
        auto count = shared_->handshakesByPeer.find(peer);
        if (count != shared_->handshakesByPeer.end() && count->second >= o.maxHandshakesPerPeer) {
          for (SessionBase* s : shared_->handshaking) {
            if (s->peer == peer) {
              chosen = s;
              why = "the peer's oldest TLS handshake, at its limit of handshakes in progress";
              break;
            }
          }
        }
      }
      if (chosen == nullptr && shared_->sessions.size() >= o.maxConnections) {
        if (!shared_->handshaking.empty()) {
          chosen = shared_->handshaking.front();
          why = "the oldest TLS handshake, at the connection limit";
        } else {
          chosen = longestInLocked(SessionBase::Phase::kIdle);
          why = "the connection idle the longest, at the connection limit";
          if (chosen == nullptr) {
            chosen = longestInLocked(SessionBase::Phase::kReading);
            why = "the connection reading its request the longest, at the connection limit";
          }
        }
        if (chosen == nullptr) return false;
      }
      if (chosen != nullptr) victim = shared_->evictLocked(chosen);
    }
    if (victim) {
      shared_->error(HttpServerError::kConnectionEvicted, std::string("closed ") + why);
      victim->evict();
    }
    return true;
  }

  // The session that has been in `phase` the longest, or null. A scan: it runs only at the
  // connection limit once no handshake is left to close.
  SessionBase* longestInLocked(SessionBase::Phase phase) {
    SessionBase* chosen = nullptr;
    int64_t oldest = 0;
    for (const auto& entry : shared_->sessions) {
      SessionBase* s = entry.first;
      if (s->phase.load(std::memory_order_relaxed) != phase) continue;
      const int64_t since = s->phaseSinceNs.load(std::memory_order_relaxed);
      if (chosen == nullptr || since < oldest) {
        chosen = s;
        oldest = since;
      }
    }
    return chosen;
  }

  void scheduleReload() {
    reloadTimer_.expires_after(shared_->options.certReloadInterval);
    reloadTimer_.async_wait([this](beast::error_code ec) {
      if (ec || shared_->shuttingDown) return;
      checkCertificate();
      scheduleReload();
    });
  }

  void checkCertificate() {
    const TlsFiles& files = *shared_->options.tls;
    std::pair<FileStamp, FileStamp> now{stampOf(files.certFile), stampOf(files.keyFile)};
    if (now == certStamps_) return;
    certStamps_ = now;
    StatusOr<SslContextPtr> ctx = loadTlsContext(files);
    if (!ctx.ok()) {
      // A half-written pair (new certificate, old key) fails here and is retried when the
      // other file changes; until then the previous pair stays in use.
      shared_->error(HttpServerError::kCertificateReload, ctx.status().message());
      return;
    }
    {
      std::lock_guard<std::mutex> lock(shared_->ctxMu);
      shared_->ctx = std::move(*ctx);
    }
    shared_->reloads.fetch_add(1);
    if (shared_->options.onCertificateReload) shared_->options.onCertificateReload();
  }

  SharedStatePtr shared_;
  static std::vector<std::unique_ptr<net::io_context>> makeContexts(int threads) {
    std::vector<std::unique_ptr<net::io_context>> out;
    for (int i = 0; i < std::max(1, threads); ++i)
      out.push_back(std::make_unique<net::io_context>(1));
    return out;
  }

  std::vector<std::unique_ptr<net::io_context>> contexts_;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards_;
  tcp::acceptor acceptor_;         // on contexts_[0]
  net::steady_timer reloadTimer_;  // on contexts_[0]
  net::steady_timer acceptBackoff_;  // on contexts_[0]: the pause after a failed accept
  static constexpr std::chrono::milliseconds kAcceptBackoff{50};
  size_t nextContext_ = 0;         // only touched by the accept handler
  std::pair<FileStamp, FileStamp> certStamps_;
  uint16_t port_ = 0;
  std::mutex shutdownMu_;
  std::vector<std::thread> threads_;  // guarded by shutdownMu_ after start
};

}  // namespace

HttpResponse statusResponse(int code, std::string reason, std::string message) {
  HttpResponse r;
  r.status = code;
  Json body = {{"kind", "Status"},
               {"apiVersion", "v1"},
               {"metadata", Json::object()},
               {"status", "Failure"},
               {"code", code},
               {"reason", std::move(reason)},
               {"message", std::move(message)}};
  r.body = body.dump(-1, ' ', false, Json::error_handler_t::replace);
  return r;
}

size_t raiseOpenFileLimit() {
  struct rlimit files {};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return 1024;  // the usual default
  if (files.rlim_cur < files.rlim_max) {
    const rlim_t soft = files.rlim_cur;
    files.rlim_cur = files.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &files) != 0) files.rlim_cur = soft;
  }
  if (files.rlim_cur == RLIM_INFINITY || files.rlim_cur > std::numeric_limits<size_t>::max()) {
    return std::numeric_limits<size_t>::max();
  }
  return static_cast<size_t>(files.rlim_cur);
}

void HttpRoutes::add(std::string method, std::string path, HttpHandler handler) {
  routes_[{std::move(method), std::move(path)}] = Route{std::move(handler), nullptr};
}

void HttpRoutes::addAsync(std::string method, std::string path, AsyncHttpHandler handler) {
  routes_[{std::move(method), std::move(path)}] = Route{nullptr, std::move(handler)};
}

const HttpRoutes::Route* HttpRoutes::find(std::string_view method, std::string_view path,
                                          bool* pathKnown) const {
  *pathKnown = false;
  for (const auto& [key, route] : routes_) {
    if (key.second != path) continue;
    *pathKnown = true;
    if (key.first == method) return &route;
  }
  return nullptr;
}

std::string_view HttpRequest::header(std::string_view name) const {
  const beast::string_view wanted(name.data(), name.size());  // Boost 1.74's own string_view
  for (const auto& [k, v] : headers) {
    if (beast::iequals(beast::string_view(k.data(), k.size()), wanted)) return v;
  }
  return {};
}

const char* httpServerErrorName(HttpServerError e) {
  switch (e) {
    case HttpServerError::kBodyTooLarge:
      return "body_too_large";
    case HttpServerError::kHeaderTooLarge:
      return "header_too_large";
    case HttpServerError::kMalformedRequest:
      return "malformed_request";
    case HttpServerError::kTimeout:
      return "timeout";
    case HttpServerError::kTlsHandshake:
      return "tls_handshake";
    case HttpServerError::kTooManyConnections:
      return "too_many_connections";
    case HttpServerError::kConnectionEvicted:
      return "connection_evicted";
    case HttpServerError::kHandlerFailed:
      return "handler_failed";
    case HttpServerError::kCertificateReload:
      return "certificate_reload";
  }
  return "unknown";
}

StatusOr<std::unique_ptr<HttpServer>> HttpServer::start(HttpServerOptions options,
                                                        HttpRoutes routes) {
  auto shared = std::make_shared<SharedState>();
  if (options.tls) {
    StatusOr<SslContextPtr> ctx = loadTlsContext(*options.tls);
    if (!ctx.ok()) return ctx.status();
    shared->ctx = std::move(*ctx);
  }
  int threads = options.threads;
  shared->options = std::move(options);
  shared->routes = std::move(routes);
  auto server = std::make_unique<HttpServerImpl>(shared, threads);
  Status s = server->listen();
  if (!s.ok()) return s;
  server->startThreads();
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace tasklease
