#pragma once
// Where the pod specs are in an admitted object: a Pod's own spec, the pod template of a
// Deployment, ReplicaSet, StatefulSet, DaemonSet, Job or ReplicationController, and a CronJob's
// spec.jobTemplate.spec.template. Also which workload identities (Kind/name) the pod may claim
// for tasklease.io/dedicated-to.
//
//   StatusOr<Workload> w = workloadOf(object, "Deployment", "team-a");
//   for (const PodUnderReview& pod : w->pods) checkPod(pod, ...);
//
// The PodUnderReview views point into `object`, which must outlive the Workload.

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "webhook/rules.h"

namespace tasklease::webhook {

// Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, ReplicationController.
bool isPodBearingKind(std::string_view kind);
// The same kind in its own API group ("apps" Deployment, "" Pod, "batch" CronJob, ...).
bool isPodBearing(std::string_view group, std::string_view kind);
const std::vector<std::string>& podBearingKinds();

struct Workload {
  std::string kind;
  std::string ns;
  std::string name;  // metadata.name, or metadata.generateName followed by "*"
  std::vector<PodUnderReview> pods;
};

// ns is used when metadata.namespace is empty (admission requests carry it separately; the
// offline check defaults to "default"). Errors name the missing or mistyped field.
StatusOr<Workload> workloadOf(const JsonView& object, std::string_view kind, std::string_view ns);
inline StatusOr<Workload> workloadOf(const Json& object, std::string_view kind,
                                     std::string_view ns) {
  return workloadOf(JsonView(object), kind, ns);
}
// The Workload points into object: a temporary would leave it dangling.
StatusOr<Workload> workloadOf(const Json&& object, std::string_view kind,
                              std::string_view ns) = delete;

}  // namespace tasklease::webhook
