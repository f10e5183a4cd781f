#pragma once
// The webhook's HTTP endpoints without the HTTP server: /validate and /mutate (decode, review,
// record evidence and metrics, encode), /healthz, /readyz and /metrics. The server (server.h)
// routes requests here; tests and the fuzzer call it directly.
//
//   AdmissionEndpoint endpoint(state, ReviewConfig{}, &chain, registry, nullptr, &agentTasks);
//   HttpResponse r = endpoint.validate(request);

#include <array>
#include <atomic>
#include <memory>

#include "common/evidence.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "webhook/agenttask_review.h"
#include "webhook/cluster_state.h"
#include "webhook/review.h"

namespace tasklease::webhook {

class AdmissionEndpoint {
 public:
  // state, evidence (may be null: no evidence), metrics and agentTasks must outlive the
  // endpoint. Without agentTasks (no signing key), AgentTasks are refused.
  AdmissionEndpoint(const ClusterState& state, ReviewConfig config, EvidenceChain* evidence,
                    MetricsRegistry& metrics, Clock clock = nullptr,
                    const AgentTaskReviewer* agentTasks = nullptr);

  // POST /validate: 200 with an AdmissionReview response; 400 (metav1.Status) when the body is
  // not an admission.k8s.io/v1 AdmissionReview; 503 while the cluster state is not synced.
  HttpResponse validate(const HttpRequest& request);
  // POST /mutate: stamps AgentTask CREATEs (tasklease.io/requested-by); other requests pass
  // unchanged. 400 as /validate.
  HttpResponse mutate(const HttpRequest& request);
  HttpResponse healthz() const;
  // 200 once the cluster state is synced, 503 before.
  HttpResponse readyz() const;
  HttpResponse metricsText();

  // Counts errors the HTTP layer saw (413s, timeouts, handshakes, ...).
  void countServerError(HttpServerError error);
  void countCertificateReload();

 private:
  HttpResponse answer(const HttpRequest& request, bool mutating);
  // AgentTasks cannot be checked without a signing key: refused, so nothing slips through.
  ReviewOutcome noAgentTaskReviewer(const AdmissionRequest& request) const;
  void record(const AdmissionRequest& request, const ReviewOutcome& outcome, double seconds);
  void writeEvidence(std::vector<EvidenceEvent>& events, const std::string& uid);

  const ClusterState& state_;
  const ReviewConfig config_;
  EvidenceChain* evidence_;
  MetricsRegistry& metrics_;
  Clock clock_;
  const AgentTaskReviewer* agentTasks_;

  CounterFamily& reviews_;
  CounterFamily& violations_;
  HistogramFamily& latency_;
  CounterFamily& errors_;
  GaugeFamily& synced_;
  CounterFamily& reloads_;
  CounterFamily& evidenceRecords_;

  // The series each review touches, looked up once: Family::labels builds its key and takes a
  // lock, which every review paid for before. Indexed by kind label, decision and mode.
  Histogram& latencyAll_;
  static constexpr size_t kKindLabels = 11, kDecisions = 7, kModes = 4;
  std::array<std::atomic<Counter*>, kKindLabels * kDecisions * kModes> reviewCounters_{};
  Counter& reviewCounter(size_t kindIndex, const std::string& kind, Decision decision,
                         EnforcementMode mode);
};

}  // namespace tasklease::webhook
