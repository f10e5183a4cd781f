#pragma once
// CertManager: the webhook's own serving certificate, for clusters without cert-manager. It
// keeps a CA and a serving certificate in one Secret, the CA bundle in the caBundle of the
// webhook's Validating- and MutatingWebhookConfigurations, and the certificate and key in files
// that the HTTPS server re-reads when they change (docs/install.md, "Certificates").
//
//   CertManager certs(apiClient, {.secret = {"tasklease-system", "tasklease-webhook-tls"},
//                                 .service = "tasklease-webhook",
//                                 .validatingConfigurations = {"tasklease"}, ...,
//                                 .certDir = "/run/tasklease/certs"});
//   auto first = certs.syncOnce();            // before the server starts: the files must exist
//   certs.start(std::chrono::seconds(30));     // then on a timer, on a thread of its own
//
// The Secret is the source of truth, so that any number of replicas agree: each pass reads it,
// creates it if absent (the replica that loses the race reads the winner's), renews what is due
// with an update that carries the resourceVersion (a conflict means another replica did it
// first: read again), and every replica serves what the Secret holds.
//
// Rotation never leaves the API server without the CA of a certificate that is being served:
// - the serving certificate is renewed at 2/3 of its life;
// - at 2/3 of the signing CA's life a next CA is generated and added to the bundle, but signs
//   nothing until it has been in the bundle for `caOverlap`; then it signs a new serving
//   certificate and the old CA stays in the bundle until it expires.
// The Secret is owned by the first ValidatingWebhookConfiguration, so uninstalling the chart
// removes it. Key material is never logged, only fingerprints.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/rfc3339.h"
#include "common/status.h"
#include "kube/api_client.h"

namespace tasklease::webhook {

struct CertManagerOptions {
  kube::ObjectKey secret{"tasklease-system", "tasklease-webhook-tls"};
  std::string service = "tasklease-webhook";  // in secret.ns: the names the certificate carries
  std::string clusterDomain = "cluster.local";
  std::vector<std::string> validatingConfigurations;  // whose caBundle is kept current
  std::vector<std::string> mutatingConfigurations;
  std::string certDir;  // tls.crt and tls.key are written here; empty: no files
  std::chrono::seconds caValidity{std::chrono::hours(24 * 365)};
  std::chrono::seconds certValidity{std::chrono::hours(24 * 90)};
  // How long a next CA is in the bundle before it signs: longer than it takes every API
  // server to see a changed webhook configuration.
  std::chrono::seconds caOverlap{std::chrono::hours(1)};
};

// Refuses options under which rotation could not keep its promise (names the field).
Status checkCertManagerOptions(const CertManagerOptions& options);

// <service>, <service>.<ns>, <service>.<ns>.svc, <service>.<ns>.svc.<clusterDomain>.
std::vector<std::string> servingDnsNames(const CertManagerOptions& options);

struct CertSyncResult {
  std::vector<std::string> changes;  // what this pass did to the Secret, e.g. "next CA staged"
  std::vector<std::string> patchedConfigurations;  // "ValidatingWebhookConfiguration/name"
  std::vector<std::string> missingConfigurations;
  bool filesWritten = false;
  std::string servingFingerprint;
  TimePoint servingNotAfter;
  TimePoint signingCaNotAfter;
  std::string bundlePem;  // what the caBundles now hold (certificates only)
};

class CertManager {
 public:
  CertManager(kube::ApiClient& client, CertManagerOptions options,
              std::function<TimePoint()> now = nullptr);
  ~CertManager();
  CertManager(const CertManager&) = delete;
  CertManager& operator=(const CertManager&) = delete;

  // One pass: the Secret, then the caBundles, then the files. An error says which step failed;
  // the steps before it took effect.
  StatusOr<CertSyncResult> syncOnce();

  // Registers tasklease_webhook_certificate_* gauges and counters on `registry` (which must
  // outlive this) and keeps them current from then on.
  void exportMetrics(MetricsRegistry& registry);

  // syncOnce() every `interval` on a thread of its own; after a failure sooner (1 s, doubling
  // up to `interval`). stop() (or the destructor) ends it.
  void start(std::chrono::milliseconds interval);
  void stop();

 private:
  struct Metrics;
  StatusOr<CertSyncResult> syncLocked();
  void record(const StatusOr<CertSyncResult>& result);

  kube::ApiClient& client_;
  const CertManagerOptions options_;
  const std::function<TimePoint()> now_;
  std::mutex syncMu_;  // one pass at a time (the timer thread and a caller)
  std::mutex metricsMu_;
  std::unique_ptr<Metrics> metrics_;  // guarded by metricsMu_
  std::jthread loop_;
};

}  // namespace tasklease::webhook
