#pragma once
// tasklease-webhook's servers: HTTPS for POST /validate, POST /mutate, GET /healthz and
// GET /readyz, and plain HTTP for GET /metrics on a separate port (DESIGN.md §8). The
// admission logic is in AdmissionEndpoint; this wires it to the two HTTP servers and to the
// worker pools that judge reviews (docs/webhook.md, "Threads and budgets"): the HTTP server's
// I/O threads only read, route and write, and answer /healthz and /readyz themselves; pod and
// workload reviews are judged on `reviewWorkers` threads, those with a body over
// `largeReviewBytes` on a thread of their own, and AgentTask reviews, which wait on the API
// server, are finished on `agentTaskWorkers` threads. So a slow review cannot stop the health
// endpoints, and AgentTasks cannot hold up pod reviews.
//
//   WebhookServerOptions opts;  // TLS files, ports, timeouts, review config
//   auto server = WebhookServer::start(opts, clusterState, &evidenceChain);
//   ... on SIGTERM: (*server)->shutdown(std::chrono::seconds(15));

#include <chrono>
#include <memory>

#include "common/evidence.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/worker_pool.h"
#include "webhook/cluster_state.h"
#include "webhook/endpoint.h"
#include "webhook/review.h"

namespace tasklease::webhook {

struct WebhookServerOptions {
  HttpServerOptions https;  // address, port, tls (required), limits and timeouts
  std::string metricsAddress = "0.0.0.0";
  uint16_t metricsPort = 8080;
  ReviewConfig review;
  ReviewLimits limits;  // the budget of each review (--review-budget)
  int reviewWorkers = 2;
  // Reviews with a larger body are judged on a thread of their own (their cost grows with
  // their size), so that a few large ones cannot hold up the many small ones.
  size_t largeReviewBytes = size_t{256} * 1024;
  int agentTaskWorkers = 8;
  size_t maxQueuedAgentTasks = 256;  // more waiting are refused (denied, not errors)
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
  // How many connections the HTTPS server keeps at once: HttpServerOptions::maxConnections, or
  // fewer when the process may open fewer files.
  size_t connectionLimit() const { return connectionLimit_; }
  // Answers what is in flight (up to grace), then stops both servers.
  void shutdown(std::chrono::milliseconds grace);

 private:
  WebhookServer() = default;

  // Routes a review to its pool (on an I/O thread).
  void dispatch(HttpRequest&& request, HttpResponder respond, bool mutating);
  void stopPools();

  // Open files kept for all but the HTTPS server's connections, and the metrics server's share.
  static constexpr size_t kFilesForTheRest = 256;
  static constexpr size_t kMetricsConnections = 64;

  MetricsRegistry metrics_;
  std::unique_ptr<AdmissionEndpoint> endpoint_;
  size_t largeReviewBytes_ = 0;
  size_t connectionLimit_ = 0;
  HttpServerPtr https_;
  HttpServerPtr metricsServer_;
  // Declared after the servers, so destroyed before them: a pool's tasks hold responders of the
  // HTTPS server's connections.
  std::unique_ptr<WorkerPool> reviews_;
  std::unique_ptr<WorkerPool> largeReviews_;
  std::unique_ptr<WorkerPool> agentTaskReviews_;
};

}  // namespace tasklease::webhook
