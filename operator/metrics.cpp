#include "operator/metrics.h"

namespace tasklease::op {
namespace {

// Issuance and revocation span several API calls: up to a minute, finely below a second.
std::vector<double> lifecycleBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace

OperatorMetrics::OperatorMetrics(MetricsRegistry& registry)
    : tasks(registry.gauge("tasklease_operator_tasks", "AgentTasks by status.phase.", {"phase"})),
      issuance(registry.histogram(
          "tasklease_operator_issuance_seconds",
          "From when the operator first saw an AgentTask to its credential being issued.", {"type"},
          lifecycleBuckets())),
      revocation(registry.histogram(
          "tasklease_operator_revocation_seconds",
          "From what ended a task (completion, workload end, deadline, deletion) to every "
          "credential object verified gone.",
          {"type", "trigger"}, lifecycleBuckets())),
      reconciles(registry.counter("tasklease_operator_reconciles_total",
                                  "Reconciles by result (success, requeue, error).", {"result"})),
      reconcileErrors(registry.counter("tasklease_operator_reconcile_errors_total",
                                       "Reconciles that failed (each is retried with backoff).")),
      retries(registry.counter("tasklease_operator_retries_total",
                               "Keys put back in the work queue with backoff.")),
      reconcileTime(registry.histogram("tasklease_operator_reconcile_seconds",
                                       "Duration of one reconcile.", {}, lifecycleBuckets())),
      queueDepth(
          registry.gauge("tasklease_operator_workqueue_depth", "Keys ready to be reconciled.")),
      queueDelayed(registry.gauge("tasklease_operator_workqueue_delayed",
                                  "Keys waiting for a later time (deadline, backoff).")),
      transitions(registry.counter("tasklease_operator_transitions_total",
                                   "Tasks that entered a phase.", {"phase"})),
      revocationsHeld(registry.gauge(
          "tasklease_operator_revocations_blocked",
          "Revoking AgentTasks whose revocation is held up by an object of this kind that is "
          "still present after its deletion (a finalizer holds it).",
          {"kind"})),
      sweptObjects(registry.counter("tasklease_operator_swept_objects_total",
                                    "Objects the orphan sweep deleted.")),
      sweepErrors(registry.counter("tasklease_operator_sweep_errors_total",
                                   "Sweeps, or task groups within one, that failed.")),
      evidenceErrors(registry.counter("tasklease_operator_evidence_errors_total",
                                      "Evidence records that could not be written or whose chain "
                                      "head could not be saved.")),
      leader(registry.gauge("tasklease_operator_leader", "1 while this process leads.")) {}

}  // namespace tasklease::op
