#include "operator/reconciler.h"

#include <algorithm>

#include "common/duration.h"
#include "common/log.h"
#include "operator/conditions.h"
#include "operator/objects.h"

namespace tasklease::op {
namespace {

using std::chrono::milliseconds;

constexpr std::chrono::minutes kRecordedMemory{10};
// How long a pass trusts that the cache will catch up with the status write naming the Job it
// just created (it takes milliseconds; after this, a create answered AlreadyExists is harmless).
constexpr std::chrono::seconds kWorkloadExpectation{30};
// How long after issuance an admission refusal of the workload Job is taken as the webhook not
// having seen the task Active yet (its informer trails the API server by a watch event), and
// how soon the Job is tried again meanwhile.
constexpr std::chrono::seconds kWebhookCatchUp{10};
constexpr std::chrono::milliseconds kWebhookCatchUpRetry{500};

std::string keyText(const TaskRef& t) {
  return t.ns + "/" + t.name;
}

double secondsBetween(TimePoint from, TimePoint to) {
  return std::chrono::duration<double>(to - from).count();
}

int64_t millisBetween(TimePoint from, TimePoint to) {
  return std::chrono::duration_cast<milliseconds>(to - from).count();
}

EvidenceTask evidenceTask(const TaskRef& t) {
  return {t.ns, t.name, t.uid};
}

bool ownedBy(const Json& object, const TaskRef& task) {
  return stringAt(object, {"metadata", "labels", kTaskUidLabel}) == task.uid;
}

Json ruleList(const std::vector<PolicyRule>& rules) {
  Json out = Json::array();
  for (const auto& r : rules) out.push_back(policyRuleToJson(r));
  return out;
}

// The metric label of an ending, from its reason (also read back from status.revocation).
std::string triggerOf(const std::string& reason) {
  if (reason == "Completed") return "completed";
  if (reason == "Expired") return "deadline";
  if (reason == "TaskDeleted") return "deletion";
  return "workload";
}

std::string joinDeleted(const std::vector<std::string>& deleted) {
  std::string out;
  for (const auto& d : deleted) out += (out.empty() ? "" : ", ") + d;
  return out.empty() ? "nothing was left to delete" : out + " deleted";
}

}  // namespace

Reconciler::Reconciler(ReconcilerDeps deps) : deps_(std::move(deps)) {}

StatusOr<ReconcileResult> Reconciler::reconcile(const std::string& key) {
  const kube::ObjectKey objectKey = kube::ObjectKey::parse(key);
  kube::ObjectPtr cached = deps_.view.task(objectKey);
  if (!cached) return gone(objectKey);
  Json task = *cached;
  // Cached list items may lack these; Events need them to name the object.
  task["kind"] = kAgentTasks.kind;
  task["apiVersion"] = kAgentTasks.apiVersion();
  if (isBeingDeleted(task)) return finalize(task);
  if (!hasFinalizer(task, kFinalizer)) {
    Status s = addFinalizer(task);
    if (!s.ok()) return s;
  }
  const Phase phase = parsePhase(stringAt(task, {"status", "phase"}));
  if (phase == Phase::kActive) return active(task, WorkloadStart::kNow);
  if (phase == Phase::kRevoking) return revoking(task);
  if (isTerminal(phase)) return ReconcileResult{};
  {
    std::lock_guard lock(mu_);
    firstSeen_.emplace(kube::uidOf(task), deps_.now());
  }
  if (stringAt(task, {"status", "policy", "decision"}).empty()) {
    Status s = decide(task);
    if (!s.ok()) return s;
    if (parsePhase(stringAt(task, {"status", "phase"})) == Phase::kDenied) {
      std::lock_guard lock(mu_);
      firstSeen_.erase(kube::uidOf(task));
      return ReconcileResult{};
    }
  }
  return issue(task);
}

void Reconciler::observe(const Json& task) {
  const Phase phase = parsePhase(stringAt(task, {"status", "phase"}));
  const bool completed = objectAt(task, {"spec"}).value("completed", false);
  std::lock_guard lock(mu_);
  if (phase == Phase::kNone) firstSeen_.emplace(kube::uidOf(task), deps_.now());
  if (phase == Phase::kActive && completed) endingSeen_.emplace(kube::uidOf(task), deps_.now());
}

void Reconciler::onRevocationDone(std::function<void(const std::string& key)> done) {
  if (deps_.batcher != nullptr) deps_.batcher->setDone(std::move(done));
}

std::optional<StatusOr<RevocationReport>> Reconciler::revoke(const RevocationTarget& target) {
  if (deps_.batcher != nullptr) return deps_.batcher->poll(keyText(target.task), target);
  return deps_.revoker.revoke(target, deps_.now());
}

// ---- gone and being deleted ----

StatusOr<ReconcileResult> Reconciler::gone(const kube::ObjectKey& key) {
  {
    std::lock_guard lock(mu_);
    // Revoked and verified before the finalizer came off: nothing can be left.
    if (finalized_.erase(key.toString()) != 0) return ReconcileResult{};
  }
  auto report = deps_.sweeper.sweepTask(key);
  if (!report.ok()) return report.status();
  if (!report->errors.empty()) {
    return unavailable("sweeping what is left of " + key.toString() + ": " +
                       report->errors.front());
  }
  return ReconcileResult{};
}

StatusOr<ReconcileResult> Reconciler::finalize(Json& task) {
  if (!hasFinalizer(task, kFinalizer)) return ReconcileResult{};
  const TaskRef ref = taskRefOf(task);
  const TimePoint now = deps_.now();
  const Phase phase = parsePhase(stringAt(task, {"status", "phase"}));
  auto spec = parseTaskSpec(task);
  RevocationReport report;
  if (phase != Phase::kDenied) {
    if (phase == Phase::kPending || phase == Phase::kActive) {
      // As for any ending: the task is not Active while its credential is taken away.
      const TimePoint since =
          parseRfc3339(stringAt(task, {"metadata", "deletionTimestamp"})).valueOr(now);
      Status s = writeStatus(task, [&](Json& st) {
        st["phase"] = phaseName(Phase::kRevoking);
        st["revocation"] = revocationStatus(
            {Phase::kNone, "deletion", "TaskDeleted", "the task is being deleted", since});
        setCondition(st, kConditionReady, false, "Deleting",
                     "the task is being deleted; its credential is being revoked",
                     generationOf(task), now);
      });
      if (!s.ok() && !s.isNotFound()) return s;
      countTransition(Phase::kRevoking);
    }
    Status stopped = stopWorkload(task);
    if (!stopped.ok()) return stopped;
    const Json credential = objectAt(task, {"status", "credential"});
    auto revoked =
        revoke({ref, taskNames(ref.name, ref.uid),
                spec.ok() ? std::optional<CredentialType>(spec->credentialType) : std::nullopt,
                credential});
    if (!revoked)
      return ReconcileResult{.requeueAfter = std::nullopt,
                             .waiting = true};  // queued: back when it has run
    if (!revoked->ok()) return revoked->status();
    if (!(*revoked)->complete()) return held(task, **revoked);
    report = **revoked;
  }
  const bool issued = !stringAt(task, {"status", "credential", "issuedAt"}).empty();
  const bool alreadyRevoked = !stringAt(task, {"status", "credential", "revokedAt"}).empty();
  if (!alreadyRevoked && (issued || report.anything())) {
    recordOnce(EvidenceKind::kRevoked, ref, kOperatorActor,
               {{"reason", "TaskDeleted"},
                {"deleted", report.deleted},
                {"fingerprint", stringAt(task, {"status", "credential", "fingerprint"})}});
    const std::string message = "task deleted: " + joinDeleted(report.deleted);
    Status s = writeStatus(task, [&](Json& st) {
      st["credential"]["revokedAt"] = formatRfc3339(now);
      if (st.contains("revocation")) st["revocation"]["held"] = Json::array();
      setCondition(st, kConditionRevoked, true, "TaskDeleted", message, generationOf(task), now);
      setCondition(st, kConditionReady, false, "Deleting", message, generationOf(task), now);
    });
    if (!s.ok() && !s.isNotFound()) return s;
    if (deps_.metrics != nullptr && spec.ok()) {
      deps_.metrics->revocation.labels({credentialTypeName(spec->credentialType), "deletion"})
          .observe(secondsBetween(
              parseRfc3339(stringAt(task, {"metadata", "deletionTimestamp"})).valueOr(now), now));
    }
    event(task, kube::EventType::kNormal, "CredentialRevoked", message);
  }
  Json next = task;
  Json kept = Json::array();
  for (const Json& f : objectAt(task, {"metadata"}).value("finalizers", Json::array())) {
    if (!(f.is_string() && f.get<std::string>() == kFinalizer)) kept.push_back(f);
  }
  next["metadata"]["finalizers"] = kept;
  auto updated = deps_.client.update(kAgentTasks, next);
  if (!updated.ok() && !updated.status().isNotFound()) {
    return updated.status().annotate("removing the finalizer of " + keyText(ref));
  }
  std::lock_guard lock(mu_);
  finalized_.insert(keyText(ref));
  firstSeen_.erase(ref.uid);
  endingSeen_.erase(ref.uid);
  return ReconcileResult{};
}

Status Reconciler::addFinalizer(Json& task) {
  Json next = task;
  Json& finalizers = next["metadata"]["finalizers"];
  if (!finalizers.is_array()) finalizers = Json::array();
  finalizers.push_back(kFinalizer);
  auto updated = deps_.client.update(kAgentTasks, next);
  if (!updated.ok()) {
    return updated.status().annotate("adding the finalizer to " + keyText(taskRefOf(task)));
  }
  const Json status = task.value("status", Json::object());
  task = std::move(*updated);
  if (!task.contains("status")) task["status"] = status;
  task["kind"] = kAgentTasks.kind;
  task["apiVersion"] = kAgentTasks.apiVersion();
  return {};
}

// ---- the decision ----

Status Reconciler::decide(Json& task) {
  const TimePoint now = deps_.now();
  const TaskRef ref = taskRefOf(task);
  const int64_t generation = generationOf(task);
  // A delegation that cannot be checked now (keys unreadable) must not be decided as
  // unverified: the decision is final, so this pass is retried instead.
  auto delegation = deps_.delegation.delegationOf(task);
  if (!delegation.ok()) return delegation.status();
  const Delegation who = std::move(*delegation);
  auto spec = parseTaskSpec(task);
  PolicyDecision decision;
  std::optional<TimePoint> deadline;
  bool invalid = false;
  if (!spec.ok()) {
    invalid = true;
    decision.reason = "invalid spec: " + spec.status().message();
  } else {
    auto d = taskDeadline(task, spec->ttl);
    if (!d.ok()) {
      invalid = true;
      decision.reason = "invalid task: " + d.status().message();
    } else {
      deadline = *d;
      decision = evaluatePolicies({ref.ns, *spec, who}, deps_.view.policies());
      if (!decision.allowed) {
        // A denial is final, and the cache may not have seen a policy written just before
        // the task (the two watches are not ordered): deny only on what the API server says.
        auto live = deps_.client.list(kAgentPolicies, "", kube::ListOptions{});
        if (!live.ok()) return live.status().annotate("reading AgentPolicies before a denial");
        decision = evaluatePolicies({ref.ns, *spec, who},
                                    live->value("items", Json::array()).get<std::vector<Json>>());
      }
    }
  }

  if (who.present) {
    Json delegated = {{"uid", who.uid}, {"groups", who.groups}, {"verified", who.verified}};
    if (!who.verified) delegated["reason"] = who.unverifiedReason;
    recordOnce(EvidenceKind::kDelegated, ref, who.username, delegated);
  }
  Json details = {{"policy", decision.policy}, {"reason", decision.reason}};
  if (spec.ok()) {
    details["agent"] = spec->agent;
    details["purpose"] = spec->purpose;
    details["tool"] = spec->tool;
    details["environment"] = spec->environment;
    details["dataSensitivity"] = spec->dataSensitivity;
    details["ttl"] = formatDuration(spec->ttl);
    details["credentialType"] = credentialTypeName(spec->credentialType);
    details["rules"] = ruleList(spec->rules);
    if (decision.workload) {
      // What the workload was held to (a denial's reason says what in it broke which bound).
      details["workload"] = {{"podSecurity", podSecurityLevelName(decision.workload->level)},
                             {"allowedCapabilities", decision.workload->allowedCapabilities}};
    }
  }
  recordOnce(decision.allowed ? EvidenceKind::kAuthorized : EvidenceKind::kDenied, ref,
             kOperatorActor, details);

  const TaskNames names = taskNames(ref.name, ref.uid);
  Status s = writeStatus(task, [&](Json& st) {
    st["phase"] = phaseName(decision.allowed ? Phase::kPending : Phase::kDenied);
    if (deadline) st["expiresAt"] = formatRfc3339(*deadline);
    if (who.present) {
      st["delegation"] = {{"username", who.username},
                          {"uid", who.uid},
                          {"groups", who.groups},
                          {"verified", who.verified}};
    }
    Json policy = {{"decision", decision.allowed ? "Allowed" : "Denied"},
                   {"reason", decision.reason},
                   {"evaluatedAt", formatRfc3339(now)}};
    if (!decision.policy.empty()) policy["name"] = decision.policy;
    st["policy"] = policy;
    if (decision.allowed) {
      // What will be created, recorded before any of it is.
      st["credential"] = {{"type", credentialTypeName(spec->credentialType)},
                          {"serviceAccountName", names.serviceAccount()},
                          {"secretName", names.secret()}};
    }
    const char* authReason = decision.allowed ? "PolicyAllowed"
                             : invalid        ? "InvalidSpec"
                                              : "PolicyDenied";
    setCondition(st, kConditionAuthorized, decision.allowed, authReason, decision.reason,
                 generation, now);
    setCondition(st, kConditionIssued, false, decision.allowed ? "Pending" : "NotIssued",
                 decision.allowed ? "the credential is being issued"
                                  : "no credential is issued for a denied task",
                 generation, now);
    setCondition(st, kConditionReady, false, decision.allowed ? "Pending" : "Denied",
                 decision.allowed ? "authorized; the credential is being issued" : decision.reason,
                 generation, now);
  });
  if (!s.ok()) return s;
  if (decision.allowed) {
    event(task, kube::EventType::kNormal, "Authorized", decision.reason);
    countTransition(Phase::kPending);
  } else {
    event(task, kube::EventType::kWarning, "Denied", decision.reason);
    countTransition(Phase::kDenied);
  }
  return {};
}

// ---- issuance ----

StatusOr<Json> Reconciler::ensureObject(const kube::ResourceRef& resource, const Json& desired,
                                        const TaskRef& task) {
  auto created = deps_.client.create(resource, desired);
  if (created.ok()) return created;
  const kube::ObjectKey key = kube::objectKeyOf(desired);
  const std::string what = resource.kind + " " + key.toString();
  if (!created.status().isAlreadyExists()) return created.status().annotate("creating " + what);
  auto existing = deps_.client.get(resource, key);
  if (!existing.ok()) return existing.status().annotate("reading " + what);
  if (!ownedBy(*existing, task)) {
    return failedPrecondition(what + " exists but is not labelled " + kTaskUidLabel + "=" +
                              task.uid + "; it was not created for this task");
  }
  if (isBeingDeleted(*existing)) {
    return unavailable(what + " is being deleted; it will be created again once it is gone");
  }
  return existing;
}

StatusOr<ReconcileResult> Reconciler::issue(Json& task) {
  auto spec = parseTaskSpec(task);
  if (!spec.ok()) return spec.status();
  auto deadline = taskDeadline(task, spec->ttl);
  if (!deadline.ok()) return deadline.status();
  const TimePoint now = deps_.now();
  if (spec->completed) {
    return end(task, {Phase::kSucceeded, "completed", "Completed",
                      "spec.completed was set before a credential was issued", now});
  }
  if (now >= *deadline) {
    return end(task,
               {Phase::kExpired, "deadline", "Expired",
                "the deadline " + formatRfc3339(*deadline) + " passed before issuance", *deadline});
  }
  const auto issuer = deps_.issuers.find(spec->credentialType);
  if (issuer == deps_.issuers.end()) {
    return failedPrecondition(std::string("no issuer is configured for ") +
                              credentialTypeName(spec->credentialType));
  }
  const TaskRef ref = taskRefOf(task);
  const TaskNames names = taskNames(ref.name, ref.uid);

  auto sa = ensureObject(kube::resources::kServiceAccounts,
                         buildServiceAccount(ref, names, spec->credentialType), ref);
  if (!sa.ok()) return sa.status();
  const Json role = buildRole(ref, names, spec->rules);
  auto storedRole = ensureObject(kube::resources::kRoles, role, ref);
  if (!storedRole.ok()) return storedRole.status();
  if (storedRole->value("rules", Json::array()) != role["rules"]) {
    Json next = *storedRole;
    next["rules"] = role["rules"];
    auto updated = deps_.client.update(kube::resources::kRoles, next);
    if (!updated.ok())
      return updated.status().annotate("updating the rules of Role " + names.role());
  }
  auto binding = ensureObject(kube::resources::kRoleBindings, buildRoleBinding(ref, names), ref);
  if (!binding.ok()) return binding.status();

  const TimePoint created =
      parseRfc3339(stringAt(task, {"metadata", "creationTimestamp"})).valueOr(now);
  auto credential =
      issuer->second->issue({ref, *spec, names, kube::uidOf(*sa), created, now, *deadline});
  if (!credential.ok()) return credential.status();

  const char* type = credentialTypeName(spec->credentialType);
  Json details = {{"type", type},
                  {"serviceAccount", names.serviceAccount()},
                  {"secret", names.secret()},
                  {"fingerprint", credential->fingerprint},
                  {"issuedAt", formatRfc3339(credential->issuedAt)},
                  {"expiresAt", formatRfc3339(credential->expiresAt)},
                  {"adopted", credential->adopted}};
  if (!credential->tokenId.empty()) details["tokenID"] = credential->tokenId;
  if (!credential->serial.empty()) details["serial"] = credential->serial;
  if (!credential->spiffeId.empty()) details["spiffeID"] = credential->spiffeId;
  recordOnce(EvidenceKind::kIssued, ref, kOperatorActor, details);

  const std::string message = std::string(type) + " for ServiceAccount " + names.serviceAccount() +
                              " in Secret " + names.secret() + ", expires at " +
                              formatRfc3339(credential->expiresAt);
  const int64_t generation = generationOf(task);
  Status s = writeStatus(task, [&](Json& st) {
    st["phase"] = phaseName(Phase::kActive);
    Json c = {{"type", type},
              {"serviceAccountName", names.serviceAccount()},
              {"secretName", names.secret()},
              {"issuedAt", formatRfc3339(credential->issuedAt)},
              {"expiresAt", formatRfc3339(credential->expiresAt)},
              {"fingerprint", credential->fingerprint}};
    if (!credential->tokenId.empty()) c["tokenID"] = credential->tokenId;
    if (!credential->serial.empty()) c["serial"] = credential->serial;
    if (!credential->spiffeId.empty()) c["spiffeID"] = credential->spiffeId;
    st["credential"] = c;
    setCondition(st, kConditionIssued, true, "Issued", message, generation, now);
    setCondition(st, kConditionRevoked, false, "NotRevoked", "the credential is in use", generation,
                 now);
    setCondition(st, kConditionReady, true, "Active", message, generation, now);
  });
  if (!s.ok()) return s;
  event(task, kube::EventType::kNormal, "CredentialIssued", message);
  countTransition(Phase::kActive);
  double issuance = secondsBetween(created, now);
  {
    std::lock_guard lock(mu_);
    const auto seen = firstSeen_.find(ref.uid);
    if (seen != firstSeen_.end()) {
      issuance = secondsBetween(seen->second, deps_.now());
      firstSeen_.erase(seen);
    }
  }
  if (deps_.metrics != nullptr) deps_.metrics->issuance.labels({type}).observe(issuance);
  // The workload Job waits for the pass that the status write's watch event brings: the
  // webhook's informer learns that the task is Active from the same watch, so by then it admits
  // the Job's pods instead of refusing them as made for a task that is not Active yet.
  return active(task, WorkloadStart::kNextPass);
}

// ---- Active ----

StatusOr<ReconcileResult> Reconciler::active(Json& task, WorkloadStart start) {
  auto spec = parseTaskSpec(task);
  if (!spec.ok()) return spec.status();
  auto deadline = taskDeadline(task, spec->ttl);
  if (!deadline.ok()) return deadline.status();
  const TimePoint now = deps_.now();
  const TaskRef ref = taskRefOf(task);

  if (spec->completed) {
    return end(task, {Phase::kSucceeded, "completed", "Completed", "spec.completed is true",
                      endingSince(ref.uid, now)});
  }
  const std::string jobName = stringAt(task, {"status", "workload", "jobName"});
  if (spec->workloadTemplate && !jobName.empty()) {
    kube::ObjectPtr job = deps_.view.job({ref.ns, jobName});
    std::optional<Json> found = job ? std::optional<Json>(*job) : std::nullopt;
    if (!found) {
      // Just created, perhaps, and not in the cache yet: ask the API server.
      auto read = deps_.client.get(kube::resources::kJobs, {ref.ns, jobName});
      if (!read.ok() && !read.status().isNotFound()) return read.status();
      if (read.ok()) found = *read;
    }
    if (!found) {
      return end(task, {Phase::kFailed, "workload", "WorkloadDeleted",
                        "the workload Job " + jobName + " was deleted", endingSince(ref.uid, now)});
    }
    const JobOutcome outcome = jobOutcome(*found);
    if (outcome == JobOutcome::kSucceeded) {
      return end(task, {Phase::kSucceeded, "workload", "WorkloadSucceeded",
                        "the workload Job " + jobName + " completed", endingSince(ref.uid, now)});
    }
    if (outcome == JobOutcome::kFailed) {
      return end(task, {Phase::kFailed, "workload", "WorkloadFailed",
                        "the workload Job " + jobName + " failed", endingSince(ref.uid, now)});
    }
  }
  if (now >= *deadline) {
    return end(task, {Phase::kExpired, "deadline", "Expired",
                      "the deadline " + formatRfc3339(*deadline) + " passed", *deadline});
  }
  if (spec->workloadTemplate && jobName.empty() && start == WorkloadStart::kNow &&
      !workloadJustStarted(ref.uid)) {
    auto started = startWorkload(task, *spec, *deadline);
    if (!started.ok()) return started.status();
    if (!*started) return ReconcileResult{kWebhookCatchUpRetry};
  }
  const auto left = std::chrono::duration_cast<milliseconds>(*deadline - now);
  return ReconcileResult{std::max(left, milliseconds(1))};
}

StatusOr<bool> Reconciler::startWorkload(Json& task, const TaskSpec& spec, TimePoint deadline) {
  const TaskRef ref = taskRefOf(task);
  const TaskNames names = taskNames(ref.name, ref.uid);
  const TimePoint now = deps_.now();
  auto job = buildJob(ref, names, *spec.workloadTemplate,
                      std::chrono::duration_cast<std::chrono::seconds>(deadline - now));
  if (!job.ok()) return job.status();
  auto created = deps_.client.create(kube::resources::kJobs, *job);
  if (!created.ok() && !created.status().isAlreadyExists()) {
    // An admission webhook that has not yet seen the task Active refuses the Job: just after
    // issuance that is the webhook catching up, tried again shortly and quietly. Any other
    // refusal is a Warning and retried with backoff, never taken as the task's failure.
    auto issuedAt = parseRfc3339(stringAt(task, {"status", "credential", "issuedAt"}));
    if (created.status().httpCode() == 403 &&
        created.status().message().find("admission webhook") != std::string::npos &&
        issuedAt.ok() && now - *issuedAt < kWebhookCatchUp) {
      logInfo("workload Job refused by admission just after issuance; trying again",
                {{"task", ref.ns + "/" + ref.name}, {"job", names.job()}});
      return false;
    }
    event(task, kube::EventType::kWarning, "WorkloadRefused",
          "creating Job " + names.job() + ": " + created.status().message());
    return created.status().annotate("creating the workload Job " + names.job());
  }
  Status s = writeStatus(task, [&](Json& st) { st["workload"] = {{"jobName", names.job()}}; });
  if (!s.ok()) return s;
  {
    std::lock_guard lock(mu_);
    const auto at = std::chrono::steady_clock::now();
    std::erase_if(workloadsStarted_,
                  [&](const auto& w) { return at - w.second > kWorkloadExpectation; });
    workloadsStarted_[ref.uid] = at;
  }
  event(task, kube::EventType::kNormal, "WorkloadStarted",
        "Job " + names.job() + " runs under ServiceAccount " + names.serviceAccount());
  return true;
}

bool Reconciler::workloadJustStarted(const std::string& uid) {
  std::lock_guard lock(mu_);
  const auto started = workloadsStarted_.find(uid);
  if (started == workloadsStarted_.end()) return false;
  if (std::chrono::steady_clock::now() - started->second <= kWorkloadExpectation) return true;
  workloadsStarted_.erase(started);
  return false;
}

Status Reconciler::stopWorkload(const Json& task) {
  const TaskRef ref = taskRefOf(task);
  const std::string jobName = taskNames(ref.name, ref.uid).job();
  kube::ObjectPtr job = deps_.view.job({ref.ns, jobName});
  if (!job || !ownedBy(*job, ref) || jobOutcome(*job) != JobOutcome::kRunning) return {};
  kube::DeleteOptions options;
  options.propagation = kube::PropagationPolicy::kBackground;
  Status s = deps_.client.remove(kube::resources::kJobs, {ref.ns, jobName}, options);
  if (!s.ok() && !s.isNotFound()) return s.annotate("stopping the workload Job " + jobName);
  return {};
}

StatusOr<ReconcileResult> Reconciler::end(Json& task, const Ending& ending) {
  const TaskRef ref = taskRefOf(task);
  const bool issued = !stringAt(task, {"status", "credential", "issuedAt"}).empty();
  recordOnce(ending.phase == Phase::kExpired ? EvidenceKind::kExpired : EvidenceKind::kCompleted,
             ref, kOperatorActor,
             {{"outcome", phaseName(ending.phase)},
              {"reason", ending.reason},
              {"message", ending.message}});
  if (ending.trigger != "workload") {
    Status stopped = stopWorkload(task);
    if (!stopped.ok()) return stopped;
  }
  // The task leaves Active before anything is revoked, so that nothing relies on the credential
  // from now on (the webhook's TL008 admits pods only under an Active task) however long a
  // finalizer holds one of its objects.
  const TimePoint now = deps_.now();
  const int64_t generation = generationOf(task);
  Status s = writeStatus(task, [&](Json& st) {
    st["phase"] = phaseName(Phase::kRevoking);
    st["revocation"] = revocationStatus(ending);
    setCondition(st, kConditionReady, false, ending.reason, ending.message, generation, now);
    if (issued) {
      setCondition(st, kConditionRevoked, false, "Revoking",
                   ending.message + "; the credential is being revoked", generation, now);
    }
  });
  if (!s.ok()) return s;
  event(task,
        ending.phase == Phase::kSucceeded ? kube::EventType::kNormal : kube::EventType::kWarning,
        ending.reason, ending.message);
  countTransition(Phase::kRevoking);
  return revoking(task);
}

StatusOr<ReconcileResult> Reconciler::revoking(Json& task) {
  const TaskRef ref = taskRefOf(task);
  const TimePoint started = deps_.now();
  const Ending ending = endingOf(task, started);
  auto spec = parseTaskSpec(task);
  const std::optional<CredentialType> type =
      spec.ok() ? std::optional<CredentialType>(spec->credentialType) : std::nullopt;
  const Json credential = objectAt(task, {"status", "credential"});
  auto revoked = revoke({ref, taskNames(ref.name, ref.uid), type, credential});
  if (!revoked)
    return ReconcileResult{.requeueAfter = std::nullopt,
                           .waiting = true};  // queued: back when it has run
  if (!revoked->ok()) return revoked->status();
  const RevocationReport& report = **revoked;
  if (!report.complete()) return held(task, report);
  {
    std::lock_guard lock(mu_);
    firstSeen_.erase(ref.uid);
    endingSeen_.erase(ref.uid);
    workloadsStarted_.erase(ref.uid);
  }
  const bool issued = !stringAt(credential, {"issuedAt"}).empty();
  const TimePoint now = deps_.now();
  const std::string message = ending.message + "; " + joinDeleted(report.deleted);
  if (issued || report.anything()) {
    recordOnce(EvidenceKind::kRevoked, ref, kOperatorActor,
               {{"reason", ending.reason},
                {"deleted", report.deleted},
                {"fingerprint", stringAt(credential, {"fingerprint"})},
                {"latencyMs", millisBetween(ending.since, now)}});
  }
  const int64_t generation = generationOf(task);
  Status s = writeStatus(task, [&](Json& st) {
    st["phase"] = phaseName(ending.phase);
    st["revocation"]["held"] = Json::array();
    if (issued) {
      st["credential"]["revokedAt"] = formatRfc3339(now);
      setCondition(st, kConditionRevoked, true, "Revoked", message, generation, now);
    } else {
      setCondition(st, kConditionIssued, false, "NotIssued", ending.message, generation, now);
    }
    setCondition(st, kConditionReady, false, ending.reason, message, generation, now);
  });
  if (!s.ok()) return s;
  if (issued) event(task, kube::EventType::kNormal, "CredentialRevoked", message);
  countTransition(ending.phase);
  if (deps_.metrics != nullptr && issued && type) {
    deps_.metrics->revocation.labels({credentialTypeName(*type), ending.trigger})
        .observe(secondsBetween(ending.since, now));
  }
  return ReconcileResult{};
}

StatusOr<ReconcileResult> Reconciler::held(Json& task, const RevocationReport& report) {
  std::string objects;
  Json heldObjects = Json::array();
  std::vector<std::string> gone = report.deleted;  // what went, the held objects aside
  for (const HeldObject& h : report.held) {
    objects += (objects.empty() ? "" : "; ") + h.describe();
    heldObjects.push_back(h.toJson());
    std::erase(gone, h.kind + "/" + h.name);
  }
  const std::string message =
      "revocation held up: still present after its deletion: " + objects +
      ". Everything else went ahead (" + joinDeleted(gone) +
      "); the deletion is retried with backoff and the revocation finishes once it is gone";
  const TimePoint now = deps_.now();
  const int64_t generation = generationOf(task);
  Status s = writeStatus(task, [&](Json& st) {
    st["revocation"]["held"] = heldObjects;
    setCondition(st, kConditionRevoked, false, "RevocationBlocked", message, generation, now);
  });
  if (!s.ok() && !s.isNotFound()) return s;
  event(task, kube::EventType::kWarning, "RevocationBlocked", message);
  return unavailable(message);
}

// ---- helpers ----

Json Reconciler::revocationStatus(const Ending& ending) {
  Json out = {{"reason", ending.reason},
              {"message", ending.message},
              {"startedAt", formatRfc3339(ending.since, /*millis=*/true)},
              {"held", Json::array()}};
  if (ending.phase != Phase::kNone) out["outcome"] = phaseName(ending.phase);
  return out;
}

Reconciler::Ending Reconciler::endingOf(const Json& task, TimePoint now) {
  const Json& revocation = objectAt(task, {"status", "revocation"});
  Ending ending{parsePhase(stringAt(revocation, {"outcome"})), "", stringAt(revocation, {"reason"}),
                stringAt(revocation, {"message"}),
                parseRfc3339(stringAt(revocation, {"startedAt"})).valueOr(now)};
  if (ending.reason.empty()) {
    // Revoking without a recorded ending (a status written by hand): it ends as failed.
    ending = {Phase::kFailed, "", "Revoked",
              "the task was Revoking without status.revocation saying why", now};
  }
  if (ending.phase == Phase::kNone && !isBeingDeleted(task)) ending.phase = Phase::kFailed;
  ending.trigger = triggerOf(ending.reason);
  return ending;
}

Status Reconciler::writeStatus(Json& task, const std::function<void(Json& status)>& change) {
  Json next = task;
  Json& status = next["status"];
  if (!status.is_object()) status = Json::object();
  change(status);
  status["observedGeneration"] = generationOf(task);
  if (next == task) return {};
  auto written = deps_.client.updateStatus(kAgentTasks, next);
  if (!written.ok()) {
    return written.status().annotate("writing the status of " + keyText(taskRefOf(task)));
  }
  task = std::move(*written);
  task["kind"] = kAgentTasks.kind;
  task["apiVersion"] = kAgentTasks.apiVersion();
  return {};
}

void Reconciler::recordOnce(EvidenceKind kind, const TaskRef& task, const std::string& actor,
                            Json details) {
  if (deps_.evidence == nullptr) return;
  const std::string key = task.uid + "/" + evidenceKindName(kind);
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (!recorded_.emplace(key, now).second) return;
    // A pass on a cache a step behind our own writes would repeat a record; that happens
    // within moments of the first, so marks older than this are let go.
    if (recorded_.size() % 1024 == 0) {
      std::erase_if(recorded_, [&](const auto& r) { return now - r.second > kRecordedMemory; });
    }
  }
  auto appended = deps_.evidence->append({kind, evidenceTask(task), actor, std::move(details)});
  if (!appended.ok()) {
    if (deps_.metrics != nullptr) deps_.metrics->evidenceErrors.labels({}).inc();
    logWarn("evidence record not fully written", {{"task", keyText(task)},
                                                  {"kind", evidenceKindName(kind)},
                                                  {"error", appended.status().toString()}});
  }
}

void Reconciler::event(const Json& task, kube::EventType type, const std::string& reason,
                       const std::string& message) {
  Status s = deps_.events.record(task, type, reason, message);
  if (!s.ok()) {
    logDebug("event not recorded",
             {{"task", keyText(taskRefOf(task))}, {"reason", reason}, {"error", s.toString()}});
  }
}

TimePoint Reconciler::endingSince(const std::string& uid, TimePoint now) {
  std::lock_guard lock(mu_);
  return std::min(now, endingSeen_.emplace(uid, now).first->second);
}

void Reconciler::countTransition(Phase phase) {
  if (deps_.metrics != nullptr) deps_.metrics->transitions.labels({phaseName(phase)}).inc();
}

}  // namespace tasklease::op
