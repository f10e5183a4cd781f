#include "webhook/agenttask.h"

#include <algorithm>
#include <set>

#include "common/duration.h"
#include "webhook/identity_exception.h"
#include "webhook/json_access.h"
#include "webhook/pod_references.h"
#include "webhook/rules.h"

namespace tasklease::webhook {
namespace {

using std::chrono::minutes;

constexpr std::string_view kForbiddenVerbs[] = {"escalate", "bind", "impersonate"};

// The strings of a list member; absent is empty; anything else is a problem for `field`.
std::vector<std::string> stringList(const Json& object, std::string_view key,
                                    const std::string& field, std::vector<std::string>* problems) {
  std::vector<std::string> out;
  const Json* m = member(object, key);
  if (m == nullptr || m->is_null()) return out;
  if (!m->is_array()) {
    if (problems != nullptr) problems->push_back(field + ": must be a list of strings");
    return out;
  }
  for (size_t i = 0; i < m->size(); ++i) {
    const Json& v = (*m)[i];
    if (!v.is_string()) {
      if (problems != nullptr) problems->push_back(indexPath(field, i) + ": must be a string");
      continue;
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

bool isWildcardResource(std::string_view r) {
  return r == "*" || r.rfind("*/", 0) == 0 || (r.size() >= 2 && r.substr(r.size() - 2) == "/*");
}

bool isForbiddenVerb(std::string_view v) {
  return std::find(std::begin(kForbiddenVerbs), std::end(kForbiddenVerbs), v) !=
         std::end(kForbiddenVerbs);
}

void ttlProblems(const Json& spec, std::vector<std::string>& problems) {
  const Json* ttl = member(spec, "ttl");
  if (ttl == nullptr || !ttl->is_string()) {
    problems.emplace_back("spec.ttl: required, a duration such as \"30m\"");
    return;
  }
  const std::string text = ttl->get<std::string>();
  auto parsed = parseDuration(text);
  if (!parsed.ok()) {
    problems.push_back("spec.ttl: " + parsed.status().message());
    return;
  }
  if (*parsed < minutes(1) || *parsed > std::chrono::hours(24)) {
    problems.push_back("spec.ttl: \"" + text + "\" is outside 1m to 24h");
    return;
  }
  const std::string type(stringMember(objectMember(spec, "credential"), "type"));
  if ((type.empty() || type == "ServiceAccountToken") && *parsed < minutes(10)) {
    problems.push_back("spec.ttl: \"" + text +
                       "\" is below 10m, the shortest ServiceAccountToken the API server issues "
                       "(TokenRequest minimum); ask for at least 10m, or use credential type "
                       "X509SVID");
  }
}

// The operator renders spec.workload.template into a Job (operator/objects.h); what it cannot
// render is refused here, where the requester sees it, rather than left to fail later.
void workloadProblems(const Json& spec, std::vector<std::string>& problems) {
  const Json* workload = member(spec, "workload");
  if (workload == nullptr || workload->is_null()) return;
  const Json* tmpl = member(*workload, "template");
  if (tmpl == nullptr || !tmpl->is_object()) {
    problems.emplace_back("spec.workload.template: required, a PodTemplateSpec object");
    return;
  }
  const Json* podSpec = member(*tmpl, "spec");
  if (podSpec == nullptr || !podSpec->is_object()) {
    problems.emplace_back("spec.workload.template.spec: required, a PodSpec object");
    return;
  }
  const Json* containers = member(*podSpec, "containers");
  if (containers == nullptr || !containers->is_array() || containers->empty()) {
    problems.emplace_back(
        "spec.workload.template.spec.containers: required, at least one container");
  }
}

void credentialProblems(const Json& spec, std::vector<std::string>& problems) {
  const Json* type = member(objectMember(spec, "credential"), "type");
  if (type == nullptr || type->is_null()) return;
  if (!type->is_string() || (*type != "ServiceAccountToken" && *type != "X509SVID")) {
    problems.emplace_back(
        "spec.credential.type: must be ServiceAccountToken or X509SVID (or left out for "
        "ServiceAccountToken)");
  }
}

void ruleProblems(const Json& rule, const std::string& field, std::vector<std::string>& problems) {
  if (!rule.is_object()) {
    problems.push_back(field + ": must be an object (an RBAC PolicyRule)");
    return;
  }
  const auto verbs = stringList(rule, "verbs", field + ".verbs", &problems);
  const auto resources = stringList(rule, "resources", field + ".resources", &problems);
  const auto groups = stringList(rule, "apiGroups", field + ".apiGroups", &problems);
  stringList(rule, "resourceNames", field + ".resourceNames", &problems);
  if (verbs.empty()) problems.push_back(field + ".verbs: required, at least one verb");
  if (resources.empty()) problems.push_back(field + ".resources: required, at least one");
  for (size_t i = 0; i < verbs.size(); ++i) {
    const std::string where = indexPath(field + ".verbs", i);
    if (verbs[i] == "*") {
      problems.push_back(where + ": \"*\" is not allowed: name the verbs the task needs");
    } else if (isForbiddenVerb(verbs[i])) {
      problems.push_back(where + ": \"" + verbs[i] +
                         "\" is not allowed: a task may never gain the power to grant or assume "
                         "more authority (escalate, bind, impersonate)");
    }
  }
  for (size_t i = 0; i < resources.size(); ++i) {
    if (isWildcardResource(resources[i])) {
      problems.push_back(indexPath(field + ".resources", i) + ": \"" + resources[i] +
                         "\" is a wildcard: name the resources the task needs");
    }
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    if (groups[i] == "*") {
      problems.push_back(indexPath(field + ".apiGroups", i) +
                         ": \"*\" is not allowed: name the API groups (\"\" is the core group)");
    }
  }
}

const Json& annotationsOf(const Json& object) {
  return objectMember(objectMember(object, "metadata"), "annotations");
}

bool completedOf(const Json& object) {
  const Json* c = member(objectMember(object, "spec"), "completed");
  return c != nullptr && c->is_boolean() && c->get<bool>();
}

// "tasklease.io/requested-by" as a JSON Pointer token: '~' as "~0", '/' as "~1".
std::string pointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

AdmissionResponse refuse(const AdmissionRequest& req, int code, const char* reason,
                         std::string message) {
  AdmissionResponse r;
  r.uid = req.uid;
  r.allowed = false;
  r.code = code;
  r.reason = reason;
  r.message = std::move(message);
  return r;
}

}  // namespace

bool isAgentTaskRequest(const AdmissionRequest& request) {
  return request.group == kTaskleaseGroup && request.kind == kAgentTaskKind &&
         request.subResource.empty();
}

std::string describePermission(const PermissionCheck& c) {
  std::string resource = c.resource;
  if (!c.subresource.empty()) resource += "/" + c.subresource;
  std::string out = c.verb + " on " + resource + " (apiGroup \"" + c.apiGroup + "\"";
  if (!c.resourceName.empty()) out += ", resourceName \"" + c.resourceName + "\"";
  return out + ")";
}

std::vector<std::string> agentTaskSpecProblems(const Json& spec) {
  std::vector<std::string> problems;
  if (!spec.is_object()) return {"spec: required, an object"};
  ttlProblems(spec, problems);
  credentialProblems(spec, problems);
  workloadProblems(spec, problems);
  const Json* scope = member(spec, "scope");
  if (scope != nullptr && !scope->is_null() && !scope->is_object()) {
    problems.emplace_back("spec.scope: must be an object with rules");
    return problems;
  }
  const Json* rules = scope != nullptr ? member(*scope, "rules") : nullptr;
  if (rules == nullptr || rules->is_null()) return problems;
  if (!rules->is_array()) {
    problems.emplace_back("spec.scope.rules: must be a list of RBAC PolicyRules");
    return problems;
  }
  for (size_t i = 0; i < rules->size(); ++i) {
    ruleProblems((*rules)[i], indexPath("spec.scope.rules", i), problems);
  }
  return problems;
}

std::vector<std::string> agentTaskUpdateProblems(const Json& oldObject, const Json& object) {
  std::vector<std::string> problems;
  Json before = objectMember(oldObject, "spec");
  Json after = objectMember(object, "spec");
  before.erase("completed");
  after.erase("completed");
  std::set<std::string> keys;
  for (const auto& [k, v] : before.items()) keys.insert(k);
  for (const auto& [k, v] : after.items()) keys.insert(k);
  for (const std::string& k : keys) {
    const Json* a = member(before, k);
    const Json* b = member(after, k);
    if ((a == nullptr) != (b == nullptr) || (a != nullptr && *a != *b)) {
      problems.push_back("spec." + k +
                         ": the spec cannot change once the task is created (only "
                         "spec.completed, from false to true); create a new AgentTask instead");
    }
  }
  if (completedOf(oldObject) && !completedOf(object)) {
    problems.emplace_back("spec.completed: cannot change from true back to false");
  }
  for (const char* key : {kRequestedByAnnotation, kRequestedBySignatureAnnotation}) {
    const Json* a = member(annotationsOf(oldObject), key);
    const Json* b = member(annotationsOf(object), key);
    if ((a == nullptr) != (b == nullptr) || (a != nullptr && *a != *b)) {
      problems.push_back(std::string("metadata.annotations[") + key +
                         "]: written by the tasklease webhook when the task was created; it can "
                         "never be added, changed or removed");
    }
  }
  return problems;
}

std::vector<PermissionCheck> planPermissionChecks(const Json& spec) {
  std::vector<PermissionCheck> out;
  std::set<PermissionCheck> seen;
  for (const Json& rule : arrayMember(objectMember(spec, "scope"), "rules")) {
    std::vector<std::string> groups = stringList(rule, "apiGroups", "", nullptr);
    if (groups.empty()) groups.emplace_back("");
    std::vector<std::string> names = stringList(rule, "resourceNames", "", nullptr);
    if (names.empty()) names.emplace_back("");
    const auto resources = stringList(rule, "resources", "", nullptr);
    const auto verbs = stringList(rule, "verbs", "", nullptr);
    for (const std::string& group : groups) {
      if (group == "*") continue;
      for (const std::string& resource : resources) {
        if (isWildcardResource(resource)) continue;
        const size_t slash = resource.find('/');
        for (const std::string& verb : verbs) {
          if (verb == "*" || isForbiddenVerb(verb)) continue;
          for (const std::string& name : names) {
            PermissionCheck c{verb, group, resource.substr(0, slash),
                              slash == std::string::npos ? "" : resource.substr(slash + 1), name};
            if (seen.insert(c).second) out.push_back(std::move(c));
          }
        }
      }
    }
  }
  for (WorkloadAccess& a : workloadAccess(spec)) {
    if (seen.insert(a.check).second) out.push_back(std::move(a.check));
  }
  return out;
}

std::vector<WorkloadAccess> workloadAccess(const Json& spec) {
  std::vector<WorkloadAccess> out;
  const Json* workload = member(spec, "workload");
  if (workload == nullptr || !workload->is_object()) return out;
  out.push_back({{"create", "batch", "jobs", "", ""}, "the Job that runs spec.workload"});
  const JsonView podSpec = JsonView(objectMember(objectMember(*workload, "template"), "spec"));
  std::set<PermissionCheck> seen;
  for (const PodReference& r : podReferences(podSpec, kWorkloadTemplateSpecPath)) {
    if (r.volumeName == kCredentialVolumeName) continue;  // replaced by the operator
    PermissionCheck c{"get", "", r.kind == ReferencedKind::kSecret ? "secrets" : "configmaps", "",
                      r.name};
    if (seen.insert(c).second) out.push_back({std::move(c), "read by " + r.path});
  }
  return out;
}

AdmissionResponse stampAgentTask(const AdmissionRequest& req, const SigningKey& key,
                                 TimePoint now) {
  const Json& annotations = annotationsOf(req.object);
  for (const char* k : {kRequestedByAnnotation, kRequestedBySignatureAnnotation}) {
    if (member(annotations, k) != nullptr) {
      return refuse(
          req, 403, "Forbidden",
          std::string("tasklease: metadata.annotations[") + k +
              "] is written by the tasklease webhook from the user making the "
              "request; remove it (and " +
              (k == std::string_view(kRequestedByAnnotation) ? kRequestedBySignatureAnnotation
                                                             : kRequestedByAnnotation) +
              ") from the AgentTask");
    }
  }
  if (req.userInfo.username.empty()) {
    return refuse(req, 400, "BadRequest",
                  "tasklease: the AdmissionReview names no user (request.userInfo.username)");
  }
  const Json& meta = objectMember(req.object, "metadata");
  const std::string who = requestedByValue(requesterOf(req.userInfo));
  const Json* spec = member(req.object, "spec");
  StampSubject subject{req.ns, std::string(stringMember(meta, "name")),
                       std::string(stringMember(meta, "generateName")),
                       spec != nullptr ? *spec : Json()};
  if (subject.ns.empty()) subject.ns = std::string(stringMember(meta, "namespace"));
  auto signature = signStamp(key, subject, who, now);
  if (!signature.ok()) {
    return refuse(req, 400, "BadRequest",
                  "tasklease: cannot stamp the AgentTask: " + signature.status().message());
  }
  Json patch = Json::array();
  if (member(meta, "annotations") == nullptr || !member(meta, "annotations")->is_object()) {
    patch.push_back(
        {{"op", "add"},
         {"path", "/metadata/annotations"},
         {"value",
          {{kRequestedByAnnotation, who}, {kRequestedBySignatureAnnotation, *signature}}}});
  } else {
    patch.push_back({{"op", "add"},
                     {"path", "/metadata/annotations/" + pointerToken(kRequestedByAnnotation)},
                     {"value", who}});
    patch.push_back(
        {{"op", "add"},
         {"path", "/metadata/annotations/" + pointerToken(kRequestedBySignatureAnnotation)},
         {"value", *signature}});
  }
  AdmissionResponse r;
  r.uid = req.uid;
  r.allowed = true;
  r.patch = patch.dump();
  return r;
}

}  // namespace tasklease::webhook
