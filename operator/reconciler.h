#pragma once
// Reconciler: drives one AgentTask toward what its spec, its policy and the clock say
// (DESIGN.md §5). The input is a key ("namespace/name"); the task is read from the cache, and
// every step is idempotent, so running it twice in a row does nothing the second time and a
// run cut short at any point (a crash, a failed call) is finished by the next:
//
//   gone        -> sweep whatever is still labelled for that name
//   deleting    -> revoke, verify, then remove the finalizer tasklease.io/revoke
//   no finalizer-> add it, before anything is issued
//   undecided   -> evaluate policy; write the decision (Denied is terminal)
//   authorized  -> ServiceAccount, Role, RoleBinding, credential Secret, then mint; Active
//   Active      -> run the workload Job; end on spec.completed, the Job's end or the deadline:
//                  Revoking at once, then revoke (RoleBinding, Secret, ServiceAccount, Role)
//   Revoking    -> revoke; a finalizer holding one object delays only that object (status,
//                  Event, retry with backoff); once all are gone, record the outcome
//
// An error means "retry with backoff"; requeueAfter means "look again then" (the deadline).
// Evidence is written before the status that reflects it, so a crash may repeat a record but
// never lose one; within a process each (task, kind) is recorded once (as long as the
// repeat comes within minutes, which is when a stale cache would cause one).
//
//   Reconciler r({.client = api, .view = view, .issuers = issuers, ...});
//   StatusOr<ReconcileResult> result = r.reconcile("team-a/t1");

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common/evidence.h"
#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"
#include "kube/event_recorder.h"
#include "operator/cluster_view.h"
#include "operator/delegation.h"
#include "operator/issuer.h"
#include "operator/metrics.h"
#include "operator/revoker.h"
#include "operator/sweeper.h"

namespace tasklease::op {

inline constexpr char kOperatorActor[] = "tasklease-operator";

struct ReconcileResult {
  std::optional<std::chrono::milliseconds> requeueAfter;
  // The pass handed the task to the revocation lanes, which queue its key again when they are
  // done: neither a success nor a failure, so the key's retry backoff is kept, not reset (a
  // revocation that fails again and again must slow down, not be retried at once forever).
  bool waiting = false;
};

struct ReconcilerDeps {
  kube::ApiClient& client;
  const ClusterView& view;
  const IssuerSet& issuers;
  Revoker& revoker;
  // Set: revocations go through it and a pass that finds its task's revocation queued returns,
  // to be queued again when it has run (onRevocationDone). Null: revoke() in the pass.
  RevocationBatcher* batcher = nullptr;
  Sweeper& sweeper;
  const DelegationSource& delegation;
  kube::EventRecorder& events;
  EvidenceChain* evidence = nullptr;   // null: no evidence (tests)
  OperatorMetrics* metrics = nullptr;  // null: no metrics (tests)
  std::function<TimePoint()> now;      // the operator's clock
};

class Reconciler {
 public:
  explicit Reconciler(ReconcilerDeps deps);
  StatusOr<ReconcileResult> reconcile(const std::string& key);
  // Called by the informer's handlers as a task arrives or changes, before its key is queued:
  // notes when a new task, or a task's completion, was first seen, so that the issuance and
  // revocation latencies include the time spent waiting in the queue.
  void observe(const Json& task);
  // Where the batcher hands the keys of tasks whose revocation has run (the work queue).
  void onRevocationDone(std::function<void(const std::string& key)> done);

 private:
  // How a task ended; kept in status.revocation while it is Revoking.
  struct Ending {
    Phase phase;          // Succeeded, Failed or Expired once revoked; kNone for a deletion
    std::string trigger;  // completed, workload, deadline, deletion
    std::string reason;   // condition reason: Completed, WorkloadSucceeded, ..., TaskDeleted
    std::string message;
    TimePoint since;  // when the ending began, for the revocation latency
  };
  // status.revocation: {outcome, reason, message, startedAt, held}, and back.
  static Json revocationStatus(const Ending& ending);
  static Ending endingOf(const Json& task, TimePoint now);

  StatusOr<ReconcileResult> gone(const kube::ObjectKey& key);
  StatusOr<ReconcileResult> finalize(Json& task);
  Status addFinalizer(Json& task);
  Status decide(Json& task);
  StatusOr<ReconcileResult> issue(Json& task);
  // kNextPass: the pass that made the task Active leaves starting its workload Job to the next.
  enum class WorkloadStart { kNow, kNextPass };
  StatusOr<ReconcileResult> active(Json& task, WorkloadStart start);
  // Records an ending, moves the task to Revoking (status.revocation says why), then revokes.
  StatusOr<ReconcileResult> end(Json& task, const Ending& ending);
  // Revokes a Revoking task's credential; once every object is verified gone, records the
  // revocation and writes the phase the ending named.
  StatusOr<ReconcileResult> revoking(Json& task);
  // A revocation that a finalizer holds up: names the held objects in status.revocation.held,
  // the CredentialRevoked condition and a Warning Event, and fails the pass (retry, backoff).
  StatusOr<ReconcileResult> held(Json& task, const RevocationReport& report);
  // Creates the task's Job and names it in status: false when an admission webhook refused it
  // just after issuance (kWebhookCatchUp), to be tried again shortly.
  StatusOr<bool> startWorkload(Json& task, const TaskSpec& spec, TimePoint deadline);
  // Whether this process started the task's Job moments ago (the cache has not caught up).
  bool workloadJustStarted(const std::string& uid);
  // The outcome of the task's revocation; nullopt while the batcher has it queued.
  std::optional<StatusOr<RevocationReport>> revoke(const RevocationTarget& target);
  Status stopWorkload(const Json& task);

  // Creates the object, or reads the one already there (it must be labelled for this task).
  StatusOr<Json> ensureObject(const kube::ResourceRef& resource, const Json& desired,
                              const TaskRef& task);
  // Writes status after `change`, with observedGeneration; the task becomes the answer.
  Status writeStatus(Json& task, const std::function<void(Json& status)>& change);
  void recordOnce(EvidenceKind kind, const TaskRef& task, const std::string& actor, Json details);
  void event(const Json& task, kube::EventType type, const std::string& reason,
             const std::string& message);
  void countTransition(Phase phase);
  // When this process first saw the task's ending (now, if this is the first time).
  TimePoint endingSince(const std::string& uid, TimePoint now);

  ReconcilerDeps deps_;
  std::mutex mu_;
  // guarded by mu_: "uid/kind" already in the chain, and when (kept for a while, see .cpp)
  std::map<std::string, std::chrono::steady_clock::time_point> recorded_;
  std::set<std::string> finalized_;  // guarded by mu_: keys whose revocation was verified
  // guarded by mu_: when this process first saw each undecided task, and each Active task's
  // ending (spec.completed, or its Job finished or gone), by uid, for the latencies:
  // creationTimestamp has only whole seconds, and the pass that reports a revocation is often
  // a later one (the revocation was queued, or failed and is retried).
  std::map<std::string, TimePoint> firstSeen_;
  std::map<std::string, TimePoint> endingSeen_;
  // guarded by mu_: tasks (by uid) whose workload Job this process created and recorded in
  // status, and when: a pass on a cache from before that status write must not create the Job
  // again (client-go's ControllerExpectations, for one object per task).
  std::map<std::string, std::chrono::steady_clock::time_point> workloadsStarted_;
};

}  // namespace tasklease::op
