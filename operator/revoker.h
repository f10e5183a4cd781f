#pragma once
// Revoker: takes tasks' credentials away, in the order of DESIGN.md §5: RoleBinding first (the
// permissions go at once), then the credential Secret (a bound token stops authenticating; an
// X.509 serial goes on the CRL just before), then the ServiceAccount, then the Role.
//
// Tasks are revoked in batches, because a burst of completions would otherwise cost twelve
// API calls per task: revoke() joins the batch being gathered while another is in flight
// (group commit: a task alone is revoked at once, with no waiting), and revokeAll() takes a
// batch as given. Per namespace and kind, one DELETE of the collection selected by
//   app.kubernetes.io/managed-by=tasklease,tasklease.io/task-uid in (<uid>,...)
// deletes every task's object of that kind, and one LIST with the same selector verifies it.
// An object still listed (a foreign finalizer holds it) is reported as held, and its task's
// revocation as unfinished (the caller retries it), but nothing waits for it: every other
// deletion of the task, and the CRL entry, go ahead in the same pass, as do the other tasks of
// the batch. So a finalizer can delay the deletion of the object it holds, never the rest of
// the revocation; objects not labelled with a task's uid are never touched; and a revocation is
// never reported finished that did not happen. Before the Secrets go, each issuer's
// beforeRevoke runs once for the batch (X509SVID: every serial onto the CRL in one ConfigMap
// write); a task whose beforeRevoke fails keeps its Secret for the next pass (the certificate
// in it is what the CRL entry is read from).
//
//   Revoker revoker(client, issuers);
//   auto report = revoker.revoke({.task = ref, .names = names, .statusCredential = cred}, now);
//   if (!report.ok()) return report.status();        // retry with backoff

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"
#include "operator/issuer.h"
#include "operator/naming.h"
#include "operator/task.h"

namespace tasklease::op {

struct RevocationTarget {
  TaskRef task;
  TaskNames names;
  // The task's type; nullopt when the task is gone (then read from the Secret's annotation).
  std::optional<CredentialType> type;
  Json statusCredential = Json::object();
};

// An object a revocation deleted that is still there: a finalizer holds it.
struct HeldObject {
  std::string kind;  // "RoleBinding", "Secret", "ServiceAccount", "Role"
  std::string ns;
  std::string name;
  std::vector<std::string> finalizers;
  // "RoleBinding team-a/tl-t1-1a2b3c4d (finalizers: example.com/hold)"
  std::string describe() const;
  Json toJson() const;  // {"kind", "name", "finalizers"}
};

struct RevocationReport {
  // "RoleBinding/tl-x-1a2b3c4d", in the order deleted, including what earlier passes of this
  // process deleted for the task before one of them failed (a Secret held by a finalizer, an
  // API error): the report of the pass that finishes is the whole revocation. After a restart,
  // only what the new process deleted.
  std::vector<std::string> deleted;
  // What this pass deleted that no earlier pass had (the end of `deleted`): what a count of
  // deletions, such as the sweep's, adds.
  std::vector<std::string> deletedByThisPass;
  // Objects still present after their deletion, in the order above. Everything else was
  // deleted; the revocation is finished only when this is empty, and is retried until then.
  std::vector<HeldObject> held;
  bool anything() const { return !deleted.empty(); }
  bool complete() const { return held.empty(); }
};

struct RevokerOptions {
  // Task uids in one label selector: keeps the request line well under the API server's limits
  // (a uid is 36 characters; 64 of them make a query of about 2.5 KiB).
  size_t maxBatch = 64;
  // Groups of a large batch (more than maxBatch tasks, or several namespaces) revoked at once.
  size_t parallelGroups = 4;
};

class Revoker {
 public:
  Revoker(kube::ApiClient& client, const IssuerSet& issuers, RevokerOptions options = {});
  // Revokes one task, in the next batch (see above). Thread-safe.
  StatusOr<RevocationReport> revoke(const RevocationTarget& target, TimePoint now);
  // Revokes these tasks together; one answer per target, in order.
  std::vector<StatusOr<RevocationReport>> revokeAll(const std::vector<RevocationTarget>& targets,
                                                    TimePoint now);
  // Tasks waiting in revoke() for the next batch.
  size_t waiting();
  // Task uids in one selector (RevokerOptions::maxBatch).
  size_t maxBatch() const { return options_.maxBatch; }

 private:
  struct Pending;
  // One namespace's targets (indices into `targets`), at most maxBatch uids.
  void revokeGroup(const std::vector<RevocationTarget>& targets, const std::string& ns,
                   const std::vector<size_t>& group, TimePoint now,
                   std::vector<StatusOr<RevocationReport>>& results);
  // Merges what this pass asked to delete for each target with what earlier, unfinished passes
  // did, into the reports; remembers it for the targets that did not finish.
  void report(const std::vector<RevocationTarget>& targets, const std::vector<size_t>& group,
              const std::map<size_t, std::vector<std::string>>& requested,
              std::vector<StatusOr<RevocationReport>>& results);
  // Runs the issuers' beforeRevoke for `targets[which]`, and takes out of `which` the targets
  // whose issuer failed (their Secret must stay), noting the error in `failed`.
  void beforeSecrets(const std::vector<RevocationTarget>& targets, const std::string& ns,
                     std::vector<size_t>& which, TimePoint now, std::map<size_t, Status>& failed);

  kube::ApiClient& client_;
  const IssuerSet& issuers_;
  const RevokerOptions options_;

  // What passes that did not finish deleted for a task (report()); erased when one finishes,
  // or kUnfinishedMemory after the last pass.
  struct Unfinished {
    std::vector<std::string> deleted;
    std::chrono::steady_clock::time_point touched;
  };
  static constexpr std::chrono::hours kUnfinishedMemory{1};
  std::mutex unfinishedMu_;
  std::map<std::string, Unfinished> unfinished_;  // by task uid; guarded by unfinishedMu_

  std::mutex mu_;
  std::condition_variable cv_;
  bool busy_ = false;                            // guarded by mu_: a batch is in flight
  std::vector<std::shared_ptr<Pending>> queue_;  // guarded by mu_: waiting for the next batch
};

// RevocationBatcher: revocation off the workers' threads, in groups as tasks come. A lane takes
// the oldest queued task's namespace and, from it, up to one selector's worth of queued tasks
// (Revoker's maxBatch), revokes them together (Revoker::revokeAll), keeps each outcome and hands
// each task's key to `done` (the controller queues it again); the next poll returns the outcome
// once and forgets it. Several lanes run at once, so a task waits for a free lane, never for a
// whole earlier batch to finish; in a burst the queue grows while the lanes are busy and the
// groups grow with it. (A worker waiting in Revoker::revoke() holds its key, so there a batch
// is at most as large as the worker count.) Outcomes live in memory only: after a restart the
// next pass revokes again, which finds nothing left and verifies that. Four lanes by default:
// with 1,000 tasks completed at once (bench/operator_bench.py), the revocation p99 was
// 0.66-0.71 s with one lane, 0.45-0.62 s with two and 0.49-0.50 s with four.
//
//   RevocationBatcher batcher(revoker, now);
//   batcher.setDone([&](const std::string& key) { queue.add(key); });
//   auto outcome = batcher.poll("team-a/t1", target);   // nullopt: come back when done
class RevocationBatcher {
 public:
  RevocationBatcher(Revoker& revoker, std::function<TimePoint()> now, size_t lanes = 4);
  // Finishes the groups in hand, then stops.
  ~RevocationBatcher();
  RevocationBatcher(const RevocationBatcher&) = delete;
  RevocationBatcher& operator=(const RevocationBatcher&) = delete;

  // Once this returns, the previous callback is not running and is never called again.
  void setDone(std::function<void(const std::string& key)> done);
  std::optional<StatusOr<RevocationReport>> poll(const std::string& key,
                                                 const RevocationTarget& target);

 private:
  struct Entry {
    std::string key;
    RevocationTarget target;
  };
  struct Outcome {
    StatusOr<RevocationReport> result;
    std::chrono::steady_clock::time_point at;
  };
  void run(const std::stop_token& stop);
  // Takes the next group off the queue (mu_ held, queue not empty).
  std::vector<Entry> takeGroup();

  Revoker& revoker_;
  const std::function<TimePoint()> now_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Entry> queue_;                       // guarded by mu_
  std::set<std::string> queued_;                  // guarded by mu_: uids queued or being revoked
  std::map<std::string, Outcome> outcomes_;       // guarded by mu_: by uid, until polled
  std::mutex doneMu_;                             // held while `done_` runs or changes
  std::function<void(const std::string&)> done_;  // guarded by doneMu_
  std::vector<std::jthread> lanes_;               // last: they use everything above
};

// The label selector of everything of these tasks: managed by tasklease, task-uid in (...).
std::string taskUidSelector(const std::vector<std::string>& uids);

}  // namespace tasklease::op
