#pragma once
// The pure parts of AgentTask admission (DESIGN.md §4, docs/delegation.md): what a spec may
// not ask for, what may change after creation, which SubjectAccessReviews prove that the
// requester holds what the task asks for, and the mutating stamp. No I/O: agenttask_review.h
// runs the reviews and the stamp verification around these.
//
//   std::vector<std::string> problems = agentTaskSpecProblems(spec);
//   std::vector<PermissionCheck> checks = planPermissionChecks(spec);   // one SAR each
//   AdmissionResponse stamped = stampAgentTask(request, signingKey, now); // /mutate

#include <string>
#include <vector>

#include "common/delegation_stamp.h"
#include "common/json.h"
#include "common/rfc3339.h"
#include "webhook/admission.h"

namespace tasklease::webhook {

inline constexpr char kAgentTaskKind[] = "AgentTask";

// An AgentTask object itself (not its status subresource).
bool isAgentTaskRequest(const AdmissionRequest& request);

// One permission a task asks for: one SubjectAccessReview. resourceName is empty when the rule
// names no resources (every name); subresource comes from "pods/log".
struct PermissionCheck {
  std::string verb;
  std::string apiGroup;
  std::string resource;
  std::string subresource;
  std::string resourceName;
  friend bool operator==(const PermissionCheck&, const PermissionCheck&) = default;
  friend auto operator<=>(const PermissionCheck&, const PermissionCheck&) = default;
};

// `update on configmaps (apiGroup "", resourceName "billing-config")`.
std::string describePermission(const PermissionCheck& check);

// What the spec may not hold, each "field: what is wrong and what to do": wildcards in
// verbs, resources or apiGroups; the verbs escalate, bind and impersonate; a ttl that does not
// parse, is outside 1m..24h, or is under 10m for a ServiceAccountToken (the TokenRequest
// minimum); an unknown credential type; lists of the wrong type; a workload without a pod
// template that has containers. Empty when the spec is fine.
std::vector<std::string> agentTaskSpecProblems(const Json& spec);

// What an UPDATE may not do: change the spec other than `completed` from false to true, or
// add, change or remove the stamp annotations.
std::vector<std::string> agentTaskUpdateProblems(const Json& oldObject, const Json& object);

// The SubjectAccessReviews that show the requester holds every permission the task asks for:
// one per apiGroup x resource x verb x resourceName of each rule (a rule without apiGroups is
// the core group), duplicates dropped, in the order the rules give them, then those of
// workloadAccess(spec). Entries the spec check refuses (wildcards, forbidden verbs) are left out.
std::vector<PermissionCheck> planPermissionChecks(const Json& spec);

// What the requester must hold for the task's spec.workload, and why: `create` on jobs.batch
// (the operator creates the Job with its own rights, on the requester's behalf) and `get` on
// every Secret and ConfigMap the template reads (pod_references.h: volumes of every kind,
// env, envFrom, imagePullSecrets), but the volume the operator replaces with the credential.
// Empty without a workload.
struct WorkloadAccess {
  PermissionCheck check;
  std::string purpose;  // "the Job that runs spec.workload", "read by spec.workload...volumes[0]"
};
std::vector<WorkloadAccess> workloadAccess(const Json& spec);

// Where the workload's pod spec is, for paths in messages and evidence.
inline constexpr char kWorkloadTemplateSpecPath[] = "spec.workload.template.spec";

// The requester as the stamp records it.
inline Requester requesterOf(const UserInfo& user) {
  return {user.username, user.uid, user.groups};
}

// /mutate for an AgentTask CREATE: a JSONPatch adding tasklease.io/requested-by and its
// signature; a refusal (403) when the object already carries either annotation (only the
// webhook writes them) or the request names no user.
AdmissionResponse stampAgentTask(const AdmissionRequest& request, const SigningKey& key,
                                 TimePoint now);

}  // namespace tasklease::webhook
