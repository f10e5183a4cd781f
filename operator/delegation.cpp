#include "operator/delegation.h"

#include "operator/task.h"

namespace tasklease::op {

Delegation parseRequestedBy(std::string_view value) {
  Delegation d;
  if (value.empty()) return d;
  d.present = true;
  const Json parsed = Json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    d.username = std::string(value);
    return d;
  }
  d.username = parsed.value("username", std::string());
  d.uid = parsed.value("uid", std::string());
  const auto groups = parsed.find("groups");
  if (groups != parsed.end() && groups->is_array()) {
    for (const Json& g : *groups) {
      if (g.is_string()) d.groups.push_back(g.get<std::string>());
    }
  }
  return d;
}

StatusOr<Delegation> VerifyingDelegationSource::delegationOf(const Json& task) const {
  const std::string stamp = stringAt(task, {"metadata", "annotations", kRequestedByAnnotation});
  Delegation d = parseRequestedBy(stamp);
  if (!d.present) return d;
  auto check = stamps_.verify(task);
  if (!check.ok()) return check.status();
  if (check->verified()) {
    d.username = check->requester.username;
    d.uid = check->requester.uid;
    d.groups = check->requester.groups;
    d.verified = true;
    return d;
  }
  d.unverifiedReason = std::string(stampResultName(check->result)) + ": " + check->message;
  return d;
}

}  // namespace tasklease::op
