#pragma once
// Controller: the running loop around the Reconciler. Informer events put task keys on one
// rate-limited work queue (a Job's events name its task, a new or changed AgentPolicy re-queues
// the undecided tasks); several workers take keys, never the same key twice at once; a failed
// reconcile comes back with per-key exponential backoff, an Active task at its deadline. A
// timer runs the orphan sweep and the periodic upkeep (CA rotation, CRL re-signing).
//
//   Controller controller(view, reconciler, sweeper, &metrics, {.workers = 4});
//   Status s = controller.run(stop);      // blocks until stop; errors if caches never sync

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "common/status.h"
#include "kube/workqueue.h"
#include "operator/cluster_view.h"
#include "operator/metrics.h"
#include "operator/reconciler.h"
#include "operator/sweeper.h"

namespace tasklease::op {

struct ControllerOptions {
  int workers = 4;
  std::chrono::milliseconds sweepInterval{std::chrono::seconds(60)};
  std::chrono::milliseconds syncTimeout{std::chrono::minutes(5)};
  // Retries: per key retryBaseDelay doubling to retryMaxDelay, under this overall token bucket.
  // client-go's default bucket (10/s, burst 100) is too slow to drain a burst of API errors over
  // hundreds of tasks.
  double retryQps = 50;
  int retryBurst = 300;
  std::chrono::milliseconds retryBaseDelay{5};
  std::chrono::milliseconds retryMaxDelay{std::chrono::seconds(1000)};
  // Runs before each sweep (CA rotation, CRL refresh); its errors are logged and counted.
  std::function<Status()> upkeep;
  // The operator's clock, the reconciler's: a failing task is still looked at on its deadline.
  std::function<TimePoint()> now = [] { return std::chrono::system_clock::now(); };
  // The retry token bucket's clock (null: the steady clock); a test's fake clock.
  kube::Clock* retryClock = nullptr;
};

// When a key is reconciled again after a pass: the retry discipline of the work queue.
//  - a failed pass comes back after the key's backoff (retryBaseDelay doubling per failure up
//    to retryMaxDelay, under the shared token bucket), or at the task's deadline if that is
//    sooner and the deadline still matters (undecided, Pending, Active);
//  - a pass that handed the task to the revocation lanes (ReconcileResult::waiting) is neither:
//    the lanes queue the key again, and its backoff is kept, so a revocation that keeps failing
//    slows down instead of being retried at once for ever;
//  - any other successful pass resets the backoff and comes back at requeueAfter, if any.
//
//   RequeuePolicy requeue(options);
//   if (auto after = requeue.after(key, result, cachedTask.get())) queue.addAfter(key, *after);
class RequeuePolicy {
 public:
  explicit RequeuePolicy(const ControllerOptions& options);
  // nullopt: only an event (or the revocation lanes) brings the key back.
  std::optional<std::chrono::nanoseconds> after(const std::string& key,
                                                const StatusOr<ReconcileResult>& result,
                                                const Json* task);
  // Failures in a row of the key (0 after a success).
  int failures(const std::string& key) { return retries_->numRequeues(key); }

 private:
  const std::function<TimePoint()> now_;
  const std::unique_ptr<kube::WorkQueueRateLimiter> retries_;
};

class Controller {
 public:
  Controller(InformerClusterView& view, Reconciler& reconciler, Sweeper& sweeper,
             OperatorMetrics* metrics, ControllerOptions options);

  // Starts the informers, waits for their caches, reconciles until `stop`, then stops the
  // workers (a key in progress finishes) and the informers.
  Status run(const std::stop_token& stop);

  bool synced() const { return synced_.load(); }
  // Sets the gauges computed from state (tasks by phase, queue depth): call before rendering.
  void updateGauges();

 private:
  void addHandlers();
  void addJobsTask(const Json& job);
  void addUndecidedTasks();
  void work(const std::stop_token& stop);
  void sweepLoop(const std::stop_token& stop);
  void sweepOnce();

  InformerClusterView& view_;
  Reconciler& reconciler_;
  Sweeper& sweeper_;
  OperatorMetrics* metrics_;
  const ControllerOptions options_;
  // When each key comes back (per-key exponential backoff under a shared token bucket, the
  // deadline), applied through queue_.addAfter.
  RequeuePolicy requeue_;
  kube::WorkQueue queue_;
  std::atomic<bool> synced_{false};
};

}  // namespace tasklease::op
