#include "webhook/server.h"

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
  server->endpoint_ = std::make_unique<AdmissionEndpoint>(
      state, options.review, evidence, server->metrics_, std::move(clock), agentTasks);
  AdmissionEndpoint* endpoint = server->endpoint_.get();

  HttpServerOptions https = options.https;
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
  routes.add("POST", "/validate",
             [endpoint](const HttpRequest& r) { return endpoint->validate(r); });
  routes.add("POST", "/mutate", [endpoint](const HttpRequest& r) { return endpoint->mutate(r); });
  routes.add("GET", "/healthz", [endpoint](const HttpRequest&) { return endpoint->healthz(); });
  routes.add("GET", "/readyz", [endpoint](const HttpRequest&) { return endpoint->readyz(); });
  auto started = HttpServer::start(std::move(https), std::move(routes));
  if (!started.ok()) return started.status().annotate("starting the webhook's HTTPS server");
  server->https_ = std::move(*started);

  HttpServerOptions plain;
  plain.address = options.metricsAddress;
  plain.port = options.metricsPort;
  plain.threads = 1;
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

void WebhookServer::shutdown(std::chrono::milliseconds grace) {
  if (https_) https_->shutdown(grace);
  if (metricsServer_) metricsServer_->shutdown(std::chrono::milliseconds(0));
}

}  // namespace tasklease::webhook
