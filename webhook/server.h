#pragma once
// tasklease-webhook's servers: HTTPS for POST /validate, POST /mutate, GET /healthz and
// GET /readyz, and plain HTTP for GET /metrics on a separate port (DESIGN.md §8). The
// admission logic is in AdmissionEndpoint; this only wires it to the two HTTP servers.
//
//   WebhookServerOptions opts;  // TLS files, ports, timeouts, review config
//   auto server = WebhookServer::start(opts, clusterState, &evidenceChain);
//   ... on SIGTERM: (*server)->shutdown(std::chrono::seconds(15));

#include <chrono>
#include <memory>

#include "common/evidence.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "webhook/cluster_state.h"
#include "webhook/endpoint.h"
#include "webhook/review.h"

namespace tasklease::webhook {

struct WebhookServerOptions {
  HttpServerOptions https;  // address, port, tls (required), limits and timeouts
  std::string metricsAddress = "0.0.0.0";
  uint16_t metricsPort = 8080;
  ReviewConfig review;
};

class WebhookServer {
 public:
  // state, evidence (may be null) and agentTasks (may be null: AgentTasks are refused) must
  // outlive the server.
  static StatusOr<std::unique_ptr<WebhookServer>> start(
      const WebhookServerOptions& options, const ClusterState& state, EvidenceChain* evidence,
      Clock clock = nullptr, const AgentTaskReviewer* agentTasks = nullptr);
  ~WebhookServer();

  uint16_t port() const;
  uint16_t metricsPort() const;
  uint64_t certificateReloads() const;
  // The registry /metrics serves; other parts (the certificate manager) add their families.
  MetricsRegistry& metrics() { return metrics_; }
  // Answers what is in flight (up to grace), then stops both servers.
  void shutdown(std::chrono::milliseconds grace);

 private:
  WebhookServer() = default;

  MetricsRegistry metrics_;
  std::unique_ptr<AdmissionEndpoint> endpoint_;
  HttpServerPtr https_;
  HttpServerPtr metricsServer_;
};

}  // namespace tasklease::webhook
