#pragma once
// The AgentTask API as the operator reads it (DESIGN.md §3): the resources it watches, the
// labels, annotations and finalizer it writes, and TaskSpec, the parsed and checked spec of one
// task. Parsing never trusts the CRD schema alone (a cluster may lack CEL, an old object may
// predate a rule): errors name the field and say what is expected.
//
//   StatusOr<TaskSpec> spec = parseTaskSpec(taskObject);
//   if (!spec.ok()) deny(spec.status().message());
//   TimePoint deadline = *taskDeadline(taskObject, spec->ttl);

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/rfc3339.h"
#include "common/status.h"
#include "kube/resource.h"

namespace tasklease::op {

inline const kube::ResourceRef kAgentTasks{"tasklease.io", "v1alpha1", "agenttasks", "AgentTask",
                                           true};
inline const kube::ResourceRef kAgentPolicies{"tasklease.io", "v1alpha1", "agentpolicies",
                                              "AgentPolicy", false};

// On every object issued for a task; the webhook (TL003, TL006, TL008) relies on the first two.
inline constexpr char kTaskLabel[] = "tasklease.io/task";
inline constexpr char kTaskUidLabel[] = "tasklease.io/task-uid";
inline constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
inline constexpr char kManagedByValue[] = "tasklease";
// Selects everything the operator created, in every namespace.
inline constexpr char kManagedSelector[] = "app.kubernetes.io/managed-by=tasklease";

inline constexpr char kFinalizer[] = "tasklease.io/revoke";
// Stamped by the mutating webhook on CREATE (issue 6): who asked for the task.
inline constexpr char kRequestedByAnnotation[] = "tasklease.io/requested-by";
// On credential Secrets, so that a sweep can revoke them without the task.
inline constexpr char kCredentialTypeAnnotation[] = "tasklease.io/credential-type";
inline constexpr char kSerialAnnotation[] = "tasklease.io/serial";
inline constexpr char kIssuerAnnotation[] = "tasklease.io/issuer";
inline constexpr char kNotAfterAnnotation[] = "tasklease.io/not-after";

// Where the workload's containers find the credential Secret.
inline constexpr char kCredentialVolume[] = "tasklease-credential";
inline constexpr char kCredentialMountPath[] = "/var/run/secrets/tasklease.io/credential";

enum class CredentialType { kServiceAccountToken, kX509Svid };
const char* credentialTypeName(CredentialType type);
std::optional<CredentialType> parseCredentialType(std::string_view name);

// Revoking: the task ended (completed, its Job finished, its deadline passed) or is being
// deleted, and its credential is being taken away; it stays Revoking while a finalizer holds one
// of its objects, and is never Active again. The webhook's TL008 admits pods only under Active.
enum class Phase { kNone, kPending, kDenied, kActive, kRevoking, kSucceeded, kFailed, kExpired };
const char* phaseName(Phase phase);  // "" for kNone
Phase parsePhase(std::string_view name);
// Denied, Succeeded, Failed, Expired: nothing more happens to the task but its deletion.
bool isTerminal(Phase phase);
// Whether the task's deadline still changes anything: it does until the task ends (undecided,
// Pending, Active); once Revoking, only the revocation is left.
bool deadlineMatters(Phase phase);

// One RBAC PolicyRule (resource rules only: non-resource URLs are cluster-scoped).
struct PolicyRule {
  std::vector<std::string> apiGroups;
  std::vector<std::string> resources;
  std::vector<std::string> resourceNames;  // empty: every name
  std::vector<std::string> verbs;
};
// Reads a rule; `field` names it in errors ("spec.scope.rules[2]").
StatusOr<PolicyRule> parsePolicyRule(const Json& rule, const std::string& field);
Json policyRuleToJson(const PolicyRule& rule);

struct TaskSpec {
  std::string agent;
  std::string purpose;
  std::string tool;
  std::string dataSensitivity;
  std::string environment;
  std::chrono::seconds ttl{0};
  // Requested rules; a rule without apiGroups means the core group ("").
  std::vector<PolicyRule> rules;
  CredentialType credentialType = CredentialType::kServiceAccountToken;
  std::vector<std::string> audiences;
  std::optional<Json> workloadTemplate;  // spec.workload.template, a PodTemplateSpec
  bool completed = false;
};

// Parses and checks spec; errors name the field ("spec.ttl: ...").
StatusOr<TaskSpec> parseTaskSpec(const Json& task);

// The task a thing is about.
struct TaskRef {
  std::string ns;
  std::string name;
  std::string uid;
  friend bool operator==(const TaskRef&, const TaskRef&) = default;
};
TaskRef taskRefOf(const Json& task);

// creationTimestamp + ttl: the moment the credential stops, whatever else happens.
StatusOr<TimePoint> taskDeadline(const Json& task, std::chrono::seconds ttl);

bool hasFinalizer(const Json& object, std::string_view finalizer);
bool isBeingDeleted(const Json& object);
int64_t generationOf(const Json& object);

// The member at `path` ("status", "credential", "serial") as a string, or "" when any step is
// missing or not of the right type. Reads status without a chain of contains() checks.
std::string stringAt(const Json& object, std::initializer_list<std::string_view> path);
// The object at `path`, or a static empty object.
const Json& objectAt(const Json& object, std::initializer_list<std::string_view> path);

}  // namespace tasklease::op
