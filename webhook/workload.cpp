#include "webhook/workload.h"

#include <algorithm>

namespace tasklease::webhook {
namespace {

bool allDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The identities a pod may claim: itself, its controller, and the workload that controller
// was made by when the name says so (Deployment "web" makes ReplicaSet "web-<pod-template-hash>",
// CronJob "nightly" makes Job "nightly-<minutes>").
std::vector<std::string> identitiesOf(std::string_view kind, const JsonView& metadata,
                                      const JsonView& podLabels) {
  std::vector<std::string> ids;
  std::string_view name = metadata.member("name").string();
  if (!name.empty()) ids.push_back(std::string(kind) + "/" + std::string(name));
  metadata.member("ownerReferences").forEach([&](size_t, const JsonView& owner) {
    if (owner.member("controller").boolean() != true) return;
    std::string_view ownerKind = owner.member("kind").string();
    std::string_view ownerName = owner.member("name").string();
    if (ownerKind.empty() || ownerName.empty()) return;
    ids.push_back(std::string(ownerKind) + "/" + std::string(ownerName));
    size_t dash = ownerName.rfind('-');
    if (dash == std::string_view::npos || dash == 0) return;
    std::string_view prefix = ownerName.substr(0, dash);
    std::string_view suffix = ownerName.substr(dash + 1);
    if (ownerKind == "ReplicaSet" && podLabels.member("pod-template-hash").string() == suffix) {
      ids.push_back("Deployment/" + std::string(prefix));
    } else if (ownerKind == "Job" && allDigits(suffix)) {
      ids.push_back("CronJob/" + std::string(prefix));
    }
  });
  return ids;
}

// The ownerReference marked controller: true, if any (the API server allows one).
std::optional<OwnerReference> controllerOf(const JsonView& metadata) {
  std::optional<OwnerReference> found;
  metadata.member("ownerReferences").forEach([&](size_t, const JsonView& owner) {
    if (found || owner.member("controller").boolean() != true) return;
    found = OwnerReference{std::string(owner.member("apiVersion").string()),
                           std::string(owner.member("kind").string()),
                           std::string(owner.member("name").string()),
                           std::string(owner.member("uid").string())};
  });
  return found;
}

struct TemplatePath {
  const char* group;  // the kind's API group: a custom resource reusing the name is not ours
  const char* kind;
  std::vector<const char*> toTemplate;  // members leading to the PodTemplateSpec (empty: Pod)
};

const std::vector<TemplatePath>& templatePaths() {
  static const std::vector<TemplatePath> kPaths = {
      {"", "Pod", {}},
      {"apps", "Deployment", {"spec", "template"}},
      {"apps", "ReplicaSet", {"spec", "template"}},
      {"apps", "StatefulSet", {"spec", "template"}},
      {"apps", "DaemonSet", {"spec", "template"}},
      {"batch", "Job", {"spec", "template"}},
      {"", "ReplicationController", {"spec", "template"}},
      {"batch", "CronJob", {"spec", "jobTemplate", "spec", "template"}},
  };
  return kPaths;
}

}  // namespace

bool isPodBearingKind(std::string_view kind) {
  const auto& paths = templatePaths();
  return std::any_of(paths.begin(), paths.end(),
                     [&](const TemplatePath& p) { return kind == p.kind; });
}

bool isPodBearing(std::string_view group, std::string_view kind) {
  const auto& paths = templatePaths();
  return std::any_of(paths.begin(), paths.end(),
                     [&](const TemplatePath& p) { return kind == p.kind && group == p.group; });
}

const std::vector<std::string>& podBearingKinds() {
  static const std::vector<std::string> kKinds = [] {
    std::vector<std::string> kinds;
    for (const auto& p : templatePaths()) kinds.emplace_back(p.kind);
    return kinds;
  }();
  return kKinds;
}

StatusOr<Workload> workloadOf(const JsonView& object, std::string_view kind, std::string_view ns) {
  const auto& paths = templatePaths();
  auto path = std::find_if(paths.begin(), paths.end(),
                           [&](const TemplatePath& p) { return kind == p.kind; });
  if (path == paths.end()) {
    return invalidArgument("kind " + std::string(kind) + " has no pod template");
  }
  if (!object.isObject()) return invalidArgument(std::string(kind) + ": not a JSON object");
  const JsonView metadata = object.member("metadata");
  Workload w;
  w.kind = std::string(kind);
  w.ns = std::string(metadata.member("namespace").string());
  if (w.ns.empty()) w.ns = std::string(ns);
  w.name = std::string(metadata.member("name").string());
  if (w.name.empty()) {
    if (std::string_view generated = metadata.member("generateName").string(); !generated.empty()) {
      w.name = std::string(generated) + "*";
    }
  }

  JsonView tmpl = object;
  std::string prefix;
  for (const char* step : path->toTemplate) {
    JsonView next = tmpl.member(step);
    prefix += prefix.empty() ? step : std::string(".") + step;
    if (!next.isObject()) {
      return invalidArgument(std::string(kind) + " " + w.name + ": " + prefix +
                             " is missing or not an object");
    }
    tmpl = next;
  }
  const std::string base = prefix.empty() ? "" : prefix + ".";
  const auto [podMeta, spec] = tmpl.members<2>({"metadata", "spec"});
  if (!spec.isObject()) {
    return invalidArgument(std::string(kind) + " " + w.name + ": " + base +
                           "spec is missing or not an object");
  }
  PodUnderReview pod;
  pod.ns = w.ns;
  pod.specPath = base + "spec";
  pod.labelsPath = base + "metadata.labels";
  pod.spec = spec;
  pod.labels = podMeta.member("labels");
  pod.identities = identitiesOf(kind, metadata, pod.labels);
  pod.kind = w.kind;
  pod.name = w.name;
  pod.controller = controllerOf(metadata);
  w.pods.push_back(std::move(pod));
  return w;
}

}  // namespace tasklease::webhook
