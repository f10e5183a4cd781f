#pragma once
// The validating admission handler: a pure function from an AdmissionRequest (and what the
// cluster knows, and the time) to a response, the evidence to record, and a summary for
// metrics. HTTP, TLS, evidence writing and metrics live in the server; nothing here has side
// effects, so every decision is testable with a fixed ClusterState.
//
//   ReviewOutcome out = reviewAdmission(request, state, ReviewConfig{}, now);
//   send(encodeAdmissionReview(out.response));
//   for (auto& e : out.evidence) chain.append(std::move(e));   // empty on dryRun
//
// Decisions (docs/rules.md "Enforcement"): the namespace label tasklease.io/enforcement picks
// enforce (deny, 403), warn (allow with warnings), audit (allow, evidence only); no label or
// "none": not evaluated. IdentityExceptions turn covered violations into warnings and
// exception-used evidence. IdentityException objects themselves are validated everywhere.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/evidence.h"
#include "common/rfc3339.h"
#include "webhook/admission.h"
#include "webhook/cluster_state.h"
#include "webhook/rules.h"

namespace tasklease::webhook {

enum class EnforcementMode { kNone, kAudit, kWarn, kEnforce };
const char* enforcementModeName(EnforcementMode mode);

enum class Decision {
  kAllowed,   // evaluated, nothing found
  kDenied,    // enforce mode with violations, or an invalid IdentityException
  kWarned,    // warn mode with violations: allowed with warnings
  kAudited,   // audit mode with violations: allowed, evidence only
  kExcepted,  // every violation covered by IdentityExceptions
  kSkipped,   // not evaluated: other kinds, namespaces without enforcement, DELETE, ...
  kInvalid,   // the admitted object could not be read
  kRefused,   // not judged to the end: its budget was spent, or it waited too long for a worker
};
const char* decisionName(Decision decision);

struct ReviewConfig {
  RuleConfig rules;
  // Never evaluated, whatever their labels say, so the webhook cannot lock out the cluster or
  // itself (the chart adds the webhook's own namespace).
  std::vector<std::string> exemptNamespaces = {"kube-system"};
};

struct ReviewOutcome {
  AdmissionResponse response;
  std::vector<EvidenceEvent> evidence;  // always empty for dryRun requests
  // For metrics and logs.
  std::string kind;
  EnforcementMode mode = EnforcementMode::kNone;
  Decision decision = Decision::kSkipped;
  std::vector<RuleId> violatedRules;  // standing violations, one entry per violation
  std::vector<RuleId> exceptedRules;  // covered by exceptions
};

ReviewOutcome reviewAdmission(const AdmissionRequest& request, const ClusterState& state,
                              const ReviewConfig& config, TimePoint now);

// The mode a namespace's label asks for. An unknown value is treated as enforce (a typo must
// not switch enforcement off); *unknownValue is set so the caller can warn.
EnforcementMode enforcementModeOf(const Json& namespaceObject, bool* unknownValue = nullptr);

}  // namespace tasklease::webhook
