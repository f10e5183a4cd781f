#include "webhook/endpoint.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "common/log.h"
#include "webhook/agenttask.h"
#include "webhook/identity_exception.h"
#include "webhook/workload.h"

namespace tasklease::webhook {
namespace {

// A label value from outside input must not create unbounded series: kinds the webhook does
// not judge are all "other". *index numbers the label values (for reviewCounter).
std::string kindLabel(const std::string& kind, size_t* index = nullptr) {
  const auto& kinds = podBearingKinds();
  auto i = static_cast<size_t>(std::find(kinds.begin(), kinds.end(), kind) - kinds.begin());
  if (i == kinds.size()) {
    i = kind == kIdentityExceptionKind ? kinds.size()
        : kind == kAgentTaskKind       ? kinds.size() + 1
                                       : kinds.size() + 2;
  }
  if (index != nullptr) *index = i;
  return i < kinds.size() + 2 ? kind : "other";
}

HttpResponse textResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.contentType = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

}  // namespace

AdmissionEndpoint::AdmissionEndpoint(const ClusterState& state, ReviewConfig config,
                                     EvidenceChain* evidence, MetricsRegistry& metrics, Clock clock,
                                     const AgentTaskReviewer* agentTasks)
    : state_(state),
      config_(std::move(config)),
      evidence_(evidence),
      metrics_(metrics),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::system_clock::now(); })),
      agentTasks_(agentTasks),
      reviews_(metrics.counter("tasklease_webhook_reviews_total",
                               "Admission reviews answered, by object kind, decision and the "
                               "namespace's enforcement mode.",
                               {"kind", "decision", "mode"})),
      violations_(metrics.counter("tasklease_webhook_violations_total",
                                  "Rule violations found, by object kind, rule, decision and "
                                  "enforcement mode.",
                                  {"kind", "rule", "decision", "mode"})),
      latency_(metrics.histogram("tasklease_webhook_review_duration_seconds",
                                 "Time to decode, review and answer one AdmissionReview.")),
      errors_(metrics.counter("tasklease_webhook_errors_total",
                              "Requests or connections that failed, by type.", {"type"})),
      synced_(metrics.gauge("tasklease_webhook_cache_synced",
                            "1 when the cluster-state caches are synced, else 0.")),
      reloads_(metrics.counter("tasklease_webhook_certificate_reloads_total",
                               "Serving certificate reloads after the files changed.")),
      evidenceRecords_(metrics.counter("tasklease_webhook_evidence_records_total",
                                       "Evidence records written, by kind.", {"kind"})),
      latencyAll_(latency_.labels({})) {
  static_assert(static_cast<size_t>(Decision::kInvalid) + 1 == kDecisions);
  static_assert(static_cast<size_t>(EnforcementMode::kEnforce) + 1 == kModes);
  if (podBearingKinds().size() + 3 != kKindLabels) {
    std::abort();  // a kind was added without growing the counter table: a bug here
  }
}

Counter& AdmissionEndpoint::reviewCounter(size_t kindIndex, const std::string& kind,
                                          Decision decision, EnforcementMode mode) {
  std::atomic<Counter*>& slot =
      reviewCounters_[(kindIndex * kDecisions + static_cast<size_t>(decision)) * kModes +
                      static_cast<size_t>(mode)];
  Counter* c = slot.load(std::memory_order_acquire);
  if (c == nullptr) {
    // Two threads may both look it up; labels() returns the same series to both.
    c = &reviews_.labels({kind, decisionName(decision), enforcementModeName(mode)});
    slot.store(c, std::memory_order_release);
  }
  return *c;
}

HttpResponse AdmissionEndpoint::validate(const HttpRequest& request) {
  return answer(request, /*mutating=*/false);
}

HttpResponse AdmissionEndpoint::mutate(const HttpRequest& request) {
  return answer(request, /*mutating=*/true);
}

HttpResponse AdmissionEndpoint::answer(const HttpRequest& request, bool mutating) {
  auto started = std::chrono::steady_clock::now();
  if (!mutating && !state_.synced()) {
    errors_.labels({"not_ready"}).inc();
    return statusResponse(503, "ServiceUnavailable",
                          "tasklease-webhook: cluster state caches are not synced yet");
  }
  StatusOr<AdmissionRequest> decoded = decodeAdmissionReview(request.body);
  if (!decoded.ok()) {
    errors_.labels({"bad_review"}).inc();
    logWarn("bad admission review", {{"error", decoded.status().message()}});
    return statusResponse(400, "BadRequest", decoded.status().message());
  }
  ReviewOutcome outcome;
  if (isAgentTaskRequest(*decoded)) {
    if (agentTasks_ == nullptr) {
      outcome = noAgentTaskReviewer(*decoded);
    } else if (mutating) {
      outcome = agentTasks_->mutate(*decoded, clock_());
    } else {
      outcome = agentTasks_->validate(*decoded, clock_());
    }
  } else if (mutating) {
    outcome.kind = decoded->kind;
    outcome.response.uid = decoded->uid;  // nothing else is mutated
  } else {
    outcome = reviewAdmission(*decoded, state_, config_, clock_());
  }
  writeEvidence(outcome.evidence, decoded->uid);
  HttpResponse response;
  response.body = encodeAdmissionReview(outcome.response);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  record(*decoded, outcome, seconds);
  return response;
}

ReviewOutcome AdmissionEndpoint::noAgentTaskReviewer(const AdmissionRequest& request) const {
  ReviewOutcome out;
  out.kind = request.kind;
  out.mode = EnforcementMode::kEnforce;
  out.decision = Decision::kDenied;
  out.response.uid = request.uid;
  out.response.allowed = false;
  out.response.code = 503;
  out.response.reason = "ServiceUnavailable";
  out.response.message =
      "tasklease-webhook has no delegation signing key (it runs with --cluster-state-file, or "
      "without --namespace or $POD_NAMESPACE): it cannot stamp or check AgentTasks, so it "
      "refuses them";
  if (!request.dryRun) {
    out.evidence.push_back(
        {EvidenceKind::kRejected,
         {request.ns, request.name, ""},
         request.userInfo.username.empty() ? "unknown" : request.userInfo.username,
         {{"object", request.kind + "/" + request.name},
          {"operation", request.operation},
          {"request", request.uid},
          {"reason", "no-signing-key"}}});
  }
  return out;
}

void AdmissionEndpoint::record(const AdmissionRequest& request, const ReviewOutcome& outcome,
                               double seconds) {
  size_t kindIndex = 0;
  const std::string kind = kindLabel(outcome.kind, &kindIndex);
  const char* decision = decisionName(outcome.decision);
  const char* mode = enforcementModeName(outcome.mode);
  reviewCounter(kindIndex, kind, outcome.decision, outcome.mode).inc();
  for (RuleId rule : outcome.violatedRules) {
    violations_.labels({kind, std::string(ruleCode(rule)), decision, mode}).inc();
  }
  for (RuleId rule : outcome.exceptedRules) {
    violations_.labels({kind, std::string(ruleCode(rule)), "excepted", mode}).inc();
  }
  latencyAll_.observe(seconds);

  const bool quiet =
      outcome.decision == Decision::kAllowed || outcome.decision == Decision::kSkipped;
  const LogLevel level = quiet ? LogLevel::kDebug : LogLevel::kInfo;
  if (!logEnabled(level)) return;
  Json fields = {{"uid", request.uid},
                 {"kind", request.kind},
                 {"namespace", request.ns},
                 {"name", request.name},
                 {"operation", request.operation},
                 {"user", request.userInfo.username},
                 {"decision", decision},
                 {"mode", mode},
                 {"dryRun", request.dryRun}};
  if (!outcome.violatedRules.empty() || !outcome.exceptedRules.empty()) {
    Json rules = Json::array();
    for (RuleId r : outcome.violatedRules) rules.push_back(ruleCode(r));
    fields["rules"] = std::move(rules);
    Json excepted = Json::array();
    for (RuleId r : outcome.exceptedRules) excepted.push_back(ruleCode(r));
    fields["excepted"] = std::move(excepted);
  }
  // Messages hold field paths and names, never values; the log line holds only rule IDs.
  logAt(level, "admission review", fields);
}

void AdmissionEndpoint::writeEvidence(std::vector<EvidenceEvent>& events, const std::string& uid) {
  if (evidence_ == nullptr) return;
  for (EvidenceEvent& e : events) {
    const char* kind = evidenceKindName(e.kind);
    StatusOr<EvidenceRecord> written = evidence_->append(std::move(e));
    if (!written.ok()) {
      errors_.labels({"evidence_write"}).inc();
      logError("evidence record not written",
               {{"uid", uid}, {"kind", kind}, {"error", written.status().message()}});
      continue;
    }
    evidenceRecords_.labels({kind}).inc();
  }
}

HttpResponse AdmissionEndpoint::healthz() const {
  return textResponse(200, "ok");
}

HttpResponse AdmissionEndpoint::readyz() const {
  if (state_.synced()) return textResponse(200, "ok");
  return textResponse(503, "cluster state caches are not synced yet");
}

HttpResponse AdmissionEndpoint::metricsText() {
  synced_.labels({}).set(state_.synced() ? 1 : 0);
  HttpResponse r;
  r.contentType = "text/plain; version=0.0.4; charset=utf-8";
  r.body = metrics_.render();
  return r;
}

void AdmissionEndpoint::countServerError(HttpServerError error) {
  errors_.labels({httpServerErrorName(error)}).inc();
}

void AdmissionEndpoint::countCertificateReload() {
  reloads_.labels({}).inc();
}

}  // namespace tasklease::webhook
