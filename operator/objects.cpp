#include "operator/objects.h"

#include <algorithm>

#include "common/base64.h"

namespace tasklease::op {
namespace {

// Removes entries named `name` from the list at object[key] (creating the list) and appends
// `entry`: re-applying the template never duplicates what the operator adds.
void replaceNamed(Json& object, const char* key, const std::string& name, Json entry) {
  Json& list = object[key];
  if (!list.is_array()) list = Json::array();
  Json kept = Json::array();
  for (auto& item : list) {
    if (!(item.is_object() && item.value("name", std::string()) == name)) kept.push_back(item);
  }
  kept.push_back(std::move(entry));
  list = std::move(kept);
}

}  // namespace

Json issuedObjectMeta(const TaskRef& task, const std::string& name) {
  return {{"name", name},
          {"namespace", task.ns},
          {"labels", taskLabels(task)},
          {"ownerReferences", Json::array({taskOwnerReference(task)})}};
}

Json buildServiceAccount(const TaskRef& task, const TaskNames& names, CredentialType type) {
  Json meta = issuedObjectMeta(task, names.serviceAccount());
  meta["annotations"] = {{kCredentialTypeAnnotation, credentialTypeName(type)}};
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", meta},
          {"automountServiceAccountToken", false}};
}

Json buildRole(const TaskRef& task, const TaskNames& names, const std::vector<PolicyRule>& rules) {
  Json list = Json::array();
  for (const auto& r : rules) list.push_back(policyRuleToJson(r));
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", issuedObjectMeta(task, names.role())},
          {"rules", list}};
}

Json buildRoleBinding(const TaskRef& task, const TaskNames& names) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata", issuedObjectMeta(task, names.roleBinding())},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", names.role()}}},
          {"subjects", Json::array({{{"kind", "ServiceAccount"},
                                     {"name", names.serviceAccount()},
                                     {"namespace", task.ns}}})}};
}

StatusOr<Json> buildJob(const TaskRef& task, const TaskNames& names, const Json& podTemplate,
                        std::chrono::seconds remaining) {
  if (!podTemplate.is_object()) {
    return invalidArgument("spec.workload.template: must be a PodTemplateSpec object");
  }
  Json tmpl = podTemplate;
  Json& meta = tmpl["metadata"];
  if (!meta.is_object()) meta = Json::object();
  Json& labels = meta["labels"];
  if (!labels.is_object()) labels = Json::object();
  labels.update(taskLabels(task));

  Json& spec = tmpl["spec"];
  if (!spec.is_object() || !spec.contains("containers") || !spec["containers"].is_array() ||
      spec["containers"].empty()) {
    return invalidArgument("spec.workload.template.spec.containers: required, at least one");
  }
  spec.erase("serviceAccount");  // the deprecated alias would contradict serviceAccountName
  spec["serviceAccountName"] = names.serviceAccount();
  spec["automountServiceAccountToken"] = false;
  const std::string restart = spec.value("restartPolicy", std::string());
  if (restart != "Never" && restart != "OnFailure") spec["restartPolicy"] = "Never";
  replaceNamed(spec, "volumes", kCredentialVolume,
               {{"name", kCredentialVolume}, {"secret", {{"secretName", names.secret()}}}});
  const Json mount = {
      {"name", kCredentialVolume}, {"mountPath", kCredentialMountPath}, {"readOnly", true}};
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (Json& container : spec[list]) {
      if (container.is_object()) replaceNamed(container, "volumeMounts", kCredentialVolume, mount);
    }
  }
  return Json{{"apiVersion", "batch/v1"},
              {"kind", "Job"},
              {"metadata", issuedObjectMeta(task, names.job())},
              {"spec",
               {{"backoffLimit", 0},
                {"activeDeadlineSeconds", std::max<int64_t>(1, remaining.count())},
                {"template", tmpl}}}};
}

std::optional<std::string> secretValue(const Json& secret, std::string_view key) {
  const Json& data = objectAt(secret, {"data"});
  const auto it = data.find(key);
  if (it == data.end() || !it->is_string()) return std::nullopt;
  return base64Decode(it->get<std::string>());
}

JobOutcome jobOutcome(const Json& job) {
  const Json& status = objectAt(job, {"status"});
  const auto conditions = status.find("conditions");
  if (conditions == status.end() || !conditions->is_array()) return JobOutcome::kRunning;
  for (const Json& c : *conditions) {
    if (!c.is_object() || c.value("status", std::string()) != "True") continue;
    const std::string type = c.value("type", std::string());
    if (type == "Complete") return JobOutcome::kSucceeded;
    if (type == "Failed") return JobOutcome::kFailed;
  }
  return JobOutcome::kRunning;
}

}  // namespace tasklease::op
