#include "webhook/agenttask_review.h"

#include <atomic>
#include <thread>

#include "kube/reviews.h"
#include "webhook/json_access.h"

namespace tasklease::webhook {
namespace {

using Clock = std::chrono::steady_clock;

std::string taskText(const AdmissionRequest& req) {
  const Json& meta = objectMember(req.object.is_null() ? req.oldObject : req.object, "metadata");
  std::string name = req.name;
  if (name.empty()) name = std::string(stringMember(meta, "name"));
  if (name.empty()) name = std::string(stringMember(meta, "generateName")) + "*";
  return req.ns + "/" + name;
}

EvidenceTask evidenceTaskOf(const AdmissionRequest& req) {
  const Json& meta = objectMember(req.object.is_null() ? req.oldObject : req.object, "metadata");
  std::string name(stringMember(meta, "name"));
  if (name.empty()) name = req.name;
  return {req.ns, std::move(name), std::string(stringMember(meta, "uid"))};
}

std::string actorOf(const AdmissionRequest& req) {
  return req.userInfo.username.empty() ? "unknown" : req.userInfo.username;
}

Json baseDetails(const AdmissionRequest& req) {
  return {{"object", std::string(kAgentTaskKind) + "/" + evidenceTaskOf(req).name},
          {"operation", req.operation},
          {"request", req.uid}};
}

ReviewOutcome skip(ReviewOutcome out) {
  out.decision = Decision::kSkipped;
  out.response.allowed = true;
  return out;
}

// Refuses the request, with a `rejected` record naming why.
ReviewOutcome deny(const AdmissionRequest& req, ReviewOutcome out, int code, const char* reason,
                   std::string message, const std::string& why, const Json& problems) {
  out.decision = Decision::kDenied;
  out.response.allowed = false;
  out.response.code = code;
  out.response.reason = reason;
  out.response.message = std::move(message);
  if (!req.dryRun) {
    Json details = baseDetails(req);
    details["reason"] = why;
    details["problems"] = problems;
    out.evidence.push_back(
        {EvidenceKind::kRejected, evidenceTaskOf(req), actorOf(req), std::move(details)});
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : "; ") + i;
  return out;
}

Json extraJson(const UserInfo& user) {
  Json out = Json::object();
  for (const auto& [k, v] : user.extra) out[k] = v;
  return out;
}

// " (the Job that runs spec.workload)" when the workload needs the permission, else "".
std::string purposeOf(const PermissionCheck& check, const std::vector<WorkloadAccess>& workload) {
  for (const WorkloadAccess& a : workload) {
    if (a.check == check) return " (" + a.purpose + ")";
  }
  return "";
}

Json ruleCodes(const std::vector<RuleId>& rules) {
  Json out = Json::array();
  for (RuleId r : rules) out.push_back(ruleCode(r));
  return out;
}

// What the `delegated` record says was checked for spec.workload (docs/delegation.md).
Json workloadEvidence(const std::vector<WorkloadAccess>& workload) {
  Json permissions = Json::array();
  for (const WorkloadAccess& a : workload) {
    permissions.push_back({{"permission", describePermission(a.check)}, {"why", a.purpose}});
  }
  return {{"rules", ruleCodes(taskWorkloadTemplateRules())},
          {"rulesSetByTheOperator", ruleCodes(rulesTheOperatorMakesTrue())},
          {"permissions", std::move(permissions)}};
}

}  // namespace

std::vector<Violation> AgentTaskReviewer::judgeWorkloadTemplate(const AdmissionRequest& req,
                                                                const Json& spec,
                                                                TimePoint now) const {
  const Json* workload = member(spec, "workload");
  if (workload == nullptr || !workload->is_object()) return {};
  const Json& tmpl = objectMember(*workload, "template");
  PodUnderReview pod;
  pod.ns = req.ns;
  pod.specPath = kWorkloadTemplateSpecPath;
  pod.labelsPath = "spec.workload.template.metadata.labels";
  pod.spec = JsonView(objectMember(tmpl, "spec"));
  pod.labels = JsonView(objectMember(objectMember(tmpl, "metadata"), "labels"));
  pod.taskWorkloadTemplate = true;
  // The rules a template is judged by read no cluster state (TL005, TL006 and TL008, which do,
  // are the operator's to make true), and no IdentityException applies: an exception is for
  // workloads that cannot run under a task yet, and this one is a task's.
  const ObjectSetClusterState none(LookupState::kUnknown);
  return checkPod(pod, none, config_.rules, now).violations;
}

std::vector<AccessAnswer> SarAccessReviewer::review(const UserInfo& user, const std::string& ns,
                                                    const std::vector<PermissionCheck>& checks,
                                                    std::chrono::milliseconds deadline) {
  std::vector<AccessAnswer> answers(checks.size());
  const auto end = Clock::now() + deadline;
  const Json extra = extraJson(user);
  std::atomic<size_t> next{0};
  // Each worker takes the next unanswered check; answers[i] is written by one worker only.
  auto work = [&] {
    for (size_t i = next++; i < checks.size(); i = next++) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now());
      if (left.count() <= 0) {
        answers[i].error =
            "not asked: the deadline of " + std::to_string(deadline.count()) + "ms had passed";
        continue;
      }
      const PermissionCheck& c = checks[i];
      kube::AccessReviewRequest request{
          user.username, user.uid,      user.groups,   extra, ns, c.verb, c.apiGroup, "",
          c.resource,    c.subresource, c.resourceName};
      kube::CallOptions call;
      call.timeout = left;
      auto result = kube::reviewAccess(client_, request, call);
      if (!result.ok()) {
        answers[i].error = result.status().toString();
        continue;
      }
      answers[i].answered = true;
      answers[i].allowed = result->allowed;
    }
  };
  const size_t workers = std::min(checks.size(), static_cast<size_t>(std::max(parallelism_, 1)));
  const size_t helpers = workers > 0 ? workers - 1 : 0;  // this thread is a worker too
  {
    std::vector<std::jthread> threads;
    for (size_t t = 0; t < helpers; ++t) threads.emplace_back(work);
    work();
  }  // joined here
  return answers;
}

AgentTaskReviewer::AgentTaskReviewer(const SigningKey& signer, kube::StampVerifier& stamps,
                                     AccessReviewer& access, AgentTaskReviewConfig config)
    : signer_(signer), stamps_(stamps), access_(access), config_(config) {}

ReviewOutcome AgentTaskReviewer::mutate(const AdmissionRequest& req, TimePoint now) const {
  ReviewOutcome out;
  out.kind = req.kind;
  out.response.uid = req.uid;
  if (!isAgentTaskRequest(req) || req.operation != "CREATE") return skip(std::move(out));
  out.mode = EnforcementMode::kEnforce;
  AdmissionResponse stamped = stampAgentTask(req, signer_, now);
  if (!stamped.allowed) {
    return deny(req, std::move(out), stamped.code, stamped.reason.c_str(), stamped.message, "stamp",
                Json::array({stamped.message}));
  }
  out.response = std::move(stamped);
  out.decision = Decision::kAllowed;
  return out;
}

ReviewOutcome AgentTaskReviewer::validate(const AdmissionRequest& req, TimePoint now) const {
  ReviewOutcome out;
  out.kind = req.kind;
  out.response.uid = req.uid;
  if (!isAgentTaskRequest(req)) return skip(std::move(out));
  out.mode = EnforcementMode::kEnforce;
  if (req.operation == "CREATE") return validateCreate(req, std::move(out), now);
  if (req.operation != "UPDATE") return skip(std::move(out));
  std::vector<std::string> problems = agentTaskUpdateProblems(req.oldObject, req.object);
  if (problems.empty()) {
    out.decision = Decision::kAllowed;
    return out;
  }
  return deny(
      req, std::move(out), 403, "Forbidden",
      "tasklease: AgentTask " + taskText(req) + " cannot be changed this way: " + joined(problems),
      "immutable", problems);
}

ReviewOutcome AgentTaskReviewer::validateCreate(const AdmissionRequest& req, ReviewOutcome out,
                                                TimePoint now) const {
  const Json* specMember = member(req.object, "spec");
  const Json spec = specMember != nullptr ? *specMember : Json();
  std::vector<std::string> problems = agentTaskSpecProblems(spec);
  const std::vector<PermissionCheck> checks = planPermissionChecks(spec);
  if (checks.size() > config_.maxPermissionChecks) {
    problems.push_back("spec.scope.rules: ask for " + std::to_string(checks.size()) +
                       " permissions (apiGroup x resource x verb x resourceName, and what "
                       "spec.workload needs); at most " +
                       std::to_string(config_.maxPermissionChecks) +
                       " are allowed in one task: split the work into several tasks");
  }
  if (!problems.empty()) {
    return deny(req, std::move(out), 422, "Invalid",
                "tasklease: AgentTask " + taskText(req) + " is invalid: " + joined(problems),
                "invalid", problems);
  }

  auto stamp = stamps_.verify(req.object);
  if (!stamp.ok()) {
    const std::string why = "cannot verify the delegation stamp: " + stamp.status().toString();
    return deny(req, std::move(out), 503, "ServiceUnavailable",
                "tasklease: AgentTask " + taskText(req) + ": " + why +
                    "; the task is refused until it can be verified, try again",
                "unverifiable", Json::array({why}));
  }
  if (!stamp->verified()) {
    const std::string why =
        std::string("metadata.annotations[") + kRequestedByAnnotation + "]: " + stamp->message;
    return deny(req, std::move(out), 403, "Forbidden",
                "tasklease: AgentTask " + taskText(req) + ": " + why +
                    ". Only the tasklease mutating webhook writes the stamp (is it registered "
                    "for AgentTask CREATE?)",
                "stamp", Json::array({why}));
  }
  if (stamp->requester != requesterOf(req.userInfo)) {
    const std::string why = "the stamp names \"" + stamp->requester.username +
                            "\" but the request is made by \"" + req.userInfo.username + "\"";
    return deny(req, std::move(out), 403, "Forbidden",
                "tasklease: AgentTask " + taskText(req) + ": " + why, "stamp", Json::array({why}));
  }

  // The workload template is judged as the pods it will make are, in every namespace: the
  // operator creates its Job with the operator's rights, so the task's admission is the only
  // place where the requester's template meets the rules.
  const std::vector<Violation> workloadViolations = judgeWorkloadTemplate(req, spec, now);
  if (!workloadViolations.empty()) {
    std::vector<std::string> lines;
    for (const Violation& v : workloadViolations) {
      lines.push_back("[" + std::string(ruleCode(v.rule)) + "] " + v.path + ": " + v.message);
      out.violatedRules.push_back(v.rule);
    }
    return deny(req, std::move(out), 403, "Forbidden",
                "tasklease: AgentTask " + taskText(req) + ": its workload template violates " +
                    std::to_string(lines.size()) + (lines.size() == 1 ? " rule" : " rules") +
                    ", refused whatever the namespace's enforcement mode: " + joined(lines),
                "workload", lines);
  }

  const std::vector<AccessAnswer> answers =
      access_.review(req.userInfo, req.ns, checks, config_.accessDeadline);
  const std::vector<WorkloadAccess> workload = workloadAccess(spec);
  std::vector<std::string> missing;
  size_t unanswered = 0;
  std::string firstError;
  for (size_t i = 0; i < checks.size(); ++i) {
    const AccessAnswer& a = i < answers.size() ? answers[i] : AccessAnswer{false, false, "none"};
    if (!a.answered) {
      if (unanswered++ == 0) firstError = a.error;
    } else if (!a.allowed) {
      missing.push_back(describePermission(checks[i]) + purposeOf(checks[i], workload));
    }
  }
  const std::string who = "\"" + req.userInfo.username + "\"";
  if (unanswered > 0) {
    const std::string why = std::to_string(unanswered) + " of " + std::to_string(checks.size()) +
                            " SubjectAccessReviews unanswered (" + firstError + ")";
    return deny(req, std::move(out), 503, "ServiceUnavailable",
                "tasklease: could not check the permissions of " + who + " for AgentTask " +
                    taskText(req) + ": " + why +
                    "; the task is refused until they can be checked, try again",
                "unverifiable", Json::array({why}));
  }
  if (!missing.empty()) {
    return deny(req, std::move(out), 403, "Forbidden",
                "tasklease: AgentTask " + taskText(req) + " asks for " +
                    std::to_string(missing.size()) +
                    (missing.size() == 1 ? " permission that " : " permissions that ") + who +
                    " does not hold in namespace " + req.ns + ": " + joined(missing) +
                    ". A task can never hold more than the user who creates it: ask for less, "
                    "or be granted these first",
                "permissions", missing);
  }

  out.decision = Decision::kAllowed;
  if (!req.dryRun) {
    Json details = baseDetails(req);
    details["uid"] = req.userInfo.uid;
    details["groups"] = req.userInfo.groups;
    details["keyId"] = stamp->keyId;
    details["permissionsChecked"] = checks.size();
    if (member(spec, "workload") != nullptr) details["workload"] = workloadEvidence(workload);
    out.evidence.push_back(
        {EvidenceKind::kDelegated, evidenceTaskOf(req), actorOf(req), std::move(details)});
  }
  return out;
}

}  // namespace tasklease::webhook
