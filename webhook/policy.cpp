#include "webhook/policy.h"

#include <algorithm>

#include "webhook/identity_exception.h"
#include "webhook/json_access.h"

namespace tasklease::webhook {

WorkloadEvaluation evaluateWorkload(const Workload& workload, const ClusterState& state,
                                    const RuleConfig& config, TimePoint now) {
  WorkloadEvaluation out;
  std::vector<IdentityException> exceptions;
  bool exceptionsLoaded = false;
  for (const PodUnderReview& pod : workload.pods) {
    PodFindings f = checkPod(pod, state, config, now);
    out.notes.insert(out.notes.end(), f.notes.begin(), f.notes.end());
    out.serviceAccountName = f.serviceAccountName;
    if (f.task) out.task = f.task;
    if (!f.violations.empty() && !exceptionsLoaded) {
      // Invalid exceptions can exist only if created while the webhook was away; they cover
      // nothing, and the review says so. Sorted by name so that the same one is reported every
      // time.
      for (const ObjectRef& obj : state.identityExceptions(workload.ns)) {
        if (auto e = parseIdentityException(*obj); e.ok()) {
          exceptions.push_back(std::move(*e));
        } else {
          out.ignoredExceptions.push_back(
              {std::string(stringMember(objectMember(*obj, "metadata"), "name")),
               e.status().message()});
        }
      }
      std::sort(
          exceptions.begin(), exceptions.end(),
          [](const IdentityException& a, const IdentityException& b) { return a.name < b.name; });
      std::sort(out.ignoredExceptions.begin(), out.ignoredExceptions.end(),
                [](const IgnoredException& a, const IgnoredException& b) {
                  return a.exception < b.exception;
                });
      exceptionsLoaded = true;
    }
    const Json labels = exceptions.empty() ? Json() : pod.labels.toJson();
    for (Violation& v : f.violations) {
      auto cover =
          std::find_if(exceptions.begin(), exceptions.end(), [&](const IdentityException& e) {
            return e.covers(v.rule, f.serviceAccountName, labels, now);
          });
      if (cover == exceptions.end()) {
        out.violations.push_back(std::move(v));
      } else {
        out.excepted.push_back(
            {std::move(v), cover->name, cover->approvedBy, cover->expiresAtText});
      }
    }
  }
  return out;
}

}  // namespace tasklease::webhook
