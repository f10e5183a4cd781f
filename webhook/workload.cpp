#include "webhook/workload.h"

#include <algorithm>

#include "webhook/json_access.h"

namespace tasklease::webhook {
namespace {

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The identities a pod may claim: itself, its controller, and the workload that controller
// was made by when the name says so (Deployment "web" makes ReplicaSet "web-<pod-template-hash>",
// CronJob "nightly" makes Job "nightly-<minutes>").
std::vector<std::string> identitiesOf(std::string_view kind, const Json& metadata,
                                      const Json& podLabels) {
  std::vector<std::string> ids;
  std::string_view name = stringMember(metadata, "name");
  if (!name.empty()) ids.push_back(std::string(kind) + "/" + std::string(name));
  for (const Json& owner : arrayMember(metadata, "ownerReferences")) {
    const Json* controller = member(owner, "controller");
    if (controller == nullptr || !controller->is_boolean() || !controller->get<bool>()) continue;
    std::string_view ownerKind = stringMember(owner, "kind");
    std::string_view ownerName = stringMember(owner, "name");
    if (ownerKind.empty() || ownerName.empty()) continue;
    ids.push_back(std::string(ownerKind) + "/" + std::string(ownerName));
    size_t dash = ownerName.rfind('-');
    if (dash == std::string_view::npos || dash == 0) continue;
    std::string_view prefix = ownerName.substr(0, dash);
    std::string_view suffix = ownerName.substr(dash + 1);
    if (ownerKind == "ReplicaSet" && stringMember(podLabels, "pod-template-hash") == suffix) {
      ids.push_back("Deployment/" + std::string(prefix));
    } else if (ownerKind == "Job" && allDigits(suffix)) {
      ids.push_back("CronJob/" + std::string(prefix));
    }
  }
  return ids;
}

struct TemplatePath {
  const char* kind;
  std::vector<const char*> toTemplate;  // members leading to the PodTemplateSpec (empty: Pod)
};

const std::vector<TemplatePath>& templatePaths() {
  static const std::vector<TemplatePath> kPaths = {
      {"Pod", {}},
      {"Deployment", {"spec", "template"}},
      {"ReplicaSet", {"spec", "template"}},
      {"StatefulSet", {"spec", "template"}},
      {"DaemonSet", {"spec", "template"}},
      {"Job", {"spec", "template"}},
      {"ReplicationController", {"spec", "template"}},
      {"CronJob", {"spec", "jobTemplate", "spec", "template"}},
  };
  return kPaths;
}

}  // namespace

bool isPodBearingKind(std::string_view kind) {
  const auto& paths = templatePaths();
  return std::any_of(paths.begin(), paths.end(),
                     [&](const TemplatePath& p) { return kind == p.kind; });
}

const std::vector<std::string>& podBearingKinds() {
  static const std::vector<std::string> kKinds = [] {
    std::vector<std::string> kinds;
    for (const auto& p : templatePaths()) kinds.emplace_back(p.kind);
    return kinds;
  }();
  return kKinds;
}

StatusOr<Workload> workloadOf(const Json& object, std::string_view kind, std::string_view ns) {
  const auto& paths = templatePaths();
  auto path = std::find_if(paths.begin(), paths.end(),
                           [&](const TemplatePath& p) { return kind == p.kind; });
  if (path == paths.end()) {
    return invalidArgument("kind " + std::string(kind) + " has no pod template");
  }
  if (!object.is_object()) return invalidArgument(std::string(kind) + ": not a JSON object");
  const Json& metadata = objectMember(object, "metadata");
  Workload w;
  w.kind = std::string(kind);
  w.ns = std::string(stringMember(metadata, "namespace"));
  if (w.ns.empty()) w.ns = std::string(ns);
  w.name = std::string(stringMember(metadata, "name"));
  if (w.name.empty() && !stringMember(metadata, "generateName").empty()) {
    w.name = std::string(stringMember(metadata, "generateName")) + "*";
  }

  const Json* tmpl = &object;
  std::string prefix;
  for (const char* step : path->toTemplate) {
    const Json* next = member(*tmpl, step);
    prefix += prefix.empty() ? step : std::string(".") + step;
    if (next == nullptr || !next->is_object()) {
      return invalidArgument(std::string(kind) + " " + w.name + ": " + prefix +
                             " is missing or not an object");
    }
    tmpl = next;
  }
  const std::string base = prefix.empty() ? "" : prefix + ".";
  const Json* spec = member(*tmpl, "spec");
  if (spec == nullptr || !spec->is_object()) {
    return invalidArgument(std::string(kind) + " " + w.name + ": " + base +
                           "spec is missing or not an object");
  }
  const Json& podMeta = objectMember(*tmpl, "metadata");
  PodUnderReview pod;
  pod.ns = w.ns;
  pod.specPath = base + "spec";
  pod.labelsPath = base + "metadata.labels";
  pod.spec = spec;
  pod.labels = &objectMember(podMeta, "labels");
  pod.identities = identitiesOf(kind, metadata, *pod.labels);
  w.pods.push_back(std::move(pod));
  return w;
}

}  // namespace tasklease::webhook
