#include "operator/policy.h"

#include <algorithm>

#include "common/duration.h"

namespace tasklease::op {
namespace {

constexpr size_t kMaxVerdictsInReason = 8;
// Fields of a workload template named in one policy's verdict; the rest are counted.
constexpr size_t kMaxWorkloadViolationsInReason = 8;

StatusOr<std::vector<std::string>> globList(const Json& match, const char* key) {
  std::vector<std::string> out;
  const auto it = match.find(key);
  if (it == match.end() || it->is_null()) return out;
  if (!it->is_array())
    return invalidArgument(std::string("spec.match.") + key + ": must be a list");
  for (const Json& v : *it) {
    if (!v.is_string()) {
      return invalidArgument(std::string("spec.match.") + key + ": must be a list of strings");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

bool anyGlob(const std::vector<std::string>& patterns, const std::string& value) {
  return patterns.empty() || std::any_of(patterns.begin(), patterns.end(),
                                         [&](const std::string& p) { return globMatch(p, value); });
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

bool contains(const std::vector<std::string>& items, const std::string& value) {
  return std::find(items.begin(), items.end(), value) != items.end();
}

bool groupCovered(const PolicyRule& ceiling, const std::string& group) {
  // A ceiling without apiGroups means the core group, as a requested rule does.
  if (ceiling.apiGroups.empty()) return group.empty();
  return contains(ceiling.apiGroups, "*") || contains(ceiling.apiGroups, group);
}

bool resourceCovered(const PolicyRule& ceiling, const std::string& resource) {
  if (contains(ceiling.resources, "*") || contains(ceiling.resources, resource)) return true;
  const auto slash = resource.find('/');
  return slash != std::string::npos && contains(ceiling.resources, "*" + resource.substr(slash));
}

bool verbCovered(const PolicyRule& ceiling, const std::string& verb) {
  return contains(ceiling.verbs, "*") || contains(ceiling.verbs, verb);
}

std::string permissionText(const std::string& verb, const std::string& group,
                           const std::string& resource, const std::string* name) {
  std::string out = "verb \"" + verb + "\" on " + (group.empty() ? "" : group + "/") + resource;
  return name != nullptr ? out + " \"" + *name + "\"" : out + " (every name)";
}

// Why the policy does not match the task, or "" when it does.
std::string mismatch(const AgentPolicy& p, const PolicyRequest& r) {
  struct Dimension {
    const char* what;
    const std::vector<std::string>& patterns;
    const std::string& value;
  };
  const Dimension dims[] = {
      {"agent", p.match.agents, r.spec.agent},
      {"namespace", p.match.namespaces, r.ns},
      {"tool", p.match.tools, r.spec.tool},
      {"environment", p.match.environments, r.spec.environment},
      {"dataSensitivity", p.match.dataSensitivities, r.spec.dataSensitivity},
  };
  for (const auto& d : dims) {
    if (!anyGlob(d.patterns, d.value)) {
      return std::string(d.what) + " \"" + d.value + "\" is not in [" + joined(d.patterns) + "]";
    }
  }
  return {};
}

// Why a matching policy does not allow the task ("" when it does): every reason, not just the
// first, so one decision tells the requester all that must change.
std::string shortfalls(const AgentPolicy& p, const PolicyRequest& r) {
  std::vector<std::string> why;
  if (std::find(p.credentialTypes.begin(), p.credentialTypes.end(), r.spec.credentialType) ==
      p.credentialTypes.end()) {
    std::vector<std::string> names;
    for (CredentialType t : p.credentialTypes) names.emplace_back(credentialTypeName(t));
    why.push_back(std::string("credential type ") + credentialTypeName(r.spec.credentialType) +
                  " is not allowed (allowed: " + joined(names) + ")");
  }
  if (r.spec.ttl > p.maxTTL) {
    why.push_back("ttl " + formatDuration(r.spec.ttl) + " exceeds maxTTL " +
                  formatDuration(p.maxTTL));
  }
  if (auto uncovered = firstUncoveredPermission(r.spec.rules, p.rules)) {
    why.push_back(*uncovered + " is not within the policy's rules");
  }
  if (r.spec.workloadTemplate) {
    if (!p.workload) {
      why.push_back(
          "spec.workload: the policy allows no workload (it has no allow.workload): the "
          "operator would run the template's pod with its own rights");
    } else {
      const auto violations = checkWorkload(*r.spec.workloadTemplate, *p.workload);
      if (!violations.empty()) {
        std::string list;
        for (size_t i = 0; i < violations.size() && i < kMaxWorkloadViolationsInReason; ++i) {
          list += (list.empty() ? "" : "; ") + violations[i].text();
        }
        if (violations.size() > kMaxWorkloadViolationsInReason) {
          list += "; and " + std::to_string(violations.size() - kMaxWorkloadViolationsInReason) +
                  " more";
        }
        why.push_back(std::string("spec.workload is not within the policy's workload bound (Pod "
                                  "Security ") +
                      podSecurityLevelName(p.workload->level) + "): " + list);
      }
    }
  }
  if (p.requireVerifiedDelegation && !r.delegation.verified) {
    std::string unverified = "requireVerifiedDelegation: the delegation by \"" +
                             r.delegation.username +
                             "\" is not verified as stamped by the tasklease webhook";
    if (!r.delegation.unverifiedReason.empty()) {
      unverified += " (" + r.delegation.unverifiedReason + ")";
    }
    why.push_back(r.delegation.present
                      ? unverified
                      : std::string("requireVerifiedDelegation: the task has no ") +
                            kRequestedByAnnotation + " stamp");
  }
  std::string out;
  for (const auto& w : why) out += (out.empty() ? "" : "; ") + w;
  return out;
}

std::string verdictList(const std::vector<PolicyVerdict>& verdicts, bool matchedOnly) {
  std::string out;
  size_t listed = 0;
  size_t total = 0;
  for (const auto& v : verdicts) {
    if (matchedOnly && !v.matched) continue;
    ++total;
    if (listed == kMaxVerdictsInReason) continue;
    ++listed;
    out += (out.empty() ? "" : "; ") + std::string("AgentPolicy \"") + v.policy + "\": " + v.why;
  }
  if (total > listed) out += "; and " + std::to_string(total - listed) + " more";
  return out;
}

}  // namespace

bool globMatch(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t starP = std::string_view::npos, starT = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      starP = p++;
      starT = t;
    } else if (starP != std::string_view::npos) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

std::optional<std::string> firstUncoveredPermission(const std::vector<PolicyRule>& requested,
                                                    const std::vector<PolicyRule>& ceiling) {
  for (const PolicyRule& rule : requested) {
    const std::vector<std::string> groups =
        rule.apiGroups.empty() ? std::vector<std::string>{""} : rule.apiGroups;
    for (const auto& group : groups) {
      for (const auto& resource : rule.resources) {
        for (const auto& verb : rule.verbs) {
          std::vector<const PolicyRule*> fitting;
          for (const auto& c : ceiling) {
            if (groupCovered(c, group) && resourceCovered(c, resource) && verbCovered(c, verb)) {
              fitting.push_back(&c);
            }
          }
          const auto everyName = [](const PolicyRule* c) { return c->resourceNames.empty(); };
          if (std::any_of(fitting.begin(), fitting.end(), everyName)) continue;
          if (rule.resourceNames.empty()) return permissionText(verb, group, resource, nullptr);
          for (const auto& name : rule.resourceNames) {
            const bool named =
                std::any_of(fitting.begin(), fitting.end(),
                            [&](const PolicyRule* c) { return contains(c->resourceNames, name); });
            if (!named) return permissionText(verb, group, resource, &name);
          }
        }
      }
    }
  }
  return std::nullopt;
}

StatusOr<AgentPolicy> parseAgentPolicy(const Json& object) {
  AgentPolicy p;
  p.name = stringAt(object, {"metadata", "name"});
  const Json& spec = objectAt(object, {"spec"});
  const Json& match = objectAt(spec, {"match"});
  struct Field {
    const char* key;
    std::vector<std::string>* target;
  };
  for (const Field& f :
       {Field{"agents", &p.match.agents}, Field{"namespaces", &p.match.namespaces},
        Field{"tools", &p.match.tools}, Field{"environments", &p.match.environments},
        Field{"dataSensitivities", &p.match.dataSensitivities}}) {
    auto list = globList(match, f.key);
    if (!list.ok()) return list.status();
    *f.target = std::move(*list);
  }
  const Json& allow = objectAt(spec, {"allow"});
  const std::string maxTTL = allow.value("maxTTL", std::string());
  auto ttl = parseDuration(maxTTL);
  if (maxTTL.empty() || !ttl.ok()) {
    return invalidArgument("spec.allow.maxTTL: required, a duration such as \"1h\"" +
                           (maxTTL.empty() ? std::string() : ": " + ttl.status().message()));
  }
  p.maxTTL = std::chrono::duration_cast<std::chrono::seconds>(*ttl);
  const auto rulesIt = allow.find("rules");
  if (rulesIt != allow.end() && rulesIt->is_array()) {
    for (size_t i = 0; i < rulesIt->size(); ++i) {
      auto rule = parsePolicyRule((*rulesIt)[i], "spec.allow.rules[" + std::to_string(i) + "]");
      if (!rule.ok()) return rule.status();
      p.rules.push_back(std::move(*rule));
    }
  }
  const auto typesIt = allow.find("credentialTypes");
  if (typesIt == allow.end() || !typesIt->is_array()) {
    p.credentialTypes = {CredentialType::kServiceAccountToken};
  } else {
    for (const Json& t : *typesIt) {
      const auto type = parseCredentialType(t.is_string() ? t.get<std::string>() : "");
      if (!type) {
        return invalidArgument("spec.allow.credentialTypes: " + t.dump() +
                               " is not ServiceAccountToken or X509SVID");
      }
      p.credentialTypes.push_back(*type);
    }
  }
  const auto workloadIt = allow.find("workload");
  if (workloadIt != allow.end() && !workloadIt->is_null()) {
    if (!workloadIt->is_object()) return invalidArgument("spec.allow.workload: must be an object");
    WorkloadBound bound;
    // The CRD defaults podSecurity to restricted; a policy written without the CRD's defaulting
    // gets the same.
    const auto levelIt = workloadIt->find("podSecurity");
    if (levelIt != workloadIt->end() && !levelIt->is_null()) {
      const auto level =
          parsePodSecurityLevel(levelIt->is_string() ? levelIt->get<std::string>() : "");
      if (!level) {
        return invalidArgument("spec.allow.workload.podSecurity: " + levelIt->dump() +
                               " is not baseline or restricted");
      }
      bound.level = *level;
    }
    const auto capsIt = workloadIt->find("allowedCapabilities");
    if (capsIt != workloadIt->end() && !capsIt->is_null()) {
      if (!capsIt->is_array()) {
        return invalidArgument("spec.allow.workload.allowedCapabilities: must be a list");
      }
      const auto& addable = addableCapabilities(bound.level);
      for (size_t i = 0; i < capsIt->size(); ++i) {
        const Json& cap = (*capsIt)[i];
        const std::string name = cap.is_string() ? cap.get<std::string>() : std::string();
        if (std::find(addable.begin(), addable.end(), name) == addable.end()) {
          return invalidArgument("spec.allow.workload.allowedCapabilities[" + std::to_string(i) +
                                 "]: " + cap.dump() + " is not one the " +
                                 podSecurityLevelName(bound.level) +
                                 " level lets a container add (" + joined(addable) + ")");
        }
        bound.allowedCapabilities.push_back(name);
      }
    }
    p.workload = std::move(bound);
  }
  const auto verifiedIt = spec.find("requireVerifiedDelegation");
  p.requireVerifiedDelegation =
      verifiedIt == spec.end() || !verifiedIt->is_boolean() || verifiedIt->get<bool>();
  return p;
}

PolicyDecision evaluatePolicies(const PolicyRequest& request, const std::vector<Json>& policies) {
  std::vector<const Json*> ordered;
  ordered.reserve(policies.size());
  for (const Json& p : policies) ordered.push_back(&p);
  std::sort(ordered.begin(), ordered.end(), [](const Json* a, const Json* b) {
    return stringAt(*a, {"metadata", "name"}) < stringAt(*b, {"metadata", "name"});
  });

  PolicyDecision decision;
  for (const Json* object : ordered) {
    PolicyVerdict v;
    v.policy = stringAt(*object, {"metadata", "name"});
    auto policy = parseAgentPolicy(*object);
    if (!policy.ok()) {
      v.why = "invalid: " + policy.status().message();
    } else if (std::string m = mismatch(*policy, request); !m.empty()) {
      v.why = "does not match: " + m;
    } else {
      v.matched = true;
      v.why = shortfalls(*policy, request);
      v.allowed = v.why.empty();
    }
    if (v.allowed && !decision.allowed) {
      decision.allowed = true;
      decision.policy = v.policy;
      decision.reason =
          "allowed by AgentPolicy \"" + v.policy + "\": ttl " + formatDuration(request.spec.ttl) +
          " within maxTTL " + formatDuration(policy->maxTTL) + ", " +
          credentialTypeName(request.spec.credentialType) + " allowed, " +
          std::to_string(request.spec.rules.size()) + " requested rule(s) within its rules";
      if (request.spec.workloadTemplate) {
        decision.workload = policy->workload;
        decision.reason += std::string(", workload within Pod Security ") +
                           podSecurityLevelName(policy->workload->level);
      }
    }
    decision.verdicts.push_back(std::move(v));
  }
  if (decision.allowed) return decision;
  const bool anyMatched = std::any_of(decision.verdicts.begin(), decision.verdicts.end(),
                                      [](const PolicyVerdict& v) { return v.matched; });
  if (decision.verdicts.empty()) {
    decision.reason = "denied by default: no AgentPolicy exists";
  } else if (!anyMatched) {
    decision.reason = "denied by default: no AgentPolicy matches agent \"" + request.spec.agent +
                      "\", namespace \"" + request.ns + "\", tool \"" + request.spec.tool +
                      "\", environment \"" + request.spec.environment + "\", dataSensitivity \"" +
                      request.spec.dataSensitivity + "\" (" +
                      verdictList(decision.verdicts, false) + ")";
  } else {
    decision.reason = "denied: no matching AgentPolicy allows all of the task (" +
                      verdictList(decision.verdicts, true) + ")";
  }
  return decision;
}

}  // namespace tasklease::op
