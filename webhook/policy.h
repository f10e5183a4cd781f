#pragma once
// The rules over a whole admitted workload, with IdentityExceptions applied: which violations
// stand, which an exception covers, and which rules could not be evaluated. Shared by the
// webhook (which then applies the namespace's enforcement mode) and the offline check.
//
//   StatusOr<Workload> w = workloadOf(object, kind, ns);
//   WorkloadEvaluation e = evaluateWorkload(*w, state, config, now);

#include <optional>
#include <string>
#include <vector>

#include "common/rfc3339.h"
#include "webhook/cluster_state.h"
#include "webhook/rules.h"
#include "webhook/workload.h"

namespace tasklease::webhook {

// A violation that an IdentityException allowed.
struct ExceptionUse {
  Violation violation;
  std::string exception;  // the IdentityException's name
  std::string approvedBy;
  std::string expiresAt;
};

// A stored IdentityException that covers nothing, because it would not be admitted today (it
// names no workloads, outlives 30 days, ...): it can exist only if created before the webhook
// ran or checked it.
struct IgnoredException {
  std::string exception;  // its name
  std::string why;
};

struct WorkloadEvaluation {
  std::vector<Violation> violations;  // not covered by any exception
  std::vector<ExceptionUse> excepted;
  // Looked at only when there are violations to cover.
  std::vector<IgnoredException> ignoredExceptions;
  std::vector<Note> notes;
  std::string serviceAccountName;
  std::optional<TaskBinding> task;
};

WorkloadEvaluation evaluateWorkload(const Workload& workload, const ClusterState& state,
                                    const RuleConfig& config, TimePoint now);

}  // namespace tasklease::webhook
