#pragma once
// The webhook's HTTP endpoints without the HTTP server: /validate and /mutate (decode, review,
// record evidence and metrics, encode), /healthz, /readyz and /metrics. The server (server.h)
// routes requests here, from its worker pools; tests call it directly.
//
//   AdmissionEndpoint endpoint(state, ReviewConfig{}, &chain, registry, nullptr, &agentTasks);
//   HttpResponse r = endpoint.validate(request);           // all of it, on this thread
//
//   ReviewStep step = endpoint.begin(request, false, receivedAt);   // on a review worker
//   if (step.answer) respond(*step.answer);
//   else agentTaskPool.trySubmit([finish = step.finish] { respond(finish()); });
//
// Every review runs under a budget (ReviewLimits, --review-budget) counted from when its request
// was read: a review that spends it is stopped and refused, and one that waited that long for a
// worker is refused unjudged, each with a message that says why and what to do, so that the API
// server gets an answer before its timeout (docs/webhook.md, "Threads and budgets").

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>

#include "common/evidence.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "webhook/agenttask_review.h"
#include "webhook/cluster_state.h"
#include "webhook/review.h"
#include "webhook/review_meter.h"

namespace tasklease::webhook {

struct ReviewLimits {
  // From when a request was read to its answer, waits for a worker included. An AgentTask
  // validation's waits for its SubjectAccessReviews do not count (they have their own deadline).
  std::chrono::milliseconds budget{2000};
  ReviewMeter::SteadyNow steadyNow;  // null: the steady clock (tests pass their own)
};

// What a review worker made of a request: its answer, or, for an AgentTask's validation (which
// waits on the API server), the rest of the review to run elsewhere.
struct ReviewStep {
  std::optional<HttpResponse> answer;
  // Set when answer is not: the rest of the review, for an AgentTask worker; and the answer
  // when none can take it (too many wait), a refusal.
  std::function<HttpResponse()> finish;
  std::function<HttpResponse()> refuse;
};

class AdmissionEndpoint {
 public:
  // state, evidence (may be null: no evidence), metrics and agentTasks must outlive the
  // endpoint. Without agentTasks (no signing key), AgentTasks are refused.
  AdmissionEndpoint(const ClusterState& state, ReviewConfig config, EvidenceChain* evidence,
                    MetricsRegistry& metrics, Clock clock = nullptr,
                    const AgentTaskReviewer* agentTasks = nullptr, ReviewLimits limits = {});

  // POST /validate: 200 with an AdmissionReview response; 400 (metav1.Status) when the body is
  // not an admission.k8s.io/v1 AdmissionReview; 503 while the cluster state is not synced.
  HttpResponse validate(const HttpRequest& request);
  // POST /mutate: stamps AgentTask CREATEs (tasklease.io/requested-by); other requests pass
  // unchanged. 400 as /validate.
  HttpResponse mutate(const HttpRequest& request);
  // validate() or mutate() in two steps, for the server: decode and, for everything but an
  // AgentTask's validation, review and answer; an AgentTask's validation is left in `finish`.
  // received: when the request was read, where its budget starts.
  ReviewStep begin(const HttpRequest& request, bool mutating,
                   ReviewMeter::SteadyClock::time_point received);
  // The answer to a request that could not be given to a worker (the queue is full): a
  // metav1.Status 429, which the API server handles by the webhook's failurePolicy.
  HttpResponse overloaded(const char* what);
  ReviewMeter::SteadyClock::time_point steadyNow() const;
  HttpResponse healthz() const;
  // 200 once the cluster state is synced, 503 before.
  HttpResponse readyz() const;
  HttpResponse metricsText();

  // Counts errors the HTTP layer saw (413s, timeouts, handshakes, ...).
  void countServerError(HttpServerError error);
  void countCertificateReload();

 private:
  HttpResponse answer(const HttpRequest& request, bool mutating);
  // Runs review() under the budget that ends at deadline; a spent budget refuses the request.
  ReviewOutcome judge(const AdmissionRequest& request, size_t bytes,
                      ReviewMeter::SteadyClock::time_point deadline,
                      const std::function<ReviewOutcome()>& review) const;
  // A refusal when the request waited its whole budget for `worker` since it was received.
  std::optional<ReviewOutcome> refusalIfWaitedItsBudget(
      const AdmissionRequest& request, ReviewMeter::SteadyClock::time_point received,
      const char* worker);
  // AgentTasks cannot be checked without a signing key: refused, so nothing slips through.
  ReviewOutcome noAgentTaskReviewer(const AdmissionRequest& request) const;
  // Evidence, metrics and the encoded answer of a finished review.
  HttpResponse complete(const AdmissionRequest& request, ReviewOutcome& outcome,
                        std::chrono::steady_clock::time_point started);
  void record(const AdmissionRequest& request, const ReviewOutcome& outcome, double seconds);
  void writeEvidence(std::vector<EvidenceEvent>& events, const std::string& uid);

  const ClusterState& state_;
  const ReviewConfig config_;
  EvidenceChain* evidence_;
  MetricsRegistry& metrics_;
  Clock clock_;
  const AgentTaskReviewer* agentTasks_;
  const ReviewLimits limits_;

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
  static constexpr size_t kKindLabels = 11, kDecisions = 8, kModes = 4;
  std::array<std::atomic<Counter*>, kKindLabels * kDecisions * kModes> reviewCounters_{};
  Counter& reviewCounter(size_t kindIndex, const std::string& kind, Decision decision,
                         EnforcementMode mode);
};

}  // namespace tasklease::webhook
