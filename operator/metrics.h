#pragma once
// The operator's Prometheus metrics (docs/operator.md lists them), registered once on a
// MetricsRegistry and shared by the reconciler, the workers and the /metrics handler.
//
//   MetricsRegistry registry;
//   OperatorMetrics metrics(registry);
//   metrics.issuance.labels({"ServiceAccountToken"}).observe(0.42);

#include "common/metrics.h"

namespace tasklease::op {

struct OperatorMetrics {
  explicit OperatorMetrics(MetricsRegistry& registry);

  GaugeFamily& tasks;              // {phase}: AgentTasks in the cache by status.phase
  HistogramFamily& issuance;       // {type}: task first seen to credential issued, seconds
  HistogramFamily& revocation;     // {type, trigger}: trigger to every object verified gone
  CounterFamily& reconciles;       // {result}: success, requeue, error
  CounterFamily& reconcileErrors;  // {}: reconciles that failed and were retried
  CounterFamily& retries;          // {}: keys put back with backoff
  HistogramFamily& reconcileTime;  // {}: one reconcile, seconds
  GaugeFamily& queueDepth;         // {}: keys ready in the work queue
  GaugeFamily& queueDelayed;       // {}: keys waiting for a later time (expiry, backoff)
  CounterFamily& transitions;      // {phase}: tasks that entered a phase
  GaugeFamily& revocationsHeld;    // {kind}: Revoking tasks whose object of that kind is held
  CounterFamily& sweptObjects;     // {}: objects the orphan sweep deleted
  CounterFamily& sweepErrors;      // {}: sweeps or sweep groups that failed
  CounterFamily& evidenceErrors;   // {}: evidence records that could not be written
  GaugeFamily& leader;             // {}: 1 while this process leads
};

}  // namespace tasklease::op
