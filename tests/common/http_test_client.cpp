#include "tests/common/http_test_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "tests/common/tls_test_pki.h"

namespace tasklease::testing {
namespace {

TestResponse failure(std::string why) {
  TestResponse r;
  r.error = std::move(why);
  return r;
}

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

template <class Stream>
class ClientImpl : public TestClient {
 public:
  ClientImpl(std::unique_ptr<net::io_context> ioc, std::unique_ptr<ssl::context> ctx,
             std::unique_ptr<Stream> stream, std::chrono::milliseconds timeout)
      : ioc_(std::move(ioc)), ctx_(std::move(ctx)), stream_(std::move(stream)), timeout_(timeout) {}

  TestResponse request(const std::string& method, const std::string& target,
                       const std::string& body, const std::string& contentType) override {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, contentType);
    req.body() = body;
    req.keep_alive(true);
    req.prepare_payload();
    beast::error_code ec;
    lowest().expires_after(timeout_);
    http::write(*stream_, req, ec);
    if (ec) return failure("write: " + ec.message());
    return read();
  }

  TestResponse raw(const std::string& bytes) override {
    if (!send(bytes)) return failure("write failed");
    return read();
  }

  bool send(const std::string& bytes) override {
    beast::error_code ec;
    lowest().expires_after(timeout_);
    net::write(*stream_, net::buffer(bytes), ec);
    return !ec;
  }

  bool closedByServer() override {
    // Whatever the server still sends (a TLS alert, say) is read past until the connection ends.
    beast::error_code ec;
    char buf[512];
    lowest().expires_after(timeout_);
    while (!ec) stream_->read_some(net::buffer(buf), ec);
    return ec != beast::error::timeout;
  }

  std::string peerCommonName() override {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      return "";
    } else {
      X509* cert = SSL_get1_peer_certificate(stream_->native_handle());
      if (cert == nullptr) return "";
      std::string cn = commonNameOf(cert);
      X509_free(cert);
      return cn;
    }
  }

  int tlsVersion() override {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      return 0;
    } else {
      return SSL_version(stream_->native_handle());
    }
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(*stream_); }

  TestResponse read() {
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    beast::error_code ec;
    lowest().expires_after(timeout_);
    http::read(*stream_, buffer_, parser, ec);
    if (ec) return failure("read: " + ec.message());
    auto res = parser.release();
    TestResponse out;
    out.ok = true;
    out.status = static_cast<int>(res.result_int());
    out.body = res.body();
    out.keepAlive = res.keep_alive();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      out.headers[name] = std::string(f.value());
    }
    return out;
  }

  std::unique_ptr<net::io_context> ioc_;
  std::unique_ptr<ssl::context> ctx_;
  std::unique_ptr<Stream> stream_;
  std::chrono::milliseconds timeout_;
  beast::flat_buffer buffer_;
};

}  // namespace

std::unique_ptr<TestClient> TestClient::connect(uint16_t port, const TestClientOptions& options,
                                                std::string* error) {
  auto ioc = std::make_unique<net::io_context>();
  beast::error_code ec;
  tcp::endpoint endpoint(net::ip::make_address("127.0.0.1"), port);
  auto fail = [&](const std::string& why) -> std::unique_ptr<TestClient> {
    if (error != nullptr) *error = why;
    return nullptr;
  };
  if (options.caPem.empty()) {
    auto stream = std::make_unique<beast::tcp_stream>(*ioc);
    stream->expires_after(options.timeout);
    stream->connect(endpoint, ec);
    if (ec) return fail("connect: " + ec.message());
    return std::make_unique<ClientImpl<beast::tcp_stream>>(std::move(ioc), nullptr,
                                                           std::move(stream), options.timeout);
  }
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  ctx->add_certificate_authority(net::buffer(options.caPem), ec);
  if (ec) return fail("CA: " + ec.message());
  ctx->set_verify_mode(ssl::verify_peer);
  if (options.maxTlsVersion != 0) {
    // An old client: allow the old protocol at all, then cap at it.
    SSL_CTX_set_security_level(ctx->native_handle(), 0);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), 0);
    SSL_CTX_set_max_proto_version(ctx->native_handle(), options.maxTlsVersion);
    SSL_CTX_set_cipher_list(ctx->native_handle(), "DEFAULT:@SECLEVEL=0");
  }
  using Stream = beast::ssl_stream<beast::tcp_stream>;
  auto stream = std::make_unique<Stream>(*ioc, *ctx);
  X509_VERIFY_PARAM* param = SSL_get0_param(stream->native_handle());
  if (X509_VERIFY_PARAM_set1_ip_asc(param, options.hostname.c_str()) != 1) {
    X509_VERIFY_PARAM_set1_host(param, options.hostname.c_str(), 0);
  }
  beast::get_lowest_layer(*stream).expires_after(options.timeout);
  beast::get_lowest_layer(*stream).connect(endpoint, ec);
  if (ec) return fail("connect: " + ec.message());
  stream->handshake(ssl::stream_base::client, ec);
  if (ec) return fail("handshake: " + ec.message());
  return std::make_unique<ClientImpl<Stream>>(std::move(ioc), std::move(ctx), std::move(stream),
                                              options.timeout);
}

}  // namespace tasklease::testing
