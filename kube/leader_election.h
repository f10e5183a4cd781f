#pragma once
// LeaderElector: at most one of several replicas leads, through a coordination.k8s.io/v1 Lease,
// following client-go's leaderelection algorithm. A candidate takes the Lease when it is free
// or its holder has not renewed it for leaseDuration (measured on the candidate's own clock
// from when it last saw the Lease change), renews it every retryPeriod, and steps down when
// renewDeadline passes without a successful renewal. On shutdown the leader releases the Lease
// (empty holderIdentity) so a successor need not wait out the lease.
//
//   LeaderElectionConfig cfg{.lease = {"tasklease-system", "tasklease-operator"},
//                            .identity = hostname + "_" + randomHex(4)};
//   cfg.onStartedLeading = [&](std::stop_token lost) { runControllers(lost); };
//   cfg.onStoppedLeading = [&] { logInfo("leadership lost"); };
//   auto elector = LeaderElector::create(client, cfg);
//   (*elector)->run(stop);   // returns when stopped or when leadership is lost
//
// Safety: the leader steps down renewDeadline after its last successful renewal, while others
// wait leaseDuration (> renewDeadline) after they last saw it change, so two candidates that
// share a clock rate never both believe they lead.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"
#include "kube/clock.h"
#include "kube/resource.h"

namespace tasklease::kube {

struct LeaderElectionConfig {
  ObjectKey lease;       // namespace and name of the Lease
  std::string identity;  // unique per candidate, e.g. pod name plus a random suffix
  std::chrono::milliseconds leaseDuration{15000};
  std::chrono::milliseconds renewDeadline{10000};
  std::chrono::milliseconds retryPeriod{2000};
  bool releaseOnCancel = true;
  // Runs on its own thread once this candidate leads; `lost` fires when it stops leading.
  // run() waits for it to return before calling onStoppedLeading.
  std::function<void(std::stop_token lost)> onStartedLeading;
  std::function<void()> onStoppedLeading;
  // Called when the observed holder changes (including to this candidate).
  std::function<void(const std::string& holder)> onNewLeader;
};

class LeaderElector {
 public:
  // Checks the config: identity and lease name set, leaseDuration > renewDeadline >
  // 1.2 * retryPeriod (client-go's rule), onStartedLeading and onStoppedLeading present.
  static StatusOr<std::unique_ptr<LeaderElector>> create(ApiClient& client,
                                                         LeaderElectionConfig config,
                                                         Clock& clock = steadyClock());

  // Acquires, leads and renews until `stop` or until a renewal misses its deadline; then
  // (if releaseOnCancel and stopped) releases the Lease. Blocks; call once.
  void run(const std::stop_token& stop);

  // True while this candidate holds the Lease and has renewed it within renewDeadline.
  bool isLeader() const { return leading_.load(); }
  // The holder last observed in the Lease ("" if none).
  std::string leader() const;

 private:
  LeaderElector(ApiClient& client, LeaderElectionConfig config, Clock& clock);

  // One client-go tryAcquireOrRenew: true when this candidate holds the Lease afterwards.
  bool tryAcquireOrRenew(const CallOptions& call);
  void release();
  void observe(const Json& spec, Clock::TimePoint now);

  ApiClient& client_;
  const LeaderElectionConfig config_;
  Clock& clock_;
  std::atomic<bool> leading_{false};

  mutable std::mutex mu_;
  Json observedSpec_;              // guarded by mu_: the Lease spec last seen
  Json lease_;                     // guarded by mu_: the Lease object last read or written
  Clock::TimePoint observedTime_;  // guarded by mu_: when observedSpec_ last changed
  Clock::TimePoint lastRenew_;     // guarded by mu_: our last successful acquire or renew
};

}  // namespace tasklease::kube
