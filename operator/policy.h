#pragma once
// AgentPolicy evaluation (DESIGN.md §3), a pure function from a task's request and the policies
// to a decision. Deny by default: a task is authorized only when some policy matches it (agent,
// namespace, tool, environment and data sensitivity, each a list of globs) and allows all of
// it: every requested permission within the policy's rules (resourceNames included), the TTL
// within maxTTL, the credential type allowed, a workload (spec.workload) only when the policy
// allows workloads and its pod template within the policy's bound (a Pod Security Standards
// level, pod_security.h) and, when the policy requires it, a verified delegation. The decision
// names the policy that allowed it, or says for each policy why not (for a workload, each field
// of the template that breaks which control).
//
//   PolicyDecision d = evaluatePolicies({.ns = "team-a", .spec = spec, .delegation = who},
//                                       policyObjects);
//   if (!d.allowed) deny(d.reason);

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "operator/pod_security.h"
#include "operator/task.h"

namespace tasklease::op {

// Who asked for the task, from the tasklease.io/requested-by stamp.
struct Delegation {
  bool present = false;
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  // True only when the stamp's signature verifies against the webhook's published keys.
  bool verified = false;
  // Why it is not verified (for the policy's denial and the evidence), empty when verified.
  std::string unverifiedReason;
};

struct AgentPolicy {
  std::string name;
  struct Match {
    std::vector<std::string> agents;
    std::vector<std::string> namespaces;
    std::vector<std::string> tools;
    std::vector<std::string> environments;
    std::vector<std::string> dataSensitivities;
  } match;
  std::vector<PolicyRule> rules;  // the ceiling
  std::chrono::seconds maxTTL{0};
  std::vector<CredentialType> credentialTypes;  // absent in the object: ServiceAccountToken only
  // spec.allow.workload: absent, the policy allows no task with a workload.
  std::optional<WorkloadBound> workload;
  bool requireVerifiedDelegation = true;
};

// Reads an AgentPolicy object; errors name the field.
StatusOr<AgentPolicy> parseAgentPolicy(const Json& object);

struct PolicyRequest {
  std::string ns;
  TaskSpec spec;
  Delegation delegation;
};

// What one policy said about the task.
struct PolicyVerdict {
  std::string policy;
  bool matched = false;
  bool allowed = false;
  std::string why;  // why it does not match or does not allow; empty when it allows
};

struct PolicyDecision {
  bool allowed = false;
  std::string policy;  // the policy that allowed it; empty when denied
  std::string reason;  // one sentence for status.policy.reason and the evidence record
  // The allowing policy's bound on the task's workload, when the task has one.
  std::optional<WorkloadBound> workload;
  std::vector<PolicyVerdict> verdicts;  // every policy, in name order
};

// Policies are evaluated in name order; the first that allows the task decides.
PolicyDecision evaluatePolicies(const PolicyRequest& request, const std::vector<Json>& policies);

// '*' matches any run of characters, '?' any one character; everything else itself.
bool globMatch(std::string_view pattern, std::string_view text);

// The first requested permission no ceiling rule covers, as text ("verb \"update\" on configmaps
// \"billing-config\""), or nullopt when the ceiling covers them all. Ceilings may use "*" for
// apiGroups, resources ("*" or "*/subresource") and verbs as RBAC does; a ceiling with
// resourceNames covers only those names, one without covers every name.
std::optional<std::string> firstUncoveredPermission(const std::vector<PolicyRule>& requested,
                                                    const std::vector<PolicyRule>& ceiling);

}  // namespace tasklease::op
