#pragma once
// A blocking HTTP/1.1 client, plain or TLS, for the server tests: one connection, kept alive
// across requests, with a few ways to misbehave (raw bytes, half requests). Every operation
// waits at most `timeout` (an upper bound, never asserted on).

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace tasklease::testing {

struct TestResponse {
  bool ok = false;    // a response was read
  std::string error;  // why not
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  bool keepAlive = false;
};

struct TestClientOptions {
  std::string caPem;                   // empty: plain HTTP
  std::string hostname = "127.0.0.1";  // checked against the certificate
  int maxTlsVersion = 0;  // e.g. TLS1_1_VERSION to play an old client; 0: library default
  std::chrono::milliseconds timeout{5000};
};

class TestClient {
 public:
  // nullptr with *error set when the connection or handshake fails.
  static std::unique_ptr<TestClient> connect(uint16_t port, const TestClientOptions& options,
                                             std::string* error = nullptr);
  virtual ~TestClient() = default;

  virtual TestResponse request(const std::string& method, const std::string& target,
                               const std::string& body = "",
                               const std::string& contentType = "application/json") = 0;
  // Writes bytes as they are, then reads one response.
  virtual TestResponse raw(const std::string& bytes) = 0;
  // Writes bytes and returns without reading.
  virtual bool send(const std::string& bytes) = 0;
  // True when the server closes the connection within the timeout (anything it sends first is
  // read and dropped).
  virtual bool closedByServer() = 0;
  virtual std::string peerCommonName() = 0;
  virtual int tlsVersion() = 0;  // TLS1_2_VERSION, TLS1_3_VERSION, 0 for plain
};

}  // namespace tasklease::testing
