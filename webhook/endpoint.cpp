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

// "2s", "1500ms": as the duration flags take them.
std::string durationText(std::chrono::milliseconds d) {
  return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + "s"
                               : std::to_string(d.count()) + "ms";
}

// "Pod team-a/web", as messages name the object under review.
std::string objectText(const AdmissionRequest& request) {
  std::string name = request.name;
  if (name.empty()) {
    name = std::string(request.objectView().member("metadata").member("name").string());
  }
  return request.kind + " " + (request.ns.empty() ? "" : request.ns + "/") +
         (name.empty() ? std::string("(name to be generated)") : name);
}

// A request refused for a reason other than its content's violations (no signing key, a spent
// budget, an overloaded webhook). Every denial leaves a `rejected` record saying why.
ReviewOutcome refusal(const AdmissionRequest& request, Decision decision, int code,
                      const char* reason, std::string message, const char* why) {
  ReviewOutcome out;
  out.kind = request.kind;
  out.mode = EnforcementMode::kEnforce;
  out.decision = decision;
  out.response.uid = request.uid;
  out.response.allowed = false;
  out.response.code = code;
  out.response.reason = reason;
  out.response.message = std::move(message);
  if (!request.dryRun) {
    out.evidence.push_back(
        {EvidenceKind::kRejected,
         {request.ns, request.name, ""},
         request.userInfo.username.empty() ? "unknown" : request.userInfo.username,
         {{"object", request.kind + "/" + request.name},
          {"operation", request.operation},
          {"request", request.uid},
          {"reason", why}}});
    if (decision == Decision::kRefused) {
      out.evidence.back().details["message"] = out.response.message;
    }
  }
  return out;
}

}  // namespace

AdmissionEndpoint::AdmissionEndpoint(const ClusterState& state, ReviewConfig config,
                                     EvidenceChain* evidence, MetricsRegistry& metrics, Clock clock,
                                     const AgentTaskReviewer* agentTasks, ReviewLimits limits)
    : state_(state),
      config_(std::move(config)),
      evidence_(evidence),
      metrics_(metrics),
      clock_(clock ? std::move(clock) : Clock([] { return std::chrono::system_clock::now(); })),
      agentTasks_(agentTasks),
      limits_(std::move(limits)),
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
  static_assert(static_cast<size_t>(Decision::kRefused) + 1 == kDecisions);
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
  ReviewStep step = begin(request, mutating, steadyNow());
  return step.answer ? std::move(*step.answer) : step.finish();
}

ReviewMeter::SteadyClock::time_point AdmissionEndpoint::steadyNow() const {
  return limits_.steadyNow ? limits_.steadyNow() : ReviewMeter::SteadyClock::now();
}

ReviewStep AdmissionEndpoint::begin(const HttpRequest& request, bool mutating,
                                    ReviewMeter::SteadyClock::time_point received) {
  const auto started = std::chrono::steady_clock::now();
  if (!mutating && !state_.synced()) {
    errors_.labels({"not_ready"}).inc();
    return {statusResponse(503, "ServiceUnavailable",
                           "tasklease-webhook: cluster state caches are not synced yet"),
            nullptr, nullptr};
  }
  StatusOr<AdmissionRequest> decoded = decodeAdmissionReview(request.body);
  if (!decoded.ok()) {
    errors_.labels({"bad_review"}).inc();
    logWarn("bad admission review", {{"error", decoded.status().message()}});
    return {statusResponse(400, "BadRequest", decoded.status().message()), nullptr, nullptr};
  }
  const size_t bytes = request.body.size();
  const bool agentTask = isAgentTaskRequest(*decoded);
  if (agentTask && agentTasks_ != nullptr && !mutating) {
    // Finished on the AgentTask pool: the validation of an AgentTask waits on the API server
    // (its SubjectAccessReviews), which must not hold up the review workers.
    auto req = std::make_shared<const AdmissionRequest>(std::move(*decoded));
    return {std::nullopt,
            [this, req, bytes, started, received] {
              std::optional<ReviewOutcome> outcome =
                  refusalIfWaitedItsBudget(*req, received, "an AgentTask worker");
              if (!outcome) {
                outcome = judge(*req, bytes, received + limits_.budget,
                                [&] { return agentTasks_->validate(*req, clock_()); });
              }
              return complete(*req, *outcome, started);
            },
            [this, req, started] {
              errors_.labels({"overloaded"}).inc();
              ReviewOutcome refused = refusal(
                  *req, Decision::kRefused, 429, "TooManyRequests",
                  "tasklease: " + objectText(*req) +
                      " was not judged: too many AgentTask validations are waiting for the API "
                      "server already; the webhook is overloaded. Try again",
                  "overloaded");
              return complete(*req, refused, started);
            }};
  }
  std::optional<ReviewOutcome> outcome;
  if (agentTask && agentTasks_ == nullptr) {
    outcome = noAgentTaskReviewer(*decoded);
  } else if (mutating && !agentTask) {
    outcome.emplace();
    outcome->kind = decoded->kind;
    outcome->response.uid = decoded->uid;  // nothing else is mutated
  } else {
    outcome = refusalIfWaitedItsBudget(*decoded, received, "a review worker");
  }
  if (!outcome) {
    // An AgentTask's stamp (signed here, no call to the API server), or the rules.
    outcome = judge(*decoded, bytes, received + limits_.budget, [&] {
      return agentTask ? agentTasks_->mutate(*decoded, clock_())
                       : reviewAdmission(*decoded, state_, config_, clock_());
    });
  }
  return {complete(*decoded, *outcome, started), nullptr, nullptr};
}

std::optional<ReviewOutcome> AdmissionEndpoint::refusalIfWaitedItsBudget(
    const AdmissionRequest& request, ReviewMeter::SteadyClock::time_point received,
    const char* worker) {
  const auto waited = steadyNow() - received;
  if (waited < limits_.budget) return std::nullopt;
  errors_.labels({"overloaded"}).inc();
  const auto waitedMs = std::chrono::duration_cast<std::chrono::milliseconds>(waited);
  return refusal(request, Decision::kRefused, 429, "TooManyRequests",
                 "tasklease: " + objectText(request) + " was not judged: it waited " +
                     durationText(waitedMs) + " for " + worker + ", as long as its budget of " +
                     durationText(limits_.budget) +
                     " (--review-budget); the webhook is overloaded. Try again; if this goes on, "
                     "run more webhook replicas or give them more CPU",
                 "overloaded");
}

ReviewOutcome AdmissionEndpoint::judge(const AdmissionRequest& request, size_t bytes,
                                       ReviewMeter::SteadyClock::time_point deadline,
                                       const std::function<ReviewOutcome()>& review) const {
  ReviewMeter meter(deadline, limits_.steadyNow);
  ReviewOutcome outcome;
  {
    ReviewMeter::Scope metered(meter);
    outcome = review();
  }
  if (!meter.spent()) return outcome;
  errors_.labels({"review_budget"}).inc();
  const std::string where =
      meter.spentAt().empty()
          ? "judging the object (" + std::to_string(bytes) + " bytes of AdmissionReview)"
          : meter.spentAt();
  ReviewOutcome refused = refusal(
      request, Decision::kRefused, 413, "RequestEntityTooLarge",
      "tasklease: the review of " + objectText(request) + " was stopped when it had taken its " +
          "budget of " + durationText(limits_.budget) + " (--review-budget), in " + where +
          ". It is refused unjudged: make the object smaller (a long literal value belongs in a "
          "ConfigMap or a mounted file) and create it again",
      "too-costly");
  refused.mode = outcome.mode;
  return refused;
}

HttpResponse AdmissionEndpoint::overloaded(const char* what) {
  errors_.labels({"overloaded"}).inc();
  return statusResponse(
      429, "TooManyRequests",
      std::string("tasklease-webhook: too many ") + what + " waiting for a worker; try again");
}

HttpResponse AdmissionEndpoint::complete(const AdmissionRequest& request, ReviewOutcome& outcome,
                                         std::chrono::steady_clock::time_point started) {
  writeEvidence(outcome.evidence, request.uid);
  HttpResponse response;
  response.body = encodeAdmissionReview(outcome.response);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  record(request, outcome, seconds);
  return response;
}

ReviewOutcome AdmissionEndpoint::noAgentTaskReviewer(const AdmissionRequest& request) const {
  return refusal(request, Decision::kDenied, 503, "ServiceUnavailable",
                 "tasklease-webhook has no delegation signing key (it runs with "
                 "--cluster-state-file, or without --namespace or $POD_NAMESPACE): it cannot "
                 "stamp or check AgentTasks, so it refuses them",
                 "no-signing-key");
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
