#pragma once
// The Kubernetes Pod Security Standards checked on a pod template: what an AgentPolicy bounds a
// task's workload with (spec.allow.workload, docs/operator.md). The controls and their allowed
// values are those of https://kubernetes.io/docs/concepts/security/pod-security-standards/
// (Baseline; Restricted adds its own on top), field by field, containers, init containers and
// ephemeral containers alike. On top of the standard, tasklease lets a container add only the
// capabilities the policy lists (none unless it says so), even where the level allows more.
//
//   WorkloadBound bound{PodSecurityLevel::kRestricted, {}};
//   for (const WorkloadViolation& v : checkWorkload(task.spec.workload.template, bound)) {
//     deny(v.text());  // "spec.workload.template.spec.hostPID: true; ... (baseline: Host
//     Namespaces)"
//   }

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace tasklease::op {

enum class PodSecurityLevel { kBaseline, kRestricted };
const char* podSecurityLevelName(PodSecurityLevel level);  // "baseline", "restricted"
std::optional<PodSecurityLevel> parsePodSecurityLevel(std::string_view name);

// The capabilities a container may add under the level (Baseline: the runtime's default set;
// Restricted: NET_BIND_SERVICE).
const std::vector<std::string>& addableCapabilities(PodSecurityLevel level);

// What a policy lets a workload be.
struct WorkloadBound {
  PodSecurityLevel level = PodSecurityLevel::kRestricted;
  // What containers may add to their capabilities; a subset of addableCapabilities(level).
  std::vector<std::string> allowedCapabilities;
};

// One field of the template that breaks the bound.
struct WorkloadViolation {
  std::string path;     // "spec.workload.template.spec.containers[0].securityContext.privileged"
  std::string problem;  // "true; allowed: unset or false"
  std::string bound;    // "baseline: Privileged Containers", or "policy: allowedCapabilities"
  std::string text() const { return path + ": " + problem + " (" + bound + ")"; }
};

// Every violation of `bound` in `podTemplate` (a PodTemplateSpec), in field order, each path
// under `prefix`.
std::vector<WorkloadViolation> checkWorkload(const Json& podTemplate, const WorkloadBound& bound,
                                             const std::string& prefix = "spec.workload.template");

}  // namespace tasklease::op
