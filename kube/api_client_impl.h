#pragma once
// ApiClientImpl: the ApiClient that talks to a real API server over an HttpTransport. It adds
// the client-side rate limit, authentication (with a credential refresh after a 401), retries
// with jittered backoff where a call is safe to repeat, and Status errors. The retry rules are
// in docs/kube-client.md.
//
//   auto cfg = loadConfig(kubeconfigFlag, "");
//   auto client = makeApiClient(*cfg);            // StatusOr<std::unique_ptr<ApiClientImpl>>
//   ApiClient& api = **client;

#include <atomic>
#include <memory>

#include "kube/api_client.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/credentials.h"
#include "kube/http.h"
#include "kube/rate_limiter.h"

namespace tasklease::kube {

class ApiClientImpl final : public ApiClient {
 public:
  ApiClientImpl(RestConfig config, HttpTransportPtr transport, CredentialProviderPtr credentials,
                Clock& clock = steadyClock());

  using ApiClient::create;
  using ApiClient::createSubresource;
  using ApiClient::get;
  using ApiClient::list;
  using ApiClient::patch;
  using ApiClient::remove;
  using ApiClient::removeCollection;
  using ApiClient::update;
  using ApiClient::updateStatus;

  StatusOr<Json> get(const ResourceRef& resource, const ObjectKey& key,
                     const CallOptions& call) override;
  StatusOr<Json> list(const ResourceRef& resource, const std::string& ns,
                      const ListOptions& options, const CallOptions& call) override;
  StatusOr<Json> create(const ResourceRef& resource, const Json& object,
                        const WriteOptions& options, const CallOptions& call) override;
  StatusOr<Json> update(const ResourceRef& resource, const Json& object,
                        const WriteOptions& options, const CallOptions& call) override;
  StatusOr<Json> updateStatus(const ResourceRef& resource, const Json& object,
                              const WriteOptions& options, const CallOptions& call) override;
  StatusOr<Json> patch(const ResourceRef& resource, const ObjectKey& key, const Json& patch,
                       const PatchOptions& options, const CallOptions& call) override;
  Status remove(const ResourceRef& resource, const ObjectKey& key, const DeleteOptions& options,
                const CallOptions& call) override;
  StatusOr<Json> removeCollection(const ResourceRef& resource, const std::string& ns,
                                  const ListOptions& selection, const DeleteOptions& options,
                                  const CallOptions& call) override;
  StatusOr<Json> createSubresource(const ResourceRef& resource, const ObjectKey& key,
                                   const std::string& subresource, const Json& body,
                                   const CallOptions& call) override;
  Status watch(const ResourceRef& resource, const std::string& ns, const WatchOptions& options,
               const WatchHandler& handler, const CallOptions& call) override;

  // Any path (discovery, /version, a test server's control endpoints), with the same
  // authentication, rate limit and error mapping. `retrySafe` says whether repeating the
  // request after an ambiguous failure is harmless. A null body sends none.
  StatusOr<Json> request(const std::string& method, const std::string& path, const Json* body,
                         bool retrySafe, const CallOptions& call);

  const RestConfig& config() const { return config_; }

 private:
  // Which failures a request may be repeated after.
  enum class Repeat {
    kAlways,          // idempotent: any retryable failure
    kIfNotProcessed,  // only 429 and failures before the request was sent
  };
  struct Request {
    std::string method;
    std::string path;
    const Json* body = nullptr;
    std::string contentType = "application/json";
    Repeat repeat = Repeat::kAlways;
  };
  struct Outcome {
    StatusOr<Json> result;
    bool ambiguous = false;  // an earlier attempt failed after the server may have acted
  };

  Outcome execute(const Request& request, const CallOptions& call);
  StatusOr<Json> write(const std::string& method, const ResourceRef& resource, const Json& object,
                       const std::string& subresource, const WriteOptions& options,
                       const CallOptions& call);
  uint64_t nextSeed() { return seedBase_ + seedCounter_.fetch_add(1); }

  const RestConfig config_;
  const HttpTransportPtr transport_;
  const CredentialProviderPtr credentials_;
  Clock& clock_;
  TokenBucket limiter_;
  const uint64_t seedBase_;
  std::atomic<uint64_t> seedCounter_{0};
};

// An ApiClientImpl over libcurl with the config's credentials.
StatusOr<std::unique_ptr<ApiClientImpl>> makeApiClient(const RestConfig& config);

}  // namespace tasklease::kube
