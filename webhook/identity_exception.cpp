#include "webhook/identity_exception.h"

#include <algorithm>

#include "webhook/json_access.h"

namespace tasklease::webhook {
namespace {

// kube::LabelSelector's errors name the field inside the selector ("matchExpressions[0].operator:
// ..."); the problem is reported under spec.podSelector.
FieldProblem selectorProblem(const Status& status) {
  const std::string& m = status.message();
  size_t colon = m.find(": ");
  if (colon == std::string::npos) return {"spec.podSelector", m};
  return {"spec.podSelector." + m.substr(0, colon), m.substr(colon + 2)};
}

// A selector names the pods it selects when it requires some label to have a given value: a
// matchLabels entry, or an In expression with values. NotIn, Exists and DoesNotExist only say
// what pods lack or carry in any value, so a selector made of them alone (or an empty one) can
// match every pod of the namespace.
bool selectorNamesPods(const Json& selector) {
  if (!objectMember(selector, "matchLabels").empty()) return true;
  for (const Json& e : arrayMember(selector, "matchExpressions")) {
    if (stringMember(e, "operator") == "In" && !arrayMember(e, "values").empty()) return true;
  }
  return false;
}

// Service account names name the pods they cover unless one is "default", which every pod that
// names no ServiceAccount runs under.
bool serviceAccountsNamePods(const std::vector<std::string>& names) {
  return !names.empty() && std::find(names.begin(), names.end(), "default") == names.end();
}

constexpr char kNameTheWorkloads[] =
    "name the workloads it covers: serviceAccountNames (other than \"default\", which every pod "
    "without a ServiceAccount shares) and/or a podSelector with at least one matchLabels entry "
    "or In expression. A selector made only of NotIn, Exists or DoesNotExist expressions (or an "
    "empty one) can match every pod of the namespace, and an exception never covers a whole "
    "namespace";

}  // namespace

std::vector<FieldProblem> validateIdentityException(const Json& object, TimePoint now,
                                                    TimePoint createdAt) {
  std::vector<FieldProblem> problems;
  const Json* spec = member(object, "spec");
  if (spec == nullptr || !spec->is_object()) {
    problems.push_back({"spec", "required: reason, approvedBy, expiresAt, rules and a selector"});
    return problems;
  }
  for (const char* field : {"reason", "approvedBy"}) {
    const Json* v = member(*spec, field);
    if (v == nullptr || !v->is_string() ||
        v->get_ref<const std::string&>().find_first_not_of(" \t\n") == std::string::npos) {
      problems.push_back({std::string("spec.") + field,
                          std::string("required: ") + (std::string(field) == "reason"
                                                           ? "say why the exception is needed"
                                                           : "name who approved the exception")});
    }
  }
  const Json* expires = member(*spec, "expiresAt");
  if (expires == nullptr || !expires->is_string()) {
    problems.push_back({"spec.expiresAt",
                        "required: an RFC 3339 time at most 30 days after creation, e.g. "
                        "\"" +
                            formatRfc3339(createdAt + std::chrono::hours(24 * 7)) + "\""});
  } else if (auto t = parseRfc3339(expires->get_ref<const std::string&>()); !t.ok()) {
    problems.push_back({"spec.expiresAt", t.status().message()});
  } else if (*t <= now) {
    problems.push_back(
        {"spec.expiresAt", "is in the past; an exception must expire in the future"});
  } else if (*t > createdAt + kMaxExceptionLifetime) {
    problems.push_back({"spec.expiresAt", "is more than 30 days after the exception's creation (" +
                                              formatRfc3339(createdAt) +
                                              "); the latest allowed is " +
                                              formatRfc3339(createdAt + kMaxExceptionLifetime) +
                                              ". Create a new, re-approved exception to go on"});
  }
  const Json* rules = member(*spec, "rules");
  if (rules == nullptr || !rules->is_array() || rules->empty()) {
    problems.push_back({"spec.rules", "required: the rule IDs it allows, e.g. [TL001]"});
  } else {
    for (size_t i = 0; i < rules->size(); ++i) {
      const Json& r = (*rules)[i];
      if (!r.is_string() || !parseRuleId(r.get_ref<const std::string&>())) {
        problems.push_back({indexPath("spec.rules", i),
                            "unknown rule " + (r.is_string() ? r.get<std::string>() : r.dump()) +
                                "; known rules are TL001 to TL008"});
      }
    }
  }
  const Json* sas = member(*spec, "serviceAccountNames");
  std::vector<std::string> saNames;
  if (sas != nullptr) {
    if (!sas->is_array() || !std::all_of(sas->begin(), sas->end(), [](const Json& v) {
          return v.is_string() && !v.get_ref<const std::string&>().empty();
        })) {
      problems.push_back({"spec.serviceAccountNames", "must be a list of ServiceAccount names"});
    } else {
      for (size_t i = 0; i < sas->size(); ++i) {
        const std::string& name = (*sas)[i].get_ref<const std::string&>();
        if (name.find('*') != std::string::npos) {
          problems.push_back(
              {indexPath("spec.serviceAccountNames", i),
               "\"" + name + "\": wildcards are not allowed; name each ServiceAccount"});
        } else {
          saNames.push_back(name);
        }
      }
    }
  }
  const Json* selector = member(*spec, "podSelector");
  bool selectorNames = false;
  if (selector != nullptr && !selector->is_null()) {
    auto parsed = kube::LabelSelector::fromJson(*selector);
    if (!parsed.ok()) {
      problems.push_back(selectorProblem(parsed.status()));
    } else {
      selectorNames = selectorNamesPods(*selector);
    }
  }
  if (!serviceAccountsNamePods(saNames) && !selectorNames) {
    problems.push_back({"spec", kNameTheWorkloads});
  }
  return problems;
}

StatusOr<IdentityException> parseIdentityException(const Json& object) {
  const Json& meta = objectMember(object, "metadata");
  IdentityException e;
  e.ns = std::string(stringMember(meta, "namespace"));
  e.name = std::string(stringMember(meta, "name"));
  const Json& spec = objectMember(object, "spec");
  e.reason = std::string(stringMember(spec, "reason"));
  e.approvedBy = std::string(stringMember(spec, "approvedBy"));
  e.expiresAtText = std::string(stringMember(spec, "expiresAt"));
  const std::string where = "IdentityException " + e.ns + "/" + e.name + ": ";
  auto expires = parseRfc3339(e.expiresAtText);
  if (!expires.ok())
    return invalidArgument(where + "spec.expiresAt: " + expires.status().message());
  e.expiresAt = *expires;
  if (auto created = parseRfc3339(stringMember(meta, "creationTimestamp")); created.ok()) {
    e.createdAt = *created;
    if (e.expiresAt > *created + kMaxExceptionLifetime) {
      return invalidArgument(where + "spec.expiresAt is more than 30 days after creation");
    }
  }
  if (e.reason.empty() || e.approvedBy.empty()) {
    return invalidArgument(where + "spec.reason and spec.approvedBy are required");
  }
  for (const Json& r : arrayMember(spec, "rules")) {
    if (!r.is_string()) continue;
    if (auto id = parseRuleId(r.get_ref<const std::string&>())) e.rules.push_back(*id);
  }
  for (const Json& sa : arrayMember(spec, "serviceAccountNames")) {
    if (!sa.is_string() || sa.get_ref<const std::string&>().empty()) continue;
    if (sa.get_ref<const std::string&>().find('*') != std::string::npos) {
      return invalidArgument(where + "spec.serviceAccountNames: wildcards are not allowed");
    }
    e.serviceAccountNames.push_back(sa.get<std::string>());
  }
  bool selectorNames = false;
  if (const Json* sel = member(spec, "podSelector"); sel != nullptr && !sel->is_null()) {
    auto parsed = kube::LabelSelector::fromJson(*sel);
    if (!parsed.ok()) {
      return invalidArgument(where + "spec.podSelector: " + parsed.status().message());
    }
    selectorNames = selectorNamesPods(*sel);
    e.podSelector = std::move(*parsed);
  }
  // Stored before the webhook could refuse it: it covers nothing (docs/rules.md).
  if (!serviceAccountsNamePods(e.serviceAccountNames) && !selectorNames) {
    return invalidArgument(where + "it does not " + kNameTheWorkloads);
  }
  return e;
}

bool IdentityException::covers(RuleId rule, std::string_view serviceAccount, const Json& podLabels,
                               TimePoint now) const {
  if (expired(now) || std::find(rules.begin(), rules.end(), rule) == rules.end()) return false;
  if (!serviceAccountNames.empty() &&
      std::find(serviceAccountNames.begin(), serviceAccountNames.end(), serviceAccount) ==
          serviceAccountNames.end()) {
    return false;
  }
  return !podSelector || podSelector->matches(podLabels);
}

}  // namespace tasklease::webhook
