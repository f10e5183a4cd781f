#pragma once
// The pod rules TL001–TL008 (DESIGN.md §4, docs/rules.md) as pure functions: a pod spec and
// what the cluster knows in, violations out. Admission, enforcement modes, exceptions and HTTP
// are layered on top (policy.h, admission.h); the rules never see them.
//
//   PodFindings f = checkPod(pod, clusterState, RuleConfig{}, now);
//   for (const Violation& v : f.violations) ...  // v.rule, v.path, v.message

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/rfc3339.h"
#include "webhook/cluster_state.h"
#include "webhook/json_view.h"

namespace tasklease::webhook {

// Labels and annotations shared with the operator and the chart.
inline constexpr std::string_view kEnforcementLabel = "tasklease.io/enforcement";
inline constexpr std::string_view kTaskLabel = "tasklease.io/task";
inline constexpr std::string_view kTaskUidLabel = "tasklease.io/task-uid";
inline constexpr std::string_view kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kManagedByValue = "tasklease";
inline constexpr std::string_view kDedicatedToAnnotation = "tasklease.io/dedicated-to";
// The volume through which the operator mounts a task's credential into its workload Job; it
// replaces any volume of that name in spec.workload.template (operator/objects.h).
inline constexpr std::string_view kCredentialVolumeName = "tasklease-credential";

// Who creates the pods of a Job: kube-controller-manager's Job controller, under its own
// ServiceAccount with --use-service-account-credentials (kubeadm's default), else as the
// controller manager itself (docs/rules.md, TL008).
inline constexpr std::string_view kJobControllerServiceAccountUser =
    "system:serviceaccount:kube-system:job-controller";
inline constexpr std::string_view kControllerManagerUser = "system:kube-controller-manager";

enum class RuleId { kTL001, kTL002, kTL003, kTL004, kTL005, kTL006, kTL007, kTL008 };

struct RuleInfo {
  RuleId id;
  std::string_view code;     // "TL001"
  std::string_view name;     // "secret-env"
  std::string_view rejects;  // one line, for docs and `explain`
};

const std::vector<RuleInfo>& allRules();
const RuleInfo& ruleInfo(RuleId id);
std::string_view ruleCode(RuleId id);
std::optional<RuleId> parseRuleId(std::string_view code);

struct Violation {
  RuleId rule;
  std::string path;     // "spec.template.spec.initContainers[0].env[2]"
  std::string message;  // what is wrong and what to do instead; never a secret's value
};

// A rule that could not be evaluated, and why (the offline check without cluster state).
struct Note {
  RuleId rule;
  std::string path;
  std::string message;
};

struct RuleConfig {
  // TL007: the longest projected serviceAccountToken lifetime allowed.
  int64_t maxTokenExpirationSeconds = 3600;
  // TL008: who may create the pods of a task's workload Job (--job-controller-username).
  std::vector<std::string> jobControllerUsernames = {std::string(kJobControllerServiceAccountUser),
                                                     std::string(kControllerManagerUser)};
  // TL008: who may create a task's workload Job (--operator-username: the operator's
  // ServiceAccount, system:serviceaccount:<namespace>:<name>).
  std::vector<std::string> operatorUsernames;
};

// Who asks for the object under review: the admission request's user (views into the request).
struct RequestUser {
  std::string_view username;
  std::string_view uid;
};

// An ownerReference of the object under review.
struct OwnerReference {
  std::string apiVersion;
  std::string kind;
  std::string name;
  std::string uid;
};

// One pod spec inside an admitted object.
struct PodUnderReview {
  std::string ns;
  std::string specPath;    // where the PodSpec is: "spec", "spec.template.spec", ...
  std::string labelsPath;  // where its labels are: "metadata.labels", ...
  JsonView spec;           // the PodSpec (absent, or not an object: read as empty)
  JsonView labels;         // the pod's labels (likewise)
  // What tasklease.io/dedicated-to may name for this pod: "Deployment/web", "Pod/x", ...
  std::vector<std::string> identities;
  // The admitted object's kind and name ("Pod", "Job", ...; a workload's own name for its
  // template) and its controller ownerReference: TL008 asks whether it was made for its task.
  std::string kind;
  std::string name;
  std::optional<OwnerReference> controller;
  // Who creates (or changes) the object: the admission request's user. Unset in the offline
  // check, where whether a pod is made for its task cannot be told (a note, not a violation).
  std::optional<RequestUser> requester;
  // The pod template of an AgentTask's spec.workload, judged when the task is admitted, as the
  // operator will render it: the operator sets its ServiceAccount, its task labels and the
  // credential volume, so TL005, TL006 and TL008 are not evaluated and a volume named
  // tasklease-credential (which the operator replaces) is not judged (docs/delegation.md).
  bool taskWorkloadTemplate = false;
  // pods/ephemeralcontainers: only these ephemeral containers are checked, and only by the
  // container rules (TL001, TL002, TL004); the rest of the pod was judged at its creation.
  std::optional<std::vector<std::string>> onlyEphemeralContainers;
};

// The task whose ServiceAccount the pod runs under.
struct TaskBinding {
  std::string name;
  std::string uid;
};

struct PodFindings {
  std::vector<Violation> violations;
  std::vector<Note> notes;
  std::string serviceAccountName;  // as the pod will run ("default" when unset)
  std::optional<TaskBinding> task;
};

PodFindings checkPod(const PodUnderReview& pod, const ClusterState& state, const RuleConfig& config,
                     TimePoint now);

// The rules checkPod evaluates on a task's workload template (taskWorkloadTemplate), and those
// it leaves to the operator, which makes them true when it renders the Job.
const std::vector<RuleId>& taskWorkloadTemplateRules();
const std::vector<RuleId>& rulesTheOperatorMakesTrue();

// The parts of a pod spec the rules read, as Json: two specs with equal results are judged
// alike (an UPDATE that changes nothing here is not judged again).
Json podSpecAsRulesRead(const JsonView& spec);

}  // namespace tasklease::webhook
