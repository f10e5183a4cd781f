#pragma once
// status.conditions per the Kubernetes API conventions (metav1.Condition): one entry per type,
// status "True"/"False", a CamelCase reason, a message, the generation it was computed for,
// and lastTransitionTime, which moves only when the status itself changes.
//
//   setCondition(status, "Ready", true, "Active", "credential issued", generation, now);

#include <string>

#include "common/json.h"
#include "common/rfc3339.h"

namespace tasklease::op {

inline constexpr char kConditionAuthorized[] = "Authorized";
inline constexpr char kConditionIssued[] = "CredentialIssued";
inline constexpr char kConditionRevoked[] = "CredentialRevoked";
inline constexpr char kConditionReady[] = "Ready";

void setCondition(Json& status, const std::string& type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, TimePoint now);

// The condition of that type, or null.
const Json* findCondition(const Json& status, const std::string& type);

}  // namespace tasklease::op
