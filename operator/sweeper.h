#pragma once
// Sweeper: the backstop of revocation (DESIGN.md §5, last invariant). It lists everything the
// operator labelled for a task and revokes what belongs to a task that is gone, was replaced by
// another of the same name, or has finished, whatever the reason it was left: a crash between
// two writes, a finalizer removed by hand, an object re-created by someone else.
//
//   Sweeper sweeper(client, view, revoker, "", now);
//   auto report = sweeper.sweepAll();            // on a timer
//   sweeper.sweepTask({"team-a", "t1"});        // when a task has left the cache

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "kube/api_client.h"
#include "operator/cluster_view.h"
#include "operator/revoker.h"

namespace tasklease::op {

struct SweepReport {
  std::vector<std::string> revokedTasks;  // "ns/name (uid)" of each group revoked
  std::vector<std::string> deleted;       // "Kind/name", every object this sweep deleted
  std::vector<std::string> errors;        // groups that failed; the next sweep tries again
};

class Sweeper {
 public:
  // `ns` limits the sweep to one namespace ("" for all), as the operator's watch does.
  Sweeper(kube::ApiClient& client, const ClusterView& view, Revoker& revoker, std::string ns,
          std::function<TimePoint()> now);

  StatusOr<SweepReport> sweepAll();
  // Only what is labelled for tasks named `task.name` in `task.ns`.
  StatusOr<SweepReport> sweepTask(const kube::ObjectKey& task);

 private:
  StatusOr<SweepReport> sweep(const std::string& ns, const std::string& selector);

  kube::ApiClient& client_;
  const ClusterView& view_;
  Revoker& revoker_;
  const std::string ns_;
  const std::function<TimePoint()> now_;
};

}  // namespace tasklease::op
