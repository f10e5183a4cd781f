#pragma once
// The objects the operator creates for a task, built as pure functions of the task so that
// each is tested on its own and a re-run builds exactly the same object: the ServiceAccount,
// Role and RoleBinding that carry the task's permissions, and the workload Job.
//
//   Json sa = buildServiceAccount(task, names, CredentialType::kServiceAccountToken);
//   StatusOr<Json> job = buildJob(task, names, *spec.workloadTemplate, remaining);

#include <chrono>
#include <optional>
#include <string_view>

#include "common/json.h"
#include "common/status.h"
#include "operator/naming.h"
#include "operator/task.h"

namespace tasklease::op {

// metadata for an object issued for the task: name, namespace, labels, ownerReference.
Json issuedObjectMeta(const TaskRef& task, const std::string& name);

// automountServiceAccountToken: false, so no pod under it gets a long-lived projected token.
Json buildServiceAccount(const TaskRef& task, const TaskNames& names, CredentialType type);

// The task's requested rules, granted in its namespace only.
Json buildRole(const TaskRef& task, const TaskNames& names, const std::vector<PolicyRule>& rules);

// Binds the Role to the task's ServiceAccount.
Json buildRoleBinding(const TaskRef& task, const TaskNames& names);

// A batch/v1 Job from spec.workload.template: under the task's ServiceAccount, labelled with
// the task (the webhook's TL008 needs it), no automounted token (TL007), the credential Secret
// mounted read-only at kCredentialMountPath in every container (TL003's exception), no retries
// (backoffLimit 0: retrying an agent is its orchestrator's call) and never running past the
// deadline (activeDeadlineSeconds = `remaining`).
StatusOr<Json> buildJob(const TaskRef& task, const TaskNames& names, const Json& podTemplate,
                        std::chrono::seconds remaining);

// The decoded value of a Secret's data[key], or nullopt when absent or not valid base64.
std::optional<std::string> secretValue(const Json& secret, std::string_view key);

// A Job's outcome from its status conditions: Complete, Failed, or still running.
enum class JobOutcome { kRunning, kSucceeded, kFailed };
JobOutcome jobOutcome(const Json& job);

}  // namespace tasklease::op
