#pragma once
// HttpTransport: one HTTP exchange with the API server, or one streamed response (watch), over
// a kept-alive, TLS-verified connection. ApiClientImpl puts Kubernetes semantics (paths,
// errors, retries, rate limits) on top; tests replace the transport with a scripted one.
//
//   auto transport = makeCurlTransport(config);
//   StatusOr<HttpResponse> r = (*transport)->send({"GET", "/version"}, stop);

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kube/config.h"

namespace tasklease::kube {

struct HttpRequest {
  std::string method;  // GET, POST, PUT, PATCH, DELETE
  std::string path;    // path and query, appended to RestConfig::server
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds timeout{0};  // whole exchange; zero: no limit (watch streams)
  // A client certificate for this request (from an exec plugin); empty: the config's.
  std::string clientCertPem;
  std::string clientKeyPem;
};

struct HttpResponse {
  int code = 0;
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;

  // The header's value, or "" (name in any case).
  std::string header(std::string_view name) const;
};

// Receives each line of a streamed body, without its newline; returns false to stop reading.
using LineHandler = std::function<bool(std::string_view line)>;

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // One exchange. Any HTTP answer, 2xx or not, is a response. Failures below HTTP are a Status
  // whose reason is kReasonConnectFailed, kReasonConnectionLost or kReasonTimeout
  // (kube/errors.h); kCancelled when `stop` fired. Thread-safe.
  virtual StatusOr<HttpResponse> send(const HttpRequest& request, const std::stop_token& stop) = 0;

  // Like send(), but a 2xx body is delivered line by line to `onLine` as it arrives, and the
  // returned response's body is empty. Returns when the server ends the stream, when `onLine`
  // returns false, or with kCancelled as soon as `stop` fires, even while no data flows.
  virtual StatusOr<HttpResponse> stream(const HttpRequest& request, const LineHandler& onLine,
                                        const std::stop_token& stop) = 0;
};

using HttpTransportPtr = std::unique_ptr<HttpTransport>;

// The libcurl transport: TLS per the config (CA, client certificate and key from memory,
// tls-server-name, insecure-skip-tls-verify), HTTP/2 when the server offers it, connections kept
// and reused across calls and threads, proxy-url or HTTPS_PROXY/NO_PROXY, connect timeout.
// Fails when the server URL or the PEM material is unusable, naming which.
StatusOr<HttpTransportPtr> makeCurlTransport(const RestConfig& config);

}  // namespace tasklease::kube
