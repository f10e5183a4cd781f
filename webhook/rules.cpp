#include "webhook/rules.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "webhook/json_access.h"
#include "webhook/secret_detectors.h"

namespace tasklease::webhook {
namespace {

const std::vector<RuleInfo> kRules = {
    {RuleId::kTL001, "TL001", "secret-env", "env[].valueFrom.secretKeyRef"},
    {RuleId::kTL002, "TL002", "secret-envfrom", "envFrom[].secretRef"},
    {RuleId::kTL003, "TL003", "secret-volume",
     "volumes[].secret and projected.sources[].secret, except the pod's own active task "
     "credential"},
    {RuleId::kTL004, "TL004", "literal-secret",
     "an env[].value that is a secret (provider key formats, PEM private keys, JWTs, passwords in "
     "URLs, high-entropy values under secret-like names)"},
    {RuleId::kTL005, "TL005", "default-service-account", "no serviceAccountName, or default"},
    {RuleId::kTL006, "TL006", "shared-service-account",
     "a ServiceAccount neither issued for a task nor annotated tasklease.io/dedicated-to with the "
     "pod's own workload"},
    {RuleId::kTL007, "TL007", "long-lived-token",
     "a projected serviceAccountToken whose expirationSeconds exceeds the maximum"},
    {RuleId::kTL008, "TL008", "task-inactive",
     "a pod under a task's ServiceAccount whose task is not Active, or without the label "
     "tasklease.io/task naming that task"},
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

// TL001, TL002 and TL004 over one container list.
void checkContainerList(const PodUnderReview& pod, std::string_view list,
                        const JsonView& containers, PodFindings& out) {
  constexpr std::array<std::string_view, 3> kContainerKeys = {"name", "env", "envFrom"};
  constexpr std::array<std::string_view, 3> kEnvKeys = {"name", "valueFrom", "value"};
  containers.forEach([&](size_t i, const JsonView& c) {
    const auto [nameNode, envNode, envFromNode] = c.members(kContainerKeys);
    std::string_view cname = nameNode.string();
    if (pod.onlyEphemeralContainers && !isListed(*pod.onlyEphemeralContainers, cname)) return;
    // Paths are built only for violations: most containers have none.
    auto cpath = [&] { return indexPath(pod.specPath + "." + std::string(list), i); };
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
      if (value.isString()) {
        if (auto hit = detectLiteralSecret(name, value.string())) {
          out.violations.push_back(
              {RuleId::kTL004, indexPath(cpath() + ".env", j),
               "container " + inQuotes(cname) + " env " + inQuotes(name) + " holds " +
                   hit->description + " as a literal value (detector " + hit->detector +
                   "; value not shown). Remove it, revoke it if it was real, and use a "
                   "credential issued for an AgentTask instead"});
        }
      }
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
  });
}

void checkContainers(const PodUnderReview& pod, PodFindings& out) {
  for (std::string_view list : {"containers", "initContainers", "ephemeralContainers"}) {
    if (pod.onlyEphemeralContainers && list != "ephemeralContainers") continue;
    checkContainerList(pod, list, pod.spec.member(list), out);
  }
}

// What TL008 found about the pod's task, and whether the pod may mount the task's credential.
struct TaskCheck {
  bool credentialUsable = false;
  std::string credentialSecret;
  std::string whyNot;  // why the credential may not be mounted
};

TaskCheck checkTask(const PodUnderReview& pod, const std::string& sa, const Json& saObject,
                    const ClusterState& state, TimePoint now, PodFindings& out) {
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
  if (result.whyNot.empty()) {
    result.credentialSecret = std::string(stringMember(credential, "secretName"));
    result.credentialUsable = !result.credentialSecret.empty();
    if (!result.credentialUsable) {
      result.whyNot = "AgentTask " + inQuotes(taskName) + " has no credential Secret in its status";
    }
  }
  return result;
}

void checkServiceAccount(const PodUnderReview& pod, const ClusterState& state, TimePoint now,
                         PodFindings& out, TaskCheck& task) {
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
    task = checkTask(pod, std::string(sa), found.get(), state, now, out);
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

// The API server's ServiceAccount admission adds a volume "kube-api-access-<random>" with a
// token of 3607 s to every pod that automounts one, before validating webhooks run. It is not
// the workload's own choice, and flagging it would reject every such pod; turning automount off
// (automountServiceAccountToken: false) is the way to be rid of it (docs/rules.md, TL007).
bool isApiServerTokenVolume(const JsonView& volume, int64_t seconds) {
  return seconds == 3607 && volume.member("name").string().starts_with("kube-api-access-");
}

void checkVolumes(const PodUnderReview& pod, const RuleConfig& config, const TaskCheck& task,
                  PodFindings& out) {
  auto secretVolume = [&](std::string path, std::string_view secretName) {
    if (task.credentialUsable && secretName == task.credentialSecret) return;
    std::string why =
        task.whyNot.empty() ? std::string() : " (not the task credential: " + task.whyNot + ")";
    out.violations.push_back(
        {RuleId::kTL003, std::move(path),
         "volume mounts Secret " + inQuotes(secretName) + why +
             ": a static secret outlives the task that uses it. " + std::string(kInstead) +
             " (its credential Secret may be mounted while the task is Active), or approve an "
             "IdentityException for TL003"});
  };
  pod.spec.member("volumes").forEach([&](size_t k, const JsonView& v) {
    const auto vpath = [&] { return indexPath(pod.specPath + ".volumes", k); };
    if (JsonView secret = v.member("secret"); secret.present()) {
      secretVolume(vpath(), secret.member("secretName").string());
    }
    v.member("projected").member("sources").forEach([&](size_t m, const JsonView& source) {
      const auto spath = [&] { return indexPath(vpath() + ".projected.sources", m); };
      if (JsonView secret = source.member("secret"); secret.present()) {
        secretVolume(spath(), secret.member("name").string());
      }
      JsonView token = source.member("serviceAccountToken");
      if (!token.present()) return;
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
const Keep kContainer{false, {{"name", &kAll}, {"env", &kAll}, {"envFrom", &kAll}}, nullptr};
const Keep kContainers{false, {}, &kContainer};
const Keep kVolume{false, {{"name", &kAll}, {"secret", &kAll}, {"projected", &kAll}}, nullptr};
const Keep kVolumes{false, {}, &kVolume};
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

PodFindings checkPod(const PodUnderReview& pod, const ClusterState& state, const RuleConfig& config,
                     TimePoint now) {
  PodFindings out;
  checkContainers(pod, out);
  if (pod.onlyEphemeralContainers) return out;
  TaskCheck task;
  checkServiceAccount(pod, state, now, out, task);
  checkVolumes(pod, config, task, out);
  std::stable_sort(out.violations.begin(), out.violations.end(),
                   [](const Violation& a, const Violation& b) { return a.rule < b.rule; });
  return out;
}

Json podSpecAsRulesRead(const JsonView& spec) {
  return kept(spec, kPodSpec);
}

}  // namespace tasklease::webhook
