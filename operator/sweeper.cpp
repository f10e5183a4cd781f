#include "operator/sweeper.h"

#include <map>
#include <tuple>

#include "common/log.h"

namespace tasklease::op {
namespace {

using GroupKey = std::tuple<std::string, std::string, std::string>;  // ns, task name, task uid

GroupKey groupOf(const Json& object) {
  return {stringAt(object, {"metadata", "namespace"}),
          stringAt(object, {"metadata", "labels", kTaskLabel}),
          stringAt(object, {"metadata", "labels", kTaskUidLabel})};
}

}  // namespace

Sweeper::Sweeper(kube::ApiClient& client, const ClusterView& view, Revoker& revoker, std::string ns,
                 std::function<TimePoint()> now)
    : client_(client), view_(view), revoker_(revoker), ns_(std::move(ns)), now_(std::move(now)) {}

StatusOr<SweepReport> Sweeper::sweepAll() {
  return sweep(ns_, std::string(kManagedSelector) + "," + kTaskUidLabel);
}

StatusOr<SweepReport> Sweeper::sweepTask(const kube::ObjectKey& task) {
  return sweep(task.ns, std::string(kManagedSelector) + "," + kTaskLabel + "=" + task.name);
}

StatusOr<SweepReport> Sweeper::sweep(const std::string& ns, const std::string& selector) {
  std::map<GroupKey, bool> groups;  // -> has credential objects (not only a Job)
  std::map<GroupKey, std::vector<std::string>> jobs;
  for (const kube::ResourceRef* resource :
       {&kube::resources::kRoleBindings, &kube::resources::kSecrets,
        &kube::resources::kServiceAccounts, &kube::resources::kRoles, &kube::resources::kJobs}) {
    kube::ListOptions options;
    options.labelSelector = selector;
    auto listed = kube::listAll(client_, *resource, ns, options);
    if (!listed.ok()) return listed.status().annotate("sweep: listing " + resource->resource);
    for (const Json& item : listed->items) {
      const GroupKey g = groupOf(item);
      if (std::get<1>(g).empty() || std::get<2>(g).empty()) continue;
      if (resource == &kube::resources::kJobs) {
        jobs[g].push_back(stringAt(item, {"metadata", "name"}));
        groups.emplace(g, false);
      } else {
        groups[g] = true;
      }
    }
  }

  SweepReport report;
  for (const auto& [g, hasCredential] : groups) {
    const auto& [gns, name, uid] = g;
    std::string task = gns;
    task.append("/").append(name);
    std::string label = task;
    label.append(" (").append(uid).append(")");
    kube::ObjectPtr live = view_.task({gns, name});
    const bool sameTask = live && kube::uidOf(*live) == uid;
    const Phase phase = sameTask ? parsePhase(stringAt(*live, {"status", "phase"})) : Phase::kNone;
    const bool finished = sameTask && isTerminal(phase);
    if (sameTask && !finished) continue;
    if (!sameTask) {
      // The cache may lag behind the objects: only the API server can say the task is gone.
      auto current = client_.get(kAgentTasks, {gns, name});
      if (current.ok() && kube::uidOf(*current) == uid) continue;
      if (!current.ok() && !current.status().isNotFound()) {
        report.errors.push_back(label + ": " + current.status().message());
        continue;
      }
    }
    if (hasCredential) {
      RevocationTarget target{TaskRef{gns, name, uid}, taskNames(name, uid), std::nullopt,
                              Json::object()};
      if (finished) target.statusCredential = objectAt(*live, {"status", "credential"});
      auto revoked = revoker_.revoke(target, now_());
      if (!revoked.ok()) {
        report.errors.push_back(label + ": " + revoked.status().message());
        continue;
      }
      // Not what an unfinished revocation deleted before the sweep took it over.
      report.deleted.insert(report.deleted.end(), revoked->deletedByThisPass.begin(),
                            revoked->deletedByThisPass.end());
      if (!revoked->complete()) {
        // Everything else is gone; the held object is tried again by the next sweep.
        std::string error = label + ": still present after its deletion:";
        for (const HeldObject& h : revoked->held) error += " " + h.describe();
        report.errors.push_back(std::move(error));
      } else if (revoked->anything()) {
        report.revokedTasks.push_back(label);
        logInfo(
            "sweep revoked leftover credential objects",
            {{"task", task}, {"uid", uid}, {"finished", finished}, {"deleted", revoked->deleted}});
      }
    }
    // A finished task keeps its Job (its outcome and logs); a gone task's Job goes too.
    if (sameTask) continue;
    for (const std::string& job : jobs[g]) {
      kube::DeleteOptions options;
      options.propagation = kube::PropagationPolicy::kBackground;
      Status s = client_.remove(kube::resources::kJobs, {gns, job}, options);
      if (!s.ok() && !s.isNotFound()) {
        std::string error = label;
        error.append(": deleting Job ").append(job).append(": ").append(s.message());
        report.errors.push_back(std::move(error));
      } else if (s.ok()) {
        report.deleted.push_back("Job/" + job);
      }
    }
  }
  return report;
}

}  // namespace tasklease::op
