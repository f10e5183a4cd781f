#pragma once
// The webhook's HTTP endpoints without the HTTP server: /validate (decode, review, record
// evidence and metrics, encode), /healthz, /readyz and /metrics. The server (server.h) routes
// requests here; tests and the fuzzer call it directly.
//
//   AdmissionEndpoint endpoint(state, ReviewConfig{}, &chain, registry);
//   HttpResponse r = endpoint.validate(request);

#include <memory>

#include "common/evidence.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "webhook/cluster_state.h"
#include "webhook/review.h"

namespace tasklease::webhook {

class AdmissionEndpoint {
 public:
  // state, evidence (may be null: no evidence) and metrics must outlive the endpoint.
  AdmissionEndpoint(const ClusterState& state, ReviewConfig config, EvidenceChain* evidence,
                    MetricsRegistry& metrics, Clock clock = nullptr);

  // POST /validate: 200 with an AdmissionReview response; 400 (metav1.Status) when the body is
  // not an admission.k8s.io/v1 AdmissionReview; 503 while the cluster state is not synced.
  HttpResponse validate(const HttpRequest& request);
  HttpResponse healthz() const;
  // 200 once the cluster state is synced, 503 before.
  HttpResponse readyz() const;
  HttpResponse metricsText();

  // Counts errors the HTTP layer saw (413s, timeouts, handshakes, ...).
  void countServerError(HttpServerError error);
  void countCertificateReload();

 private:
  void record(const AdmissionRequest& request, const ReviewOutcome& outcome, double seconds);
  void writeEvidence(std::vector<EvidenceEvent>& events, const std::string& uid);

  const ClusterState& state_;
  const ReviewConfig config_;
  EvidenceChain* evidence_;
  MetricsRegistry& metrics_;
  Clock clock_;

  CounterFamily& reviews_;
  CounterFamily& violations_;
  HistogramFamily& latency_;
  CounterFamily& errors_;
  GaugeFamily& synced_;
  CounterFamily& reloads_;
  CounterFamily& evidenceRecords_;
};

}  // namespace tasklease::webhook
