#include "operator/task.h"

#include <algorithm>

#include "common/duration.h"

namespace tasklease::op {
namespace {

// A list of strings at `key` of `object`; absent is empty.
StatusOr<std::vector<std::string>> stringList(const Json& object, const char* key,
                                              const std::string& field) {
  std::vector<std::string> out;
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return out;
  if (!it->is_array()) return invalidArgument(field + "." + key + ": must be a list of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& v = (*it)[i];
    if (!v.is_string()) {
      return invalidArgument(field + "." + key + "[" + std::to_string(i) + "]: must be a string");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

StatusOr<std::string> requiredString(const Json& object, const char* key,
                                     const std::string& field) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string() || it->get<std::string>().empty()) {
    return invalidArgument(field + "." + key + ": required, a non-empty string");
  }
  return it->get<std::string>();
}

bool isLabelValue(std::string_view v) {
  if (v.empty()) return true;
  if (v.size() > 63) return false;
  const auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(v.front()) || !alnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(),
                     [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

}  // namespace

const char* credentialTypeName(CredentialType type) {
  return type == CredentialType::kX509Svid ? "X509SVID" : "ServiceAccountToken";
}

std::optional<CredentialType> parseCredentialType(std::string_view name) {
  if (name == "ServiceAccountToken") return CredentialType::kServiceAccountToken;
  if (name == "X509SVID") return CredentialType::kX509Svid;
  return std::nullopt;
}

const char* phaseName(Phase phase) {
  switch (phase) {
    case Phase::kNone:
      return "";
    case Phase::kPending:
      return "Pending";
    case Phase::kDenied:
      return "Denied";
    case Phase::kActive:
      return "Active";
    case Phase::kRevoking:
      return "Revoking";
    case Phase::kSucceeded:
      return "Succeeded";
    case Phase::kFailed:
      return "Failed";
    case Phase::kExpired:
      return "Expired";
  }
  return "";
}

Phase parsePhase(std::string_view name) {
  for (Phase p : {Phase::kPending, Phase::kDenied, Phase::kActive, Phase::kRevoking,
                  Phase::kSucceeded, Phase::kFailed, Phase::kExpired}) {
    if (name == phaseName(p)) return p;
  }
  return Phase::kNone;
}

bool isTerminal(Phase phase) {
  return phase == Phase::kDenied || phase == Phase::kSucceeded || phase == Phase::kFailed ||
         phase == Phase::kExpired;
}

bool deadlineMatters(Phase phase) {
  return phase == Phase::kNone || phase == Phase::kPending || phase == Phase::kActive;
}

StatusOr<PolicyRule> parsePolicyRule(const Json& rule, const std::string& field) {
  if (!rule.is_object()) return invalidArgument(field + ": must be an object");
  PolicyRule out;
  auto groups = stringList(rule, "apiGroups", field);
  if (!groups.ok()) return groups.status();
  auto resources = stringList(rule, "resources", field);
  if (!resources.ok()) return resources.status();
  auto names = stringList(rule, "resourceNames", field);
  if (!names.ok()) return names.status();
  auto verbs = stringList(rule, "verbs", field);
  if (!verbs.ok()) return verbs.status();
  if (resources->empty()) return invalidArgument(field + ".resources: required, at least one");
  if (verbs->empty()) return invalidArgument(field + ".verbs: required, at least one");
  out.apiGroups = std::move(*groups);
  out.resources = std::move(*resources);
  out.resourceNames = std::move(*names);
  out.verbs = std::move(*verbs);
  return out;
}

Json policyRuleToJson(const PolicyRule& rule) {
  Json out = {{"apiGroups", rule.apiGroups.empty() ? std::vector<std::string>{""} : rule.apiGroups},
              {"resources", rule.resources},
              {"verbs", rule.verbs}};
  if (!rule.resourceNames.empty()) out["resourceNames"] = rule.resourceNames;
  return out;
}

StatusOr<TaskSpec> parseTaskSpec(const Json& task) {
  const Json& meta = objectAt(task, {"metadata"});
  const std::string name = meta.value("name", std::string());
  if (!isLabelValue(name)) {
    return invalidArgument(
        "metadata.name: \"" + name +
        "\" must be at most 63 characters, as it becomes the value of the label " + kTaskLabel +
        " on every object issued for the task");
  }
  const auto specIt = task.find("spec");
  if (specIt == task.end() || !specIt->is_object()) {
    return invalidArgument("spec: required, an object");
  }
  const Json& spec = *specIt;
  TaskSpec out;
  auto agent = requiredString(spec, "agent", "spec");
  if (!agent.ok()) return agent.status();
  out.agent = *agent;
  auto purpose = requiredString(spec, "purpose", "spec");
  if (!purpose.ok()) return purpose.status();
  out.purpose = *purpose;

  const auto ctxIt = spec.find("context");
  if (ctxIt == spec.end() || !ctxIt->is_object()) {
    return invalidArgument(
        "spec.context: required, an object with tool, dataSensitivity and "
        "environment");
  }
  auto tool = requiredString(*ctxIt, "tool", "spec.context");
  if (!tool.ok()) return tool.status();
  auto sensitivity = requiredString(*ctxIt, "dataSensitivity", "spec.context");
  if (!sensitivity.ok()) return sensitivity.status();
  auto environment = requiredString(*ctxIt, "environment", "spec.context");
  if (!environment.ok()) return environment.status();
  out.tool = *tool;
  out.dataSensitivity = *sensitivity;
  out.environment = *environment;

  auto ttlText = requiredString(spec, "ttl", "spec");
  if (!ttlText.ok()) return ttlText.status();
  auto ttl = parseDuration(*ttlText);
  if (!ttl.ok()) return invalidArgument("spec.ttl: " + ttl.status().message());
  out.ttl = std::chrono::duration_cast<std::chrono::seconds>(*ttl);
  if (out.ttl.count() <= 0) {
    return invalidArgument("spec.ttl: \"" + *ttlText + "\" must be at least one second");
  }

  const Json& scope = objectAt(spec, {"scope"});
  const auto rulesIt = scope.find("rules");
  if (rulesIt != scope.end() && !rulesIt->is_null()) {
    if (!rulesIt->is_array()) return invalidArgument("spec.scope.rules: must be a list");
    for (size_t i = 0; i < rulesIt->size(); ++i) {
      auto rule = parsePolicyRule((*rulesIt)[i], "spec.scope.rules[" + std::to_string(i) + "]");
      if (!rule.ok()) return rule.status();
      if (rule->apiGroups.empty()) rule->apiGroups = {""};
      out.rules.push_back(std::move(*rule));
    }
  }

  const Json& credential = objectAt(spec, {"credential"});
  const std::string type = credential.value("type", std::string("ServiceAccountToken"));
  const auto parsedType = parseCredentialType(type);
  if (!parsedType) {
    return invalidArgument("spec.credential.type: \"" + type +
                           "\" is not ServiceAccountToken or X509SVID");
  }
  out.credentialType = *parsedType;
  auto audiences = stringList(credential, "audiences", "spec.credential");
  if (!audiences.ok()) return audiences.status();
  out.audiences = std::move(*audiences);

  const auto workloadIt = spec.find("workload");
  if (workloadIt != spec.end() && !workloadIt->is_null()) {
    const Json& tmpl = objectAt(*workloadIt, {"template"});
    const Json& containers = objectAt(tmpl, {"spec"}).value("containers", Json());
    if (!containers.is_array() || containers.empty()) {
      return invalidArgument(
          "spec.workload.template.spec.containers: required, at least one "
          "container");
    }
    out.workloadTemplate = tmpl;
  }
  const auto completedIt = spec.find("completed");
  out.completed =
      completedIt != spec.end() && completedIt->is_boolean() && completedIt->get<bool>();
  return out;
}

TaskRef taskRefOf(const Json& task) {
  const Json& meta = objectAt(task, {"metadata"});
  return {meta.value("namespace", std::string()), meta.value("name", std::string()),
          meta.value("uid", std::string())};
}

StatusOr<TimePoint> taskDeadline(const Json& task, std::chrono::seconds ttl) {
  const std::string created = stringAt(task, {"metadata", "creationTimestamp"});
  auto t = parseRfc3339(created);
  if (!t.ok()) return invalidArgument("metadata.creationTimestamp: " + t.status().message());
  return *t + ttl;
}

bool hasFinalizer(const Json& object, std::string_view finalizer) {
  const Json& meta = objectAt(object, {"metadata"});
  const auto it = meta.find("finalizers");
  if (it == meta.end() || !it->is_array()) return false;
  return std::any_of(it->begin(), it->end(), [&](const Json& f) {
    return f.is_string() && f.get<std::string>() == finalizer;
  });
}

bool isBeingDeleted(const Json& object) {
  return !stringAt(object, {"metadata", "deletionTimestamp"}).empty();
}

int64_t generationOf(const Json& object) {
  const Json& meta = objectAt(object, {"metadata"});
  const auto it = meta.find("generation");
  return it != meta.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

const Json& objectAt(const Json& object, std::initializer_list<std::string_view> path) {
  static const Json kEmpty = Json::object();
  const Json* at = &object;
  for (std::string_view step : path) {
    if (!at->is_object()) return kEmpty;
    const auto it = at->find(step);
    if (it == at->end()) return kEmpty;
    at = &*it;
  }
  return at->is_object() ? *at : kEmpty;
}

std::string stringAt(const Json& object, std::initializer_list<std::string_view> path) {
  const Json* at = &object;
  for (std::string_view step : path) {
    if (!at->is_object()) return {};
    const auto it = at->find(step);
    if (it == at->end()) return {};
    at = &*it;
  }
  return at->is_string() ? at->get<std::string>() : std::string();
}

}  // namespace tasklease::op
