// The libcurl HttpTransport. Each request runs on a pooled (easy, multi) pair: the multi
// handle keeps the pair's connections alive between requests, and lets a stop_token wake a
// blocked transfer at once (curl_multi_wakeup). DNS answers and TLS sessions are shared
// across the pool so new connections resume TLS sessions.

#include <curl/curl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <csignal>
#include <mutex>

#include "kube/errors.h"
#include "kube/http.h"

namespace tasklease::kube {

std::string HttpResponse::header(std::string_view name) const {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const auto it = headers.find(lower);
  return it == headers.end() ? std::string() : it->second;
}

namespace {

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    // With CURLOPT_NOSIGNAL (required with threads), a peer closing a TLS connection could
    // raise SIGPIPE and kill the process; the default action is never wanted in a server.
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      std::signal(SIGPIPE, SIG_IGN);
    }
  });
}

// Checks PEM material up front so a bad file is reported by name, not as a TLS failure later.
Status checkCertificates(const std::string& pem, const std::string& what) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_free(cert);
    ++count;
  }
  BIO_free(bio);
  if (count == 0) return invalidArgument(what + ": holds no PEM certificate");
  return {};
}

Status checkKeyPair(const std::string& certPem, const std::string& keyPem,
                    const std::string& source) {
  if (Status s = checkCertificates(certPem, "client certificate of " + source); !s.ok()) return s;
  BIO* certBio = BIO_new_mem_buf(certPem.data(), static_cast<int>(certPem.size()));
  X509* cert = PEM_read_bio_X509(certBio, nullptr, nullptr, nullptr);
  BIO_free(certBio);
  BIO* keyBio = BIO_new_mem_buf(keyPem.data(), static_cast<int>(keyPem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(keyBio, nullptr, nullptr, nullptr);
  BIO_free(keyBio);
  Status result;
  if (key == nullptr) {
    result = invalidArgument("client key of " + source + ": holds no PEM private key");
  } else if (X509_check_private_key(cert, key) != 1) {
    result = invalidArgument("client certificate and key of " + source + " do not match");
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  return result;
}

struct CurlUrlParts {
  std::string scheme, host, port, path;
};

StatusOr<CurlUrlParts> parseServer(const std::string& server, const std::string& source) {
  CURLU* u = curl_url();
  CurlUrlParts parts;
  const auto bad = [&](const char* why) {
    curl_url_cleanup(u);
    return invalidArgument("server \"" + server + "\" of " + source + ": " + why);
  };
  if (curl_url_set(u, CURLUPART_URL, server.c_str(), 0) != CURLUE_OK) {
    return bad("is not a URL");
  }
  const auto get = [&](CURLUPart part, unsigned flags, std::string& out) {
    char* value = nullptr;
    if (curl_url_get(u, part, &value, flags) != CURLUE_OK) return false;
    out = value;
    curl_free(value);
    return true;
  };
  if (!get(CURLUPART_SCHEME, 0, parts.scheme) || !get(CURLUPART_HOST, 0, parts.host) ||
      !get(CURLUPART_PORT, CURLU_DEFAULT_PORT, parts.port)) {
    return bad("needs a scheme and a host");
  }
  if (parts.scheme != "https" && parts.scheme != "http") return bad("scheme must be https");
  get(CURLUPART_PATH, 0, parts.path);
  while (!parts.path.empty() && parts.path.back() == '/') parts.path.pop_back();
  curl_url_cleanup(u);
  return parts;
}

// The state of one transfer, reached from libcurl's callbacks.
struct Transfer {
  CURL* easy = nullptr;
  HttpResponse response;
  const LineHandler* onLine = nullptr;  // set for streams
  bool lineMode = false;                // decided at the first body byte
  bool decided = false;
  bool handlerStopped = false;
  std::string partial;  // an incomplete line of a stream

  static size_t onHeader(char* data, size_t size, size_t nmemb, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * nmemb;
    std::string_view line(data, len);
    if (line.rfind("HTTP/", 0) == 0) {
      t->response.headers.clear();  // a new response (after 100 Continue or a redirect)
      return len;
    }
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    t->response.headers[name] = std::string(value);
    return len;
  }

  static size_t onBody(char* data, size_t size, size_t nmemb, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * nmemb;
    if (!t->decided) {
      long code = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
      t->lineMode = t->onLine != nullptr && code >= 200 && code < 300;
      t->decided = true;
    }
    if (!t->lineMode) {
      t->response.body.append(data, len);
      return len;
    }
    t->partial.append(data, len);
    size_t start = 0;
    while (true) {
      const size_t nl = t->partial.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(t->partial.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      start = nl + 1;
      if (!line.empty() && !(*t->onLine)(line)) {
        t->handlerStopped = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
      }
    }
    t->partial.erase(0, start);
    return len;
  }
};

class CurlTransport final : public HttpTransport {
 public:
  static StatusOr<HttpTransportPtr> create(const RestConfig& config) {
    globalInit();
    auto parts = parseServer(config.server, config.source);
    if (!parts.ok()) return parts.status();
    if (!config.caPem.empty()) {
      if (Status s = checkCertificates(config.caPem, "certificate authority of " + config.source);
          !s.ok()) {
        return s;
      }
    }
    if (!config.clientCertPem.empty() || !config.clientKeyPem.empty()) {
      if (Status s = checkKeyPair(config.clientCertPem, config.clientKeyPem, config.source);
          !s.ok()) {
        return s;
      }
    }
    return HttpTransportPtr(new CurlTransport(config, *parts));
  }

  ~CurlTransport() override {
    for (auto& s : idle_) destroySession(s);
    curl_share_cleanup(share_);
  }

  StatusOr<HttpResponse> send(const HttpRequest& request, const std::stop_token& stop) override {
    return perform(request, nullptr, stop);
  }

  StatusOr<HttpResponse> stream(const HttpRequest& request, const LineHandler& onLine,
                                const std::stop_token& stop) override {
    return perform(request, &onLine, stop);
  }

 private:
  struct Session {
    CURL* easy = nullptr;
    CURLM* multi = nullptr;
  };

  static constexpr size_t kMaxIdleSessions = 16;

  CurlTransport(const RestConfig& config, const CurlUrlParts& parts) : config_(config) {
    // With tls-server-name the URL carries that name (so SNI and certificate checks use it)
    // and CONNECT_TO sends the connection to the real host.
    const std::string urlHost = config.tlsServerName.empty() ? parts.host : config.tlsServerName;
    const bool ipv6 = urlHost.find(':') != std::string::npos;
    baseUrl_ = parts.scheme + "://" + (ipv6 ? "[" + urlHost + "]" : urlHost) + ":" + parts.port +
               parts.path;
    if (!config.tlsServerName.empty()) {
      const bool realIpv6 = parts.host.find(':') != std::string::npos;
      connectTo_ = config.tlsServerName + ":" + parts.port + ":" +
                   (realIpv6 ? "[" + parts.host + "]" : parts.host) + ":" + parts.port;
    }
    share_ = curl_share_init();
    curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &CurlTransport::lockShare);
    curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &CurlTransport::unlockShare);
    curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  }

  static void lockShare(CURL* /*handle*/, curl_lock_data data, curl_lock_access /*access*/,
                        void* user) {
    static_cast<CurlTransport*>(user)->shareLocks_[lockIndex(data)].lock();
  }
  static void unlockShare(CURL* /*handle*/, curl_lock_data data, void* user) {
    static_cast<CurlTransport*>(user)->shareLocks_[lockIndex(data)].unlock();
  }
  static size_t lockIndex(curl_lock_data data) {
    return std::min<size_t>(static_cast<size_t>(data), kShareLocks - 1);
  }

  Session acquireSession() {
    {
      std::lock_guard lock(poolMu_);
      if (!idle_.empty()) {
        Session s = idle_.back();
        idle_.pop_back();
        return s;
      }
    }
    return Session{curl_easy_init(), curl_multi_init()};
  }

  void releaseSession(Session s, bool healthy) {
    if (healthy) {
      std::lock_guard lock(poolMu_);
      if (idle_.size() < kMaxIdleSessions) {
        idle_.push_back(s);
        return;
      }
    }
    destroySession(s);
  }

  static void destroySession(Session& s) {
    if (s.multi != nullptr) curl_multi_cleanup(s.multi);
    if (s.easy != nullptr) curl_easy_cleanup(s.easy);
    s = {};
  }

  void configure(CURL* easy, const HttpRequest& request, Transfer& transfer, curl_slist* headers,
                 curl_slist* connectTo, char* errorBuffer) const {
    const std::string url = baseUrl_ + request.path;
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_SHARE, share_);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, errorBuffer);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(config_.connectTimeout.count()));
    if (request.timeout.count() > 0) {
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(request.timeout.count()));
    }
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_USERAGENT, config_.userAgent.c_str());
    curl_easy_setopt(easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    if (connectTo != nullptr) curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connectTo);
    if (!config_.proxyUrl.empty()) curl_easy_setopt(easy, CURLOPT_PROXY, config_.proxyUrl.c_str());

    // TLS: with a CA given, trust only it (not the system store too, which libcurl would add).
    if (config_.insecureSkipTlsVerify) {
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
      curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (!config_.caPem.empty()) {
      curl_blob ca{const_cast<char*>(config_.caPem.data()), config_.caPem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(easy, CURLOPT_CAINFO_BLOB, &ca);
      curl_easy_setopt(easy, CURLOPT_CAINFO, static_cast<char*>(nullptr));
      curl_easy_setopt(easy, CURLOPT_CAPATH, static_cast<char*>(nullptr));
    }
    const std::string& certPem =
        request.clientCertPem.empty() ? config_.clientCertPem : request.clientCertPem;
    const std::string& keyPem =
        request.clientCertPem.empty() ? config_.clientKeyPem : request.clientKeyPem;
    if (!certPem.empty()) {
      curl_blob cert{const_cast<char*>(certPem.data()), certPem.size(), CURL_BLOB_COPY};
      curl_blob key{const_cast<char*>(keyPem.data()), keyPem.size(), CURL_BLOB_COPY};
      curl_easy_setopt(easy, CURLOPT_SSLCERTTYPE, "PEM");
      curl_easy_setopt(easy, CURLOPT_SSLCERT_BLOB, &cert);
      curl_easy_setopt(easy, CURLOPT_SSLKEYTYPE, "PEM");
      curl_easy_setopt(easy, CURLOPT_SSLKEY_BLOB, &key);
    }

    if (request.method == "GET") {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
      if (!request.body.empty() || request.method != "DELETE") {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.data());
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         static_cast<curl_off_t>(request.body.size()));
      }
    }
    if (transfer.onLine == nullptr) curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Transfer::onHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &transfer);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::onBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &transfer);
  }

  Status failure(CURL* easy, CURLcode code, const char* errorBuffer) const {
    const std::string detail = errorBuffer[0] != '\0' ? errorBuffer : curl_easy_strerror(code);
    curl_off_t pretransfer = 0;
    curl_easy_getinfo(easy, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
    const std::string where = "talking to " + config_.server + ": ";
    if (code == CURLE_PEER_FAILED_VERIFICATION) {
      Status s(StatusCode::kUnavailable, where +
                                             "the server's certificate is not trusted: " + detail +
                                             "; check certificate-authority and "
                                             "tls-server-name");
      s.withReason("TLSVerificationFailed");
      return s;
    }
    Status s(
        code == CURLE_OPERATION_TIMEDOUT ? StatusCode::kDeadlineExceeded : StatusCode::kUnavailable,
        where + detail);
    if (pretransfer == 0) {
      s.withReason(std::string(kReasonConnectFailed));  // the request was never sent
    } else if (code == CURLE_OPERATION_TIMEDOUT) {
      s.withReason(std::string(kReasonTimeout));
    } else {
      s.withReason(std::string(kReasonConnectionLost));
    }
    return s;
  }

  StatusOr<HttpResponse> perform(const HttpRequest& request, const LineHandler* onLine,
                                 const std::stop_token& stop) {
    if (stop.stop_requested()) return cancelled(request.method + " " + request.path + ": stopped");
    Session session = acquireSession();
    if (session.easy == nullptr || session.multi == nullptr) {
      destroySession(session);
      return internalError("libcurl could not allocate a handle");
    }
    curl_easy_reset(session.easy);
    Transfer transfer;
    transfer.easy = session.easy;
    transfer.onLine = onLine;
    curl_slist* headers = nullptr;
    for (const auto& [k, v] : request.headers) {
      std::string line = k;
      line.append(": ").append(v);
      headers = curl_slist_append(headers, line.c_str());
    }
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
    curl_slist* connectTo = nullptr;
    if (!connectTo_.empty()) connectTo = curl_slist_append(nullptr, connectTo_.c_str());
    std::array<char, CURL_ERROR_SIZE> errorBuffer{};
    configure(session.easy, request, transfer, headers, connectTo, errorBuffer.data());

    curl_multi_add_handle(session.multi, session.easy);
    CURLcode result = CURLE_OK;
    bool finished = false;
    bool stopped = false;
    {
      CURLM* multi = session.multi;
      std::stop_callback wake(stop, [multi] { curl_multi_wakeup(multi); });
      while (!finished) {
        int running = 0;
        const CURLMcode mc = curl_multi_perform(session.multi, &running);
        if (mc != CURLM_OK) {
          result = CURLE_FAILED_INIT;
          break;
        }
        int queued = 0;
        while (CURLMsg* msg = curl_multi_info_read(session.multi, &queued)) {
          if (msg->msg == CURLMSG_DONE) {
            result = msg->data.result;
            finished = true;
          }
        }
        if (finished) break;
        if (stop.stop_requested()) {
          stopped = true;
          break;
        }
        curl_multi_poll(session.multi, nullptr, 0, 1000, nullptr);
      }
    }
    curl_multi_remove_handle(session.multi, session.easy);
    curl_slist_free_all(headers);
    curl_slist_free_all(connectTo);

    if (stopped) {
      // A half-read response leaves the connection unusable; drop this session.
      releaseSession(session, false);
      return cancelled(request.method + " " + request.path + ": stopped");
    }
    long code = 0;
    curl_easy_getinfo(session.easy, CURLINFO_RESPONSE_CODE, &code);
    transfer.response.code = static_cast<int>(code);
    if (transfer.handlerStopped) {
      releaseSession(session, false);
      return std::move(transfer.response);
    }
    if (result != CURLE_OK) {
      Status s = failure(session.easy, result, errorBuffer.data());
      releaseSession(session, false);
      return s;
    }
    if (transfer.lineMode && !transfer.partial.empty()) {
      // A final line without a newline.
      if (!(*onLine)(transfer.partial)) transfer.handlerStopped = true;
    }
    releaseSession(session, true);
    return std::move(transfer.response);
  }

  static constexpr size_t kShareLocks = 8;

  const RestConfig config_;
  std::string baseUrl_;
  std::string connectTo_;
  CURLSH* share_ = nullptr;
  std::array<std::mutex, kShareLocks> shareLocks_;  // guard share_'s data, by lock kind
  std::mutex poolMu_;
  std::vector<Session> idle_;  // guarded by poolMu_
};

}  // namespace

StatusOr<HttpTransportPtr> makeCurlTransport(const RestConfig& config) {
  return CurlTransport::create(config);
}

}  // namespace tasklease::kube
