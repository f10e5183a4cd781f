#include "webhook/server.h"

#include <algorithm>

#include "common/log.h"

namespace tasklease::webhook {

StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::start(const WebhookServerOptions& options,
                                                              const ClusterState& state,
                                                              EvidenceChain* evidence, Clock clock,
                                                              const AgentTaskReviewer* agentTasks) {
  if (!options.https.tls) {
    return invalidArgument("the webhook serves only HTTPS: set the certificate and key files");
  }
  std::unique_ptr<WebhookServer> server(new WebhookServer());
  server->endpoint_ =
      std::make_unique<AdmissionEndpoint>(state, options.review, evidence, server->metrics_,
                                          std::move(clock), agentTasks, options.limits);
  AdmissionEndpoint* endpoint = server->endpoint_.get();
  HttpServerOptions https = options.https;
  // The HTTPS server must reach its connection limit, where it makes room for new connections,
  // before the process runs out of files, where nothing can get in (docs/webhook.md,
  // "Connection floods"). The rest of the process (API client, files, /metrics) keeps its own.
  const size_t files = raiseOpenFileLimit();
  const size_t room =
      files > 2 * kFilesForTheRest ? files - kFilesForTheRest : std::max<size_t>(files / 2, 1);
  if (room < https.maxConnections) {
    logWarn("connection limit lowered to fit the open-file limit",
            {{"maxConnections", room}, {"openFileLimit", files}});
    https.maxConnections = room;
  }
  server->connectionLimit_ = https.maxConnections;
  // A connection has at most one request in flight, so the connection limit bounds the queues.
  const size_t maxQueued = std::max<size_t>(https.maxConnections, 1);
  server->reviews_ = std::make_unique<WorkerPool>("tl-review", options.reviewWorkers, maxQueued);
  server->largeReviews_ = std::make_unique<WorkerPool>("tl-review-large", 1, maxQueued);
  server->agentTaskReviews_ = std::make_unique<WorkerPool>("tl-agenttask", options.agentTaskWorkers,
                                                           options.maxQueuedAgentTasks);
  server->largeReviewBytes_ = options.largeReviewBytes;
  WebhookServer* self = server.get();

  https.onError = [endpoint](HttpServerError e, const std::string& detail) {
    endpoint->countServerError(e);
    if (e == HttpServerError::kCertificateReload || e == HttpServerError::kHandlerFailed) {
      logError("https server", {{"error", httpServerErrorName(e)}, {"detail", detail}});
    } else {
      logDebug("https server", {{"error", httpServerErrorName(e)}, {"detail", detail}});
    }
  };
  https.onCertificateReload = [endpoint] {
    endpoint->countCertificateReload();
    logInfo("serving certificate reloaded");
  };
  HttpRoutes routes;
  routes.addAsync("POST", "/validate", [self](HttpRequest&& r, HttpResponder respond) {
    self->dispatch(std::move(r), std::move(respond), /*mutating=*/false);
  });
  routes.addAsync("POST", "/mutate", [self](HttpRequest&& r, HttpResponder respond) {
    self->dispatch(std::move(r), std::move(respond), /*mutating=*/true);
  });
  // Answered on the I/O threads, never behind a review.
  routes.add("GET", "/healthz", [endpoint](const HttpRequest&) { return endpoint->healthz(); });
  routes.add("GET", "/readyz", [endpoint](const HttpRequest&) { return endpoint->readyz(); });
  auto started = HttpServer::start(std::move(https), std::move(routes));
  if (!started.ok()) {
    server->stopPools();
    return started.status().annotate("starting the webhook's HTTPS server");
  }
  server->https_ = std::move(*started);

  HttpServerOptions plain;
  plain.address = options.metricsAddress;
  plain.port = options.metricsPort;
  plain.threads = 1;
  plain.maxConnections = kMetricsConnections;
  plain.onError = [endpoint](HttpServerError e, const std::string&) {
    endpoint->countServerError(e);
  };
  HttpRoutes metricsRoutes;
  metricsRoutes.add("GET", "/metrics",
                    [endpoint](const HttpRequest&) { return endpoint->metricsText(); });
  metricsRoutes.add("GET", "/healthz",
                    [endpoint](const HttpRequest&) { return endpoint->healthz(); });
  metricsRoutes.add("GET", "/readyz",
                    [endpoint](const HttpRequest&) { return endpoint->readyz(); });
  auto metricsStarted = HttpServer::start(std::move(plain), std::move(metricsRoutes));
  if (!metricsStarted.ok()) {
    server->https_->shutdown(std::chrono::milliseconds(0));
    server->stopPools();
    return metricsStarted.status().annotate("starting the metrics server");
  }
  server->metricsServer_ = std::move(*metricsStarted);
  return server;
}

WebhookServer::~WebhookServer() {
  shutdown(std::chrono::milliseconds(0));
}

uint16_t WebhookServer::port() const {
  return https_->port();
}
uint16_t WebhookServer::metricsPort() const {
  return metricsServer_->port();
}
uint64_t WebhookServer::certificateReloads() const {
  return https_->certificateReloads();
}

namespace {

// Runs a review on a worker: one that throws (out of memory on a large body, a defect) is
// answered 500 as the synchronous routes are, never left to end the process or go unanswered.
template <typename Work>
void answering(const HttpResponder& respond, Work&& work) noexcept {
  try {
    work();
  } catch (const std::exception& e) {
    logError("a review failed; answered 500", {{"error", e.what()}});
    respond(statusResponse(500, "InternalError", "internal error"));
  } catch (...) {
    logError("a review failed; answered 500");
    respond(statusResponse(500, "InternalError", "internal error"));
  }
}

}  // namespace

void WebhookServer::dispatch(HttpRequest&& request, HttpResponder respond, bool mutating) {
  const auto received = endpoint_->steadyNow();
  WorkerPool& pool = request.body.size() > largeReviewBytes_ ? *largeReviews_ : *reviews_;
  const bool queued =
      pool.trySubmit([this, request = std::move(request), respond, mutating, received] {
        answering(respond, [&] {
          ReviewStep step = endpoint_->begin(request, mutating, received);
          if (step.answer) return respond(std::move(*step.answer));
          if (!agentTaskReviews_->trySubmit([finish = std::move(step.finish), respond] {
                answering(respond, [&] { respond(finish()); });
              })) {
            respond(step.refuse());
          }
        });
      });
  // Rare: a queue holds as many requests as the server has connections, each with at most one
  // request in flight.
  if (!queued) respond(endpoint_->overloaded("reviews"));
}

void WebhookServer::stopPools() {
  // Reviews first: a running one may hand an AgentTask review to the last pool.
  for (auto* pool : {&reviews_, &largeReviews_, &agentTaskReviews_}) {
    if (*pool) (*pool)->stop();
  }
}

void WebhookServer::shutdown(std::chrono::milliseconds grace) {
  // The HTTPS server waits up to grace for the requests in flight, which the pools answer;
  // then the pools stop (what is still queued is dropped and its connection closed).
  if (https_) https_->shutdown(grace);
  stopPools();
  if (metricsServer_) metricsServer_->shutdown(std::chrono::milliseconds(0));
}

}  // namespace tasklease::webhook
