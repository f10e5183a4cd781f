#include "webhook/rules.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

#include "common/delegation_stamp.h"
#include "webhook/agenttask.h"
#include "webhook/env_expansion.h"
#include "webhook/json_access.h"
#include "webhook/pod_references.h"
#include "webhook/review_meter.h"
#include "webhook/secret_detectors.h"

namespace tasklease::webhook {
namespace {

const std::vector<RuleInfo> kRules = {
    {RuleId::kTL001, "TL001", "secret-env", "env[].valueFrom.secretKeyRef"},
    {RuleId::kTL002, "TL002", "secret-envfrom", "envFrom[].secretRef"},
    {RuleId::kTL003, "TL003", "secret-volume",
     "a volume that reads a Secret (secret, projected.sources[].secret, csi.nodePublishSecretRef, "
     "the secretRef of cephfs, cinder, flexVolume, iscsi, rbd, scaleIO, storageos, "
     "azureFile.secretName), except the pod's own active task credential"},
    {RuleId::kTL004, "TL004", "literal-secret",
     "an env[].value, command or args element that is a secret once $(VAR) references are "
     "expanded (provider key formats, PEM private keys, JWTs, passwords in URLs, high-entropy "
     "values under secret-like names)"},
    {RuleId::kTL005, "TL005", "default-service-account", "no serviceAccountName, or default"},
    {RuleId::kTL006, "TL006", "shared-service-account",
     "a ServiceAccount neither issued for a task nor annotated tasklease.io/dedicated-to with the "
     "pod's own workload"},
    {RuleId::kTL007, "TL007", "long-lived-token",
     "a projected serviceAccountToken whose expirationSeconds exceeds the maximum"},
    {RuleId::kTL008, "TL008", "task-inactive",
     "a pod under a task's ServiceAccount whose task is not Active, without the label "
     "tasklease.io/task naming that task, or not made for that task (by its delegator, or its "
     "workload Job)"},
};

constexpr std::string_view kInstead =
    "Declare an AgentTask and run under the ServiceAccount and short-lived credential it is issued";

bool equalsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// "Deployment/web" names identity "Deployment/web" (kinds compared without case: kubectl
// users write deployment/web).
bool namesIdentity(std::string_view annotation, const std::string& identity) {
  size_t a = annotation.find('/');
  size_t b = identity.find('/');
  if (a == std::string_view::npos || b == std::string::npos) return false;
  return equalsIgnoreCase(annotation.substr(0, a), std::string_view(identity).substr(0, b)) &&
         annotation.substr(a + 1) == std::string_view(identity).substr(b + 1);
}

std::string inQuotes(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

bool isListed(const std::vector<std::string>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// names is sorted (PodUnderReview::onlyEphemeralContainers): a lookup per container stays
// logarithmic however many containers a hostile update lists.
bool isListedSorted(const std::vector<std::string>& names, std::string_view name) {
  return std::binary_search(names.begin(), names.end(), name);
}

// TL004 on one literal as written and, when the kubelet's $(VAR) expansion changes it, as the
// container will see it. *expandedHit says which one matched.
std::optional<SecretMatch> detectLiteral(std::string_view name, std::string_view raw,
                                         std::optional<std::string_view> seen, bool* expandedHit) {
  *expandedHit = false;
  if (auto hit = detectLiteralSecret(name, raw)) return hit;
  if (!seen || *seen == raw) return std::nullopt;
  auto hit = detectLiteralSecret(name, *seen);
  *expandedHit = hit.has_value();
  return hit;
}

// What a command or args element is called, for the detectors that need a name (a
// high-entropy value under a secret-like name): "--api-key=v" and "API_KEY=v" name their own
// value; a value after a lone flag ("--token", "v") takes the flag's name.
std::pair<std::string_view, std::string_view> argumentNameAndValue(std::string_view arg,
                                                                   std::string_view previous) {
  const size_t eq = arg.find('=');
  if (eq != std::string_view::npos && eq > 0) {
    std::string_view name = arg.substr(0, eq);
    const bool wordLike = std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
    });
    if (wordLike) {
      while (!name.empty() && name.front() == '-') name.remove_prefix(1);
      return {name, arg.substr(eq + 1)};
    }
  }
  if (previous.size() > 1 && previous.front() == '-' &&
      previous.find('=') == std::string_view::npos) {
    while (!previous.empty() && previous.front() == '-') previous.remove_prefix(1);
    return {previous, arg};
  }
  return {std::string_view(), arg};
}

std::string literalMessage(std::string_view cname, const std::string& what, const SecretMatch& hit,
                           bool expanded) {
  return "container " + inQuotes(cname) + " " + what + " holds " + hit.description +
         " as a literal value" +
         (expanded ? " once the kubelet expands its $(VAR) references" : std::string()) +
         " (detector " + hit.detector +
         "; value not shown). Remove it, revoke it if it was real, and use a credential issued "
         "for an AgentTask instead";
}

// TL004 once per pod when its values expand to more than tasklease judges (env_expansion.h).
void overBudget(ExpansionBudget& budget, bool* reported, std::string path, PodFindings& out) {
  if (!budget.exhausted() || *reported) return;
  *reported = true;
  out.violations.push_back(
      {RuleId::kTL004, std::move(path),
       "the pod's env values, command and args expand ($(VAR) references) to more than " +
           std::to_string(kMaxExpandedBytesPerPod >> 20) +
           " MiB, more than tasklease judges (what lies beyond could hide a secret); no working "
           "pod needs that much: shorten them"});
}

// TL001, TL002 and TL004 over one container list.
void checkContainerList(const PodUnderReview& pod, std::string_view list,
                        const JsonView& containers, ExpansionBudget& budget, bool* budgetReported,
                        PodFindings& out) {
  constexpr std::array<std::string_view, 5> kContainerKeys = {"name", "env", "envFrom", "command",
                                                              "args"};
  constexpr std::array<std::string_view, 3> kEnvKeys = {"name", "valueFrom", "value"};
  containers.forEach([&](size_t i, const JsonView& c) {
    // Named views, not a structured binding: lambdas below use them, which clang before 16
    // refuses for structured bindings (the fuzz targets are built with clang).
    const std::array<JsonView, kContainerKeys.size()> containerMembers = c.members(kContainerKeys);
    const JsonView& nameNode = containerMembers[0];
    const JsonView& envNode = containerMembers[1];
    const JsonView& envFromNode = containerMembers[2];
    const JsonView& commandNode = containerMembers[3];
    const JsonView& argsNode = containerMembers[4];
    std::string_view cname = nameNode.string();
    if (pod.onlyEphemeralContainers && !isListedSorted(*pod.onlyEphemeralContainers, cname)) {
      return;
    }
    // Paths are built only for violations: most containers have none.
    auto cpath = [&] { return indexPath(pod.specPath + "." + std::string(list), i); };
    // The kubelet's environment, built only at the first `$` (most containers have none, and
    // without one expansion changes nothing), from the env entries declared before it.
    std::optional<ContainerEnvironment> environment;
    auto declare = [&](std::string_view name, const JsonView& valueFrom, std::string_view raw) {
      // As the kubelet: a non-empty value is expanded, else valueFrom decides (unknown here).
      if (raw.empty() && valueFrom.present()) {
        environment->declareUnknown(name);
        return std::optional<std::string_view>(raw);
      }
      return environment->declare(name, raw);
    };
    auto buildEnvironment = [&](size_t entries) {
      environment.emplace(budget);
      envNode.forEach([&](size_t j, const JsonView& e) {
        if (j >= entries) return;
        const auto [envName, valueFrom, value] = e.members(kEnvKeys);
        declare(envName.string(), valueFrom, value.string());
      });
    };
    envNode.forEach([&](size_t j, const JsonView& e) {
      const auto [envName, valueFrom, value] = e.members(kEnvKeys);
      std::string_view name = envName.string();
      if (JsonView ref = valueFrom.member("secretKeyRef"); ref.present()) {
        out.violations.push_back(
            {RuleId::kTL001, indexPath(cpath() + ".env", j),
             "container " + inQuotes(cname) + " reads env " + inQuotes(name) + " from Secret " +
                 inQuotes(ref.member("name").string()) +
                 " (secretKeyRef): a static secret outlives the task that uses it. " +
                 std::string(kInstead) + ", or approve an IdentityException for TL001"});
      }
      const std::string_view raw = value.string();
      if (!environment && raw.find('$') != std::string_view::npos) buildEnvironment(j);
      std::optional<std::string_view> seen = raw;
      if (environment) seen = declare(name, valueFrom, raw);
      if (!seen) overBudget(budget, budgetReported, indexPath(cpath() + ".env", j), out);
      bool expanded = false;
      if (auto hit = detectLiteral(name, raw, seen, &expanded)) {
        out.violations.push_back({RuleId::kTL004, indexPath(cpath() + ".env", j),
                                  literalMessage(cname, "env " + inQuotes(name), *hit, expanded)});
      }
      noteIfReviewSpent([&] {
        return "the literal-secret detectors (TL004) on " + indexPath(cpath() + ".env", j) +
               ".value (" + std::to_string(raw.size()) + " bytes)";
      });
    });
    envFromNode.forEach([&](size_t j, const JsonView& from) {
      JsonView ref = from.member("secretRef");
      if (!ref.present()) return;
      out.violations.push_back(
          {RuleId::kTL002, indexPath(cpath() + ".envFrom", j),
           "container " + inQuotes(cname) + " imports every key of Secret " +
               inQuotes(ref.member("name").string()) + " as environment (envFrom.secretRef). " +
               std::string(kInstead) + ", or approve an IdentityException for TL002"});
    });
    // Tokens are passed on the command line as often as in env: the same detectors, after the
    // same expansion (against every variable), and the same rule of never showing the value.
    const std::array<std::pair<std::string_view, JsonView>, 2> lines = {
        {{"command", commandNode}, {"args", argsNode}}};
    for (const auto& line : lines) {
      const std::string_view key = line.first;
      const JsonView& node = line.second;
      std::string_view previousRaw, previousSeen;
      node.forEach([&](size_t k, const JsonView& a) {
        const std::string_view raw = a.string();
        std::optional<std::string_view> seen = raw;
        if (raw.find('$') != std::string_view::npos) {
          if (!environment) buildEnvironment(std::numeric_limits<size_t>::max());
          seen = environment->expand(raw);
        }
        auto path = [&, key = key] { return indexPath(cpath() + "." + std::string(key), k); };
        if (!seen) overBudget(budget, budgetReported, path(), out);
        const auto [rawName, rawValue] = argumentNameAndValue(raw, previousRaw);
        std::optional<SecretMatch> hit = detectLiteralSecret(rawName, rawValue);
        bool expanded = false;
        if (!hit && seen && *seen != raw) {
          const auto [name, value] = argumentNameAndValue(*seen, previousSeen);
          hit = detectLiteralSecret(name, value);
          expanded = hit.has_value();
        }
        previousRaw = raw;
        previousSeen = seen.value_or(raw);
        if (hit) {
          out.violations.push_back(
              {RuleId::kTL004, path(),
               literalMessage(cname, std::string(key) + "[" + std::to_string(k) + "]", *hit,
                              expanded)});
        }
        noteIfReviewSpent([&] {
          return "the literal-secret detectors (TL004) on " + path() + " (" +
                 std::to_string(raw.size()) + " bytes)";
        });
      });
    }
  });
}

void checkContainers(const PodUnderReview& pod, PodFindings& out) {
  ExpansionBudget budget;  // one for the whole pod: every container's expansions together
  bool budgetReported = false;
  for (std::string_view list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (pod.onlyEphemeralContainers && list != "ephemeralContainers") continue;
    checkContainerList(pod, list, pod.spec.member(list), budget, &budgetReported, out);
  }
}

// What TL008 found about the pod's task, and whether the pod may mount the task's credential.
struct TaskCheck {
  bool credentialUsable = false;
  std::string credentialSecret;
  std::string whyNot;  // why the credential may not be mounted
};

// Whether `who` is one of the pod creators the policy that allowed the task names, as the
// operator copied them into status.policy.podCreators.
bool isPolicyPodCreator(const Json& status, const RequestUser& who) {
  for (const Json& c : arrayMember(objectMember(status, "policy"), "podCreators")) {
    std::string_view kind = stringMember(c, "kind"), name = stringMember(c, "name");
    if (name.empty()) continue;
    if (kind == "User" && who.username == name) return true;
    if (kind == "ServiceAccount" && who.username.starts_with("system:serviceaccount:") &&
        who.username == "system:serviceaccount:" + std::string(stringMember(c, "namespace")) +
                            ":" + std::string(name)) {
      return true;
    }
    if (kind == "Group" && who.groups != nullptr &&
        std::find(who.groups->begin(), who.groups->end(), name) != who.groups->end()) {
      return true;
    }
  }
  return false;
}

// Whether the object was made for the task whose ServiceAccount it runs under (docs/rules.md,
// TL008): by the task's delegator (the stamped requester, username and uid) or a pod creator the
// allowing policy names; a Pod by the Job controller for the task's workload Job; that Job by the
// operator. Empty when it was, else what is wrong. Ephemeral containers are added by users
// only: only the delegator may add them.
std::string notMadeForTask(const PodUnderReview& pod, const Json& task, const std::string& taskName,
                           const std::string& sa, const RuleConfig& config) {
  const RequestUser& who = *pod.requester;
  const Json& meta = objectMember(task, "metadata");
  auto delegator = parseRequestedBy(annotationOf(meta, kRequestedByAnnotation));
  if (delegator.ok() && !delegator->username.empty() && delegator->username == who.username &&
      delegator->uid == who.uid) {
    return "";
  }
  const Json& status = objectMember(task, "status");
  if (!pod.onlyEphemeralContainers && isPolicyPodCreator(status, who)) return "";
  // The operator names the task's Job as its ServiceAccount (operator/naming.h) and records it
  // in status.workload.jobName, which its informer may not show yet when the first pod comes.
  std::string_view job = stringMember(objectMember(status, "workload"), "jobName");
  if (job.empty()) job = stringMember(objectMember(status, "credential"), "serviceAccountName");
  if (!pod.onlyEphemeralContainers && pod.controller) {
    const OwnerReference& owner = *pod.controller;
    if (pod.kind == "Pod" && owner.kind == "Job" && owner.apiVersion.starts_with("batch/") &&
        !job.empty() && owner.name == job &&
        isListed(config.jobControllerUsernames, who.username)) {
      return "";
    }
    if (pod.kind == "Job" && owner.kind == kAgentTaskKind &&
        owner.apiVersion.starts_with("tasklease.io/") && !owner.uid.empty() &&
        owner.uid == stringMember(meta, "uid") &&
        isListed(config.operatorUsernames, who.username)) {
      return "";
    }
  }
  const std::string delegatedBy =
      delegator.ok() ? inQuotes(delegator->username) : std::string("an unknown user");
  return std::string(pod.onlyEphemeralContainers ? "ephemeral containers are added to a pod"
                                                 : pod.kind + " " + inQuotes(pod.name) + " runs") +
         " under ServiceAccount " + inQuotes(sa) + " of AgentTask " + inQuotes(taskName) +
         ", delegated by " + delegatedBy + ", by " + inQuotes(who.username) +
         ": a task's credential serves only what is made for that task (pods its delegator "
         "or a pod creator its AgentPolicy names creates, the pods the Job controller creates "
         "for its workload Job " +
         inQuotes(job) + ", and that Job, created by the tasklease operator). Create it as " +
         delegatedBy + ", or run it through the task's spec.workload";
}

TaskCheck checkTask(const PodUnderReview& pod, const std::string& sa, const Json& saObject,
                    const ClusterState& state, const RuleConfig& config, TimePoint now,
                    PodFindings& out) {
  TaskCheck result;
  const Json& saMeta = objectMember(saObject, "metadata");
  const std::string taskName(labelOf(saMeta, kTaskLabel));
  const std::string saTaskUid(labelOf(saMeta, kTaskUidLabel));
  out.task = TaskBinding{taskName, saTaskUid};
  const std::string saPath = pod.specPath + ".serviceAccountName";
  auto violate = [&](std::string path, std::string message) {
    if (result.whyNot.empty()) result.whyNot = message;
    out.violations.push_back({RuleId::kTL008, std::move(path), std::move(message)});
  };

  if (pod.labels.member(kTaskLabel).string() != taskName) {
    violate(pod.labelsPath + "[" + std::string(kTaskLabel) + "]",
            "the pod runs under ServiceAccount " + inQuotes(sa) + " of AgentTask " +
                inQuotes(taskName) + " but is not labelled " + std::string(kTaskLabel) + ": " +
                taskName + "; add the label so the pod is tied to its task");
  }

  Lookup task = state.agentTask(pod.ns, taskName);
  if (task.state == LookupState::kUnknown) {
    out.notes.push_back({RuleId::kTL008, saPath,
                         "AgentTask " + pod.ns + "/" + taskName +
                             " is not known here, so whether it is Active was not checked"});
    result.whyNot = "AgentTask " + inQuotes(taskName) + " is not known here";
    return result;
  }
  if (task.state == LookupState::kAbsent) {
    violate(saPath, "ServiceAccount " + inQuotes(sa) + " was issued for AgentTask " +
                        inQuotes(taskName) +
                        ", which no longer exists; create a new AgentTask for this work");
    return result;
  }
  const Json& taskMeta = objectMember(task.get(), "metadata");
  const Json& status = objectMember(task.get(), "status");
  const Json& credential = objectMember(status, "credential");
  std::string_view phase = stringMember(status, "phase");
  if (!saTaskUid.empty() && saTaskUid != stringMember(taskMeta, "uid")) {
    violate(saPath, "ServiceAccount " + inQuotes(sa) +
                        " was issued for an earlier AgentTask named " + inQuotes(taskName) +
                        " (uid " + saTaskUid +
                        "); the current one is a different task. Use its own ServiceAccount");
  }
  std::string_view issuedSa = stringMember(credential, "serviceAccountName");
  if (!issuedSa.empty() && issuedSa != sa) {
    violate(saPath, "ServiceAccount " + inQuotes(sa) + " claims AgentTask " + inQuotes(taskName) +
                        " but that task's credential is ServiceAccount " + inQuotes(issuedSa) +
                        "; run under " + inQuotes(issuedSa));
  }
  if (phase != "Active") {
    violate(saPath, "AgentTask " + inQuotes(taskName) + " is " +
                        (phase.empty() ? std::string("not yet decided") : std::string(phase)) +
                        ", not Active: pods may run under its ServiceAccount only while it is "
                        "Active");
  } else if (auto expires = parseRfc3339(stringMember(credential, "expiresAt"));
             expires.ok() && *expires <= now) {
    violate(saPath, "the credential of AgentTask " + inQuotes(taskName) + " expired at " +
                        std::string(stringMember(credential, "expiresAt")) +
                        "; create a new AgentTask to continue");
  }
  if (!pod.requester) {
    out.notes.push_back({RuleId::kTL008, saPath,
                         "who creates it is not known here, so whether it is made for AgentTask " +
                             inQuotes(taskName) + " was not checked"});
  } else if (std::string why = notMadeForTask(pod, task.get(), taskName, sa, config);
             !why.empty()) {
    violate(saPath, std::move(why));
  }
  if (result.whyNot.empty()) {
    result.credentialSecret = std::string(stringMember(credential, "secretName"));
    result.credentialUsable = !result.credentialSecret.empty();
    if (!result.credentialUsable) {
      result.whyNot = "AgentTask " + inQuotes(taskName) + " has no credential Secret in its status";
    }
  }
  return result;
}

void checkServiceAccount(const PodUnderReview& pod, const ClusterState& state,
                         const RuleConfig& config, TimePoint now, PodFindings& out,
                         TaskCheck& task) {
  std::string_view sa = pod.spec.member("serviceAccountName").string();
  std::string path = pod.specPath + ".serviceAccountName";
  if (sa.empty()) {
    // The deprecated field still decides when the current one is unset.
    sa = pod.spec.member("serviceAccount").string();
    if (!sa.empty()) path = pod.specPath + ".serviceAccount";
  }
  out.serviceAccountName = sa.empty() ? "default" : std::string(sa);
  if (sa.empty() || sa == "default") {
    out.violations.push_back(
        {RuleId::kTL005, path,
         std::string(sa.empty() ? "no serviceAccountName is set, so the pod runs as "
                                  "ServiceAccount \"default\""
                                : "the pod runs as ServiceAccount \"default\"") +
             ", which every pod in the namespace shares. " + std::string(kInstead) +
             ", or create a ServiceAccount for this workload alone and annotate it " +
             std::string(kDedicatedToAnnotation) + ": " +
             (pod.identities.empty() ? std::string("<Kind>/<name>") : pod.identities.front())});
    task.whyNot = "the pod runs under the default ServiceAccount";
    return;
  }
  Lookup found = state.serviceAccount(pod.ns, sa);
  if (found.state == LookupState::kUnknown) {
    out.notes.push_back({RuleId::kTL006, path,
                         "ServiceAccount " + pod.ns + "/" + std::string(sa) +
                             " is not known here, so whether it is shared was not checked"});
    task.whyNot = "ServiceAccount " + inQuotes(sa) + " is not known here";
    return;
  }
  if (found.state == LookupState::kAbsent) {
    out.violations.push_back({RuleId::kTL006, path,
                              "ServiceAccount " + inQuotes(sa) + " does not exist in namespace " +
                                  pod.ns + "; create it (dedicated to this workload) first"});
    task.whyNot = "ServiceAccount " + inQuotes(sa) + " does not exist";
    return;
  }
  const Json& meta = objectMember(found.get(), "metadata");
  if (!labelOf(meta, kTaskLabel).empty() && labelOf(meta, kManagedByLabel) == kManagedByValue) {
    task = checkTask(pod, std::string(sa), found.get(), state, config, now, out);
    return;
  }
  task.whyNot = "ServiceAccount " + inQuotes(sa) + " was not issued for an AgentTask";
  std::string_view dedicated = annotationOf(meta, kDedicatedToAnnotation);
  std::string own = pod.identities.empty() ? std::string("<Kind>/<name>") : pod.identities.front();
  if (dedicated.empty()) {
    out.violations.push_back({RuleId::kTL006, path,
                              "ServiceAccount " + inQuotes(sa) +
                                  " is neither issued for an AgentTask nor dedicated to one "
                                  "workload. Annotate it " +
                                  std::string(kDedicatedToAnnotation) + ": " + own +
                                  " if only this workload uses it, or run under an AgentTask's "
                                  "ServiceAccount"});
    return;
  }
  bool ours = std::any_of(pod.identities.begin(), pod.identities.end(),
                          [&](const std::string& id) { return namesIdentity(dedicated, id); });
  if (!ours) {
    out.violations.push_back({RuleId::kTL006, path,
                              "ServiceAccount " + inQuotes(sa) + " is dedicated to " +
                                  std::string(dedicated) + ", not to this workload (" + own +
                                  "); give this workload its own ServiceAccount"});
  }
}

// Ephemeral containers run with the pod's volumes, the task credential included: on a pod under
// a task's ServiceAccount only the task's delegator may add them (TL008).
void checkEphemeralContainersUnderATask(const PodUnderReview& pod, const ClusterState& state,
                                        const RuleConfig& config, PodFindings& out) {
  std::string_view sa = pod.spec.member("serviceAccountName").string();
  if (sa.empty()) sa = pod.spec.member("serviceAccount").string();
  if (sa.empty() || !pod.requester) return;
  const Json& saMeta = objectMember(state.serviceAccount(pod.ns, sa).get(), "metadata");
  const std::string taskName(labelOf(saMeta, kTaskLabel));
  if (taskName.empty() || labelOf(saMeta, kManagedByLabel) != kManagedByValue) return;
  out.serviceAccountName = std::string(sa);
  out.task = TaskBinding{taskName, std::string(labelOf(saMeta, kTaskUidLabel))};
  Lookup task = state.agentTask(pod.ns, taskName);
  if (!task.found()) return;  // the task is gone: its credential was revoked with it
  if (std::string why = notMadeForTask(pod, task.get(), taskName, std::string(sa), config);
      !why.empty()) {
    out.violations.push_back({RuleId::kTL008, pod.specPath + ".ephemeralContainers", why});
  }
}

// The API server's ServiceAccount admission adds a volume "kube-api-access-<random>" with a
// token of 3607 s to every pod that automounts one, before validating webhooks run. It is not
// the workload's own choice, and flagging it would reject every such pod; turning automount off
// (automountServiceAccountToken: false) is the way to be rid of it (docs/rules.md, TL007).
bool isApiServerTokenVolume(const JsonView& volume, int64_t seconds) {
  return seconds == 3607 && volume.member("name").string().starts_with("kube-api-access-");
}

// A task's workload template: the operator replaces its volume of this name with the credential.
bool replacedByTheOperator(const PodUnderReview& pod, const JsonView& volume) {
  return pod.taskWorkloadTemplate && volume.member("name").string() == kCredentialVolumeName;
}

void checkVolumes(const PodUnderReview& pod, const RuleConfig& config, const TaskCheck& task,
                  PodFindings& out) {
  const JsonView volumes = pod.spec.member("volumes");
  forEachVolumeReference(volumes, [&](const VolumeReference& r) {
    if (r.kind != ReferencedKind::kSecret) return;
    if (task.credentialUsable && r.name == task.credentialSecret) return;
    if (replacedByTheOperator(pod, r.volumeNode)) return;
    std::string why =
        task.whyNot.empty() ? std::string() : " (not the task credential: " + task.whyNot + ")";
    const bool wholeSecret = r.field.empty();
    out.violations.push_back(
        {RuleId::kTL003, r.path(pod.specPath),
         "volume " + std::string(wholeSecret ? "mounts" : "reads") + " Secret " + inQuotes(r.name) +
             (wholeSecret ? std::string() : " (" + std::string(r.field.substr(1)) + ")") + why +
             ": a static secret outlives the task that uses it. " + std::string(kInstead) +
             " (its credential Secret may be mounted while the task is Active), or approve an "
             "IdentityException for TL003"});
  });
  volumes.forEach([&](size_t k, const JsonView& v) {
    if (replacedByTheOperator(pod, v)) return;
    const auto vpath = [&] { return indexPath(pod.specPath + ".volumes", k); };
    v.member("projected").member("sources").forEach([&](size_t m, const JsonView& source) {
      JsonView token = source.member("serviceAccountToken");
      if (!token.present()) return;
      const auto spath = [&] { return indexPath(vpath() + ".projected.sources", m); };
      JsonView exp = token.member("expirationSeconds");
      // The API server's default lifetime for a projected token is one hour.
      int64_t seconds = 3600;
      const auto epath = [&] { return spath() + ".serviceAccountToken.expirationSeconds"; };
      if (std::optional<int64_t> given = exp.integer()) {
        seconds = *given;
      } else if (exp.present()) {
        out.violations.push_back({RuleId::kTL007, epath(), "expirationSeconds is not an integer"});
        return;
      }
      if (seconds > config.maxTokenExpirationSeconds && !isApiServerTokenVolume(v, seconds)) {
        out.violations.push_back(
            {RuleId::kTL007, epath(),
             "a projected ServiceAccount token lives " + std::to_string(seconds) +
                 " s, more than the allowed " + std::to_string(config.maxTokenExpirationSeconds) +
                 " s" + (exp.present() ? "" : " (the default when expirationSeconds is unset)") +
                 "; set expirationSeconds to at most " +
                 std::to_string(config.maxTokenExpirationSeconds)});
      }
    });
  });
}

// Which parts of a value podSpecAsRulesRead keeps: everything, only some members (each with
// its own rule), or each element of an array by one rule. A value whose type does not match its
// rule is kept whole: a change of type is a change.
struct Keep {
  bool all = false;
  std::vector<std::pair<std::string_view, const Keep*>> members;
  const Keep* items = nullptr;
};

const Keep kAll{true, {}, nullptr};
const Keep kContainer{
    false,
    {{"name", &kAll}, {"env", &kAll}, {"envFrom", &kAll}, {"command", &kAll}, {"args", &kAll}},
    nullptr};
const Keep kContainers{false, {}, &kContainer};
// Every volume source that can name a Secret (pod_references.h), projected tokens (TL007)
// among them.
const Keep& volumeKeep() {
  static const Keep kVolume = [] {
    Keep k;
    k.members.emplace_back("name", &kAll);
    for (std::string_view source : volumeSourcesNamingObjects())
      k.members.emplace_back(source, &kAll);
    return k;
  }();
  return kVolume;
}
const Keep kVolumes{false, {}, &volumeKeep()};
const Keep kPodSpec{false,
                    {{"serviceAccountName", &kAll},
                     {"serviceAccount", &kAll},
                     {"containers", &kContainers},
                     {"initContainers", &kContainers},
                     {"ephemeralContainers", &kContainers},
                     {"volumes", &kVolumes}},
                    nullptr};

Json kept(const JsonView& value, const Keep& keep) {
  if (keep.all) return value.toJson();
  if (keep.items != nullptr && value.isArray()) {
    Json out = Json::array();
    value.forEach([&](size_t, const JsonView& item) { out.push_back(kept(item, *keep.items)); });
    return out;
  }
  if (keep.items == nullptr && value.isObject()) {
    Json out = Json::object();
    value.forEachMember([&](std::string_view key, const JsonView& member) {
      for (const auto& [name, rule] : keep.members) {
        if (key == name) out[std::string(key)] = kept(member, *rule);  // the last repeat wins
      }
    });
    return out;
  }
  return value.toJson();
}

}  // namespace

const std::vector<RuleInfo>& allRules() {
  return kRules;
}

const RuleInfo& ruleInfo(RuleId id) {
  return kRules[static_cast<size_t>(id)];
}

std::string_view ruleCode(RuleId id) {
  return ruleInfo(id).code;
}

std::optional<RuleId> parseRuleId(std::string_view code) {
  for (const auto& r : kRules) {
    if (r.code == code) return r.id;
  }
  return std::nullopt;
}

const std::vector<RuleId>& taskWorkloadTemplateRules() {
  static const std::vector<RuleId> kRules = {RuleId::kTL001, RuleId::kTL002, RuleId::kTL003,
                                             RuleId::kTL004, RuleId::kTL007};
  return kRules;
}

const std::vector<RuleId>& rulesTheOperatorMakesTrue() {
  static const std::vector<RuleId> kRules = {RuleId::kTL005, RuleId::kTL006, RuleId::kTL008};
  return kRules;
}

PodFindings checkPod(const PodUnderReview& pod, const ClusterState& state, const RuleConfig& config,
                     TimePoint now) {
  PodFindings out;
  checkContainers(pod, out);
  if (pod.onlyEphemeralContainers) {
    checkEphemeralContainersUnderATask(pod, state, config, out);
    return out;
  }
  TaskCheck task;
  // A task's workload template gets its ServiceAccount and task label from the operator.
  if (!pod.taskWorkloadTemplate) checkServiceAccount(pod, state, config, now, out, task);
  checkVolumes(pod, config, task, out);
  std::stable_sort(out.violations.begin(), out.violations.end(),
                   [](const Violation& a, const Violation& b) { return a.rule < b.rule; });
  return out;
}

Json podSpecAsRulesRead(const JsonView& spec) {
  return kept(spec, kPodSpec);
}

}  // namespace tasklease::webhook
