#include "webhook/review.h"

#include <algorithm>
#include <map>

#include "webhook/identity_exception.h"
#include "webhook/json_access.h"
#include "webhook/policy.h"
#include "webhook/workload.h"

namespace tasklease::webhook {
namespace {

std::string violationLine(const Violation& v) {
  return "[" + std::string(ruleCode(v.rule)) + "] " + v.path + ": " + v.message;
}

std::string exceptionLine(const ExceptionUse& u) {
  return "IdentityException \"" + u.exception + "\" (approved by " + u.approvedBy + ", expires " +
         u.expiresAt + ") allows [" + std::string(ruleCode(u.violation.rule)) + "] at " +
         u.violation.path;
}

std::string ignoredLine(const IgnoredException& i) {
  return i.why + "; it allows nothing until it is replaced by one that would be admitted";
}

Json violationsJson(const std::vector<Violation>& violations) {
  Json out = Json::array();
  for (const auto& v : violations) out.push_back({{"rule", ruleCode(v.rule)}, {"path", v.path}});
  return out;
}

ReviewOutcome skipped(ReviewOutcome out) {
  out.decision = Decision::kSkipped;
  out.response.allowed = true;
  return out;
}

// A denial that is not about rule violations (an invalid IdentityException, an object that
// cannot be read) still leaves a `rejected` record: every denial is in the evidence.
void addRejection(const AdmissionRequest& req, const std::string& ns, const std::string& reason,
                  const std::string& message, std::vector<EvidenceEvent>& out) {
  if (req.dryRun) return;
  std::string name(req.objectView().member("metadata").member("name").string());
  if (name.empty()) name = req.name;
  Json details = {{"object", req.kind + "/" + name},
                  {"operation", req.operation},
                  {"request", req.uid},
                  {"reason", reason},
                  {"message", message}};
  out.push_back({EvidenceKind::kRejected, EvidenceTask{ns, "", ""},
                 req.userInfo.username.empty() ? "unknown" : req.userInfo.username,
                 std::move(details)});
}

ReviewOutcome reviewIdentityException(const AdmissionRequest& req, ReviewOutcome out,
                                      TimePoint now) {
  if (req.operation == "UPDATE" &&
      objectMember(req.object, "spec") == objectMember(req.oldObject, "spec")) {
    return skipped(std::move(out));  // metadata-only changes (labels, finalizers)
  }
  TimePoint createdAt = now;
  if (auto created =
          parseRfc3339(stringMember(objectMember(req.oldObject, "metadata"), "creationTimestamp"));
      created.ok()) {
    createdAt = *created;
  }
  std::vector<FieldProblem> problems = validateIdentityException(req.object, now, createdAt);
  if (problems.empty()) {
    out.decision = Decision::kAllowed;
    return out;
  }
  std::string message = "IdentityException " + req.ns + "/" + req.name + " is invalid: ";
  for (size_t i = 0; i < problems.size(); ++i) {
    if (i > 0) message += "; ";
    message += problems[i].field + ": " + problems[i].message;
  }
  out.decision = Decision::kDenied;
  out.response.allowed = false;
  out.response.code = 422;
  out.response.reason = "Invalid";
  out.response.message = std::move(message);
  addRejection(req, req.ns, "invalid", out.response.message, out.evidence);
  return out;
}

// Pod labels as the rules read them: missing or not an object reads as no labels.
Json labelsAsRulesRead(const JsonView& labels) {
  return labels.isObject() ? labels.toJson() : Json::object();
}

// Names of the ephemeral containers in spec that oldSpec did not have.
std::vector<std::string> newEphemeralContainers(const JsonView& spec, const JsonView& oldSpec) {
  std::vector<std::string> before;
  oldSpec.member("ephemeralContainers").forEach([&](size_t, const JsonView& c) {
    before.emplace_back(c.member("name").string());
  });
  std::vector<std::string> added;
  spec.member("ephemeralContainers").forEach([&](size_t, const JsonView& c) {
    std::string name(c.member("name").string());
    if (std::find(before.begin(), before.end(), name) == before.end()) added.push_back(name);
  });
  return added;
}

void addEvidence(const AdmissionRequest& req, const Workload& workload,
                 const WorkloadEvaluation& eval, EnforcementMode mode, Decision decision,
                 std::vector<EvidenceEvent>& out) {
  if (decision != Decision::kDenied && !eval.task && eval.violations.empty() &&
      eval.excepted.empty()) {
    return;  // nothing happened worth a record: the common case
  }
  EvidenceTask task{workload.ns, eval.task ? eval.task->name : "", eval.task ? eval.task->uid : ""};
  const std::string actor = req.userInfo.username.empty() ? "unknown" : req.userInfo.username;
  Json base = {{"object", workload.kind + "/" + workload.name},
               {"operation", req.operation},
               {"request", req.uid},
               {"mode", enforcementModeName(mode)},
               {"serviceAccount", eval.serviceAccountName}};
  if (!eval.ignoredExceptions.empty()) {
    Json ignored = Json::array();
    for (const auto& i : eval.ignoredExceptions) {
      ignored.push_back({{"exception", i.exception}, {"reason", i.why}});
    }
    base["ignoredExceptions"] = std::move(ignored);
  }
  if (decision == Decision::kDenied) {
    Json details = base;
    details["violations"] = violationsJson(eval.violations);
    out.push_back({EvidenceKind::kRejected, task, actor, std::move(details)});
  } else if (eval.task || !eval.violations.empty()) {
    Json details = base;
    if (!eval.violations.empty()) details["violations"] = violationsJson(eval.violations);
    out.push_back({EvidenceKind::kAdmitted, task, actor, std::move(details)});
  }
  std::map<std::string, std::vector<const ExceptionUse*>> byException;
  for (const auto& u : eval.excepted) byException[u.exception].push_back(&u);
  for (const auto& [name, uses] : byException) {
    Json details = base;
    details["exception"] = name;
    details["approvedBy"] = uses.front()->approvedBy;
    details["expiresAt"] = uses.front()->expiresAt;
    Json allowed = Json::array();
    for (const auto* u : uses) {
      allowed.push_back({{"rule", ruleCode(u->violation.rule)}, {"path", u->violation.path}});
    }
    details["allowed"] = std::move(allowed);
    out.push_back({EvidenceKind::kExceptionUsed, task, actor, std::move(details)});
  }
}

}  // namespace

const char* enforcementModeName(EnforcementMode mode) {
  switch (mode) {
    case EnforcementMode::kNone:
      return "none";
    case EnforcementMode::kAudit:
      return "audit";
    case EnforcementMode::kWarn:
      return "warn";
    case EnforcementMode::kEnforce:
      return "enforce";
  }
  return "none";
}

const char* decisionName(Decision decision) {
  switch (decision) {
    case Decision::kAllowed:
      return "allowed";
    case Decision::kDenied:
      return "denied";
    case Decision::kWarned:
      return "warned";
    case Decision::kAudited:
      return "audited";
    case Decision::kExcepted:
      return "excepted";
    case Decision::kSkipped:
      return "skipped";
    case Decision::kInvalid:
      return "invalid";
  }
  return "skipped";
}

EnforcementMode enforcementModeOf(const Json& namespaceObject, bool* unknownValue) {
  if (unknownValue != nullptr) *unknownValue = false;
  const Json* value =
      member(objectMember(objectMember(namespaceObject, "metadata"), "labels"), kEnforcementLabel);
  if (value == nullptr || !value->is_string()) return EnforcementMode::kNone;
  const std::string& v = value->get_ref<const std::string&>();
  if (v == "enforce") return EnforcementMode::kEnforce;
  if (v == "warn") return EnforcementMode::kWarn;
  if (v == "audit") return EnforcementMode::kAudit;
  if (v == "none" || v.empty()) return EnforcementMode::kNone;
  if (unknownValue != nullptr) *unknownValue = true;
  return EnforcementMode::kEnforce;
}

ReviewOutcome reviewAdmission(const AdmissionRequest& req, const ClusterState& state,
                              const ReviewConfig& config, TimePoint now) {
  ReviewOutcome out;
  out.kind = req.kind;
  out.response.uid = req.uid;
  if (req.operation != "CREATE" && req.operation != "UPDATE") return skipped(std::move(out));
  if (req.group == kTaskleaseGroup && req.kind == kIdentityExceptionKind) {
    return reviewIdentityException(req, std::move(out), now);
  }
  if (!isPodBearing(req.group, req.kind)) {
    return skipped(std::move(out));
  }
  const bool ephemeral =
      req.kind == "Pod" && req.subResource == "ephemeralcontainers" && req.operation == "UPDATE";
  if (!req.subResource.empty() && !ephemeral) return skipped(std::move(out));  // status, scale
  // A Pod's spec cannot change after creation (ephemeral containers aside), and an object
  // being deleted must be free to lose its finalizers: neither is judged again.
  const JsonView object = req.objectView();
  if (req.operation == "UPDATE" && !ephemeral &&
      (req.kind == "Pod" || object.member("metadata").member("deletionTimestamp").present())) {
    return skipped(std::move(out));
  }

  std::string ns = req.ns;
  if (ns.empty()) ns = std::string(object.member("metadata").member("namespace").string());
  if (std::find(config.exemptNamespaces.begin(), config.exemptNamespaces.end(), ns) !=
      config.exemptNamespaces.end()) {
    return skipped(std::move(out));
  }
  Lookup nsObject = state.namespaceObject(ns);
  if (!nsObject.found()) return skipped(std::move(out));
  bool unknownMode = false;
  out.mode = enforcementModeOf(nsObject.get(), &unknownMode);
  if (out.mode == EnforcementMode::kNone) return skipped(std::move(out));
  if (unknownMode) {
    out.response.warnings.push_back("namespace " + ns + ": label " +
                                    std::string(kEnforcementLabel) +
                                    " is not enforce, warn, audit or none; treated as enforce");
  }

  StatusOr<Workload> workload = workloadOf(object, req.kind, ns);
  if (!workload.ok()) {
    out.decision = Decision::kInvalid;
    out.response.allowed = false;
    out.response.code = 400;
    out.response.reason = "BadRequest";
    out.response.message = "tasklease: cannot read the object: " + workload.status().message();
    addRejection(req, ns, "unreadable", out.response.message, out.evidence);
    return out;
  }
  if (workload->name.empty() || workload->name == "*") workload->name = req.name;
  if (req.operation == "UPDATE" && !ephemeral) {
    StatusOr<Workload> before = workloadOf(req.oldObjectView(), req.kind, ns);
    const PodUnderReview& pod = workload->pods.front();
    if (before.ok() &&
        labelsAsRulesRead(before->pods.front().labels) == labelsAsRulesRead(pod.labels) &&
        podSpecAsRulesRead(before->pods.front().spec) == podSpecAsRulesRead(pod.spec)) {
      return skipped(std::move(out));  // what the rules read of the pod template did not change
    }
  }
  if (ephemeral) {
    workload->pods.front().onlyEphemeralContainers =
        newEphemeralContainers(workload->pods.front().spec, req.oldObjectView().member("spec"));
  }
  for (PodUnderReview& pod : workload->pods) {
    pod.requester = RequestUser{req.userInfo.username, req.userInfo.uid};
  }

  WorkloadEvaluation eval = evaluateWorkload(*workload, state, config.rules, now);
  for (const auto& v : eval.violations) out.violatedRules.push_back(v.rule);
  for (const auto& u : eval.excepted) {
    out.exceptedRules.push_back(u.violation.rule);
    out.response.warnings.push_back(exceptionLine(u));
  }
  for (const auto& n : eval.notes) {
    out.response.warnings.push_back("[" + std::string(ruleCode(n.rule)) +
                                    "] not evaluated: " + n.message);
  }
  for (const auto& i : eval.ignoredExceptions) out.response.warnings.push_back(ignoredLine(i));

  if (eval.violations.empty()) {
    out.decision = eval.excepted.empty() ? Decision::kAllowed : Decision::kExcepted;
  } else if (out.mode == EnforcementMode::kEnforce) {
    out.decision = Decision::kDenied;
    out.response.allowed = false;
    out.response.code = 403;
    out.response.reason = "Forbidden";
    std::string message = "tasklease: " + workload->kind + " " + ns + "/" + workload->name +
                          " violates " + std::to_string(eval.violations.size()) +
                          (eval.violations.size() == 1 ? " rule: " : " rules: ");
    for (size_t i = 0; i < eval.violations.size(); ++i) {
      if (i > 0) message += "; ";
      message += violationLine(eval.violations[i]);
    }
    out.response.message = std::move(message);
  } else if (out.mode == EnforcementMode::kWarn) {
    out.decision = Decision::kWarned;
    for (const auto& v : eval.violations) out.response.warnings.push_back(violationLine(v));
  } else {
    out.decision = Decision::kAudited;
    std::string rules;
    for (const auto& v : eval.violations) {
      if (!rules.empty()) rules += ",";
      rules += std::string(ruleCode(v.rule)) + "@" + v.path;
    }
    out.response.auditAnnotations["violations"] = rules;
  }
  // Dry-run requests change nothing, evidence included (docs/webhook.md).
  if (!req.dryRun) addEvidence(req, *workload, eval, out.mode, out.decision, out.evidence);
  return out;
}

}  // namespace tasklease::webhook
