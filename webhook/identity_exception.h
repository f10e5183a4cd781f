#pragma once
// IdentityException (tasklease.io/v1alpha1, namespaced): a controlled, expiring exception to
// webhook rules (DESIGN.md §3). The spec this code reads and validates:
//
//   spec:
//     reason: "legacy billing job until the AgentTask migration"   # required
//     approvedBy: "security@example.com"                          # required
//     expiresAt: "2026-04-01T00:00:00Z"     # required, at most 30 days after creation
//     rules: [TL001, TL006]                 # required, known rule IDs
//     serviceAccountNames: [billing-legacy] # which pods: by ServiceAccount,
//     podSelector: {matchLabels: {app: billing}}  # and/or by pod labels (both must match)
//
// It must name the workloads it covers, so it never covers a whole namespace: ServiceAccount
// names (not "default", no wildcards), or a podSelector with a matchLabels entry or an In
// expression (docs/rules.md, "What an exception may select"). One stored without (before the
// webhook refused it) covers nothing: parseIdentityException refuses it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/rfc3339.h"
#include "common/status.h"
#include "kube/selector.h"
#include "webhook/rules.h"

namespace tasklease::webhook {

inline constexpr std::string_view kIdentityExceptionKind = "IdentityException";
inline constexpr std::string_view kTaskleaseGroup = "tasklease.io";
// How far after its creation an exception may expire.
inline constexpr std::chrono::hours kMaxExceptionLifetime{24 * 30};

struct IdentityException {
  std::string ns;
  std::string name;
  std::string reason;
  std::string approvedBy;
  std::string expiresAtText;
  TimePoint expiresAt;
  std::optional<TimePoint> createdAt;  // metadata.creationTimestamp when set
  std::vector<RuleId> rules;
  std::vector<std::string> serviceAccountNames;
  std::optional<kube::LabelSelector> podSelector;

  bool expired(TimePoint now) const { return expiresAt <= now; }
  // Whether it covers `rule` for a pod running as serviceAccount with these labels, at `now`.
  bool covers(RuleId rule, std::string_view serviceAccount, const Json& podLabels,
              TimePoint now) const;
};

// One problem found by validation: the field path and what to do.
struct FieldProblem {
  std::string field;  // "spec.expiresAt"
  std::string message;
};

// Validates an IdentityException as the webhook does on CREATE and UPDATE. createdAt is when
// the object was created (now on CREATE). Every problem is returned.
std::vector<FieldProblem> validateIdentityException(const Json& object, TimePoint now,
                                                    TimePoint createdAt);

// Reads an exception for matching. Objects that fail validation's structural checks, or name
// no workloads (and could only exist if created before the webhook ran or checked them), are
// refused with an error that says why.
StatusOr<IdentityException> parseIdentityException(const Json& object);

}  // namespace tasklease::webhook
