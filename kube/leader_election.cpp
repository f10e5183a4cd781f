#include "kube/leader_election.h"

#include <cmath>
#include <random>
#include <thread>

#include "common/log.h"
#include "kube/time.h"

namespace tasklease::kube {
namespace {

constexpr double kJitterFactor = 1.2;

std::string holderOf(const Json& spec) {
  return spec.is_object() ? spec.value("holderIdentity", std::string()) : std::string();
}

}  // namespace

StatusOr<std::unique_ptr<LeaderElector>> LeaderElector::create(ApiClient& client,
                                                               LeaderElectionConfig config,
                                                               Clock& clock) {
  if (config.identity.empty()) return invalidArgument("leader election: identity is required");
  if (config.lease.name.empty() || config.lease.ns.empty()) {
    return invalidArgument("leader election: lease namespace and name are required");
  }
  if (config.leaseDuration <= config.renewDeadline) {
    return invalidArgument("leader election: leaseDuration must be greater than renewDeadline");
  }
  if (static_cast<double>(config.renewDeadline.count()) <=
      kJitterFactor * static_cast<double>(config.retryPeriod.count())) {
    return invalidArgument("leader election: renewDeadline must be greater than 1.2 * retryPeriod");
  }
  if (config.leaseDuration < std::chrono::seconds(1)) {
    return invalidArgument("leader election: leaseDuration must be at least 1s");
  }
  if (!config.onStartedLeading || !config.onStoppedLeading) {
    return invalidArgument(
        "leader election: onStartedLeading and onStoppedLeading callbacks are required");
  }
  return std::unique_ptr<LeaderElector>(new LeaderElector(client, std::move(config), clock));
}

LeaderElector::LeaderElector(ApiClient& client, LeaderElectionConfig config, Clock& clock)
    : client_(client), config_(std::move(config)), clock_(clock) {}

std::string LeaderElector::leader() const {
  std::lock_guard lock(mu_);
  return holderOf(observedSpec_);
}

void LeaderElector::observe(const Json& spec, Clock::TimePoint now) {
  std::string before;
  std::string after;
  {
    std::lock_guard lock(mu_);
    if (spec == observedSpec_) return;
    before = holderOf(observedSpec_);
    after = holderOf(spec);
    observedSpec_ = spec;
    observedTime_ = now;
  }
  if (before != after && config_.onNewLeader) config_.onNewLeader(after);
}

bool LeaderElector::tryAcquireOrRenew(const CallOptions& call) {
  const auto wallNow = std::chrono::system_clock::now();
  const auto leaseSeconds =
      static_cast<int64_t>(std::ceil(std::chrono::duration<double>(config_.leaseDuration).count()));
  Json spec = {{"holderIdentity", config_.identity},
               {"leaseDurationSeconds", leaseSeconds},
               {"acquireTime", formatMicroTime(wallNow)},
               {"renewTime", formatMicroTime(wallNow)},
               {"leaseTransitions", 0}};

  auto current = client_.get(resources::kLeases, config_.lease, call);
  if (!current.ok()) {
    if (!current.status().isNotFound()) {
      logWarn("leader election: reading the lease failed",
              {{"lease", config_.lease.toString()}, {"error", current.status().toString()}});
      return false;
    }
    const Json lease = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"namespace", config_.lease.ns}, {"name", config_.lease.name}}},
        {"spec", spec}};
    auto created = client_.create(resources::kLeases, lease, WriteOptions{}, call);
    if (!created.ok()) return false;  // someone else created it first, or the call failed
    const auto now = clock_.now();
    observe(spec, now);
    std::lock_guard lock(mu_);
    lease_ = std::move(*created);
    lastRenew_ = now;
    return true;
  }

  const Json oldSpec = current->value("spec", Json::object());
  const auto now = clock_.now();
  observe(oldSpec, now);
  const std::string holder = holderOf(oldSpec);
  const bool heldByUs = holder == config_.identity;
  {
    std::lock_guard lock(mu_);
    lease_ = *current;
    const int64_t recordSeconds = oldSpec.value("leaseDurationSeconds", int64_t{0});
    const std::chrono::milliseconds duration =
        recordSeconds > 0 ? std::chrono::seconds(recordSeconds) : config_.leaseDuration;
    if (!holder.empty() && !heldByUs && observedTime_ + duration > now) {
      return false;  // held by someone else and not yet expired
    }
  }
  const int64_t transitions = oldSpec.value("leaseTransitions", int64_t{0});
  if (heldByUs) {
    spec["acquireTime"] = oldSpec.value("acquireTime", spec["acquireTime"].get<std::string>());
    spec["leaseTransitions"] = transitions;
  } else {
    spec["leaseTransitions"] = transitions + 1;
  }
  Json updated = *current;
  updated["spec"] = spec;  // metadata.resourceVersion guards against a concurrent writer
  auto written = client_.update(resources::kLeases, updated, WriteOptions{}, call);
  if (!written.ok()) {
    if (!written.status().isConflict()) {
      logWarn("leader election: updating the lease failed",
              {{"lease", config_.lease.toString()}, {"error", written.status().toString()}});
    }
    return false;
  }
  const auto after = clock_.now();
  observe(spec, after);
  std::lock_guard lock(mu_);
  lease_ = std::move(*written);
  lastRenew_ = after;
  return true;
}

void LeaderElector::release() {
  Json lease;
  {
    std::lock_guard lock(mu_);
    if (holderOf(observedSpec_) != config_.identity || !lease_.is_object()) return;
    lease = lease_;
  }
  const auto wallNow = std::chrono::system_clock::now();
  Json spec = lease.value("spec", Json::object());
  spec["holderIdentity"] = "";
  spec["leaseDurationSeconds"] = 1;
  spec["renewTime"] = formatMicroTime(wallNow);
  spec["acquireTime"] = formatMicroTime(wallNow);
  lease["spec"] = spec;
  CallOptions call;
  call.timeout = config_.renewDeadline;
  auto written = client_.update(resources::kLeases, lease, WriteOptions{}, call);
  if (!written.ok()) {
    logWarn("leader election: releasing the lease failed",
            {{"lease", config_.lease.toString()}, {"error", written.status().toString()}});
    return;
  }
  observe(spec, clock_.now());
}

void LeaderElector::run(const std::stop_token& stop) {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(1.0, kJitterFactor);
  const auto jittered = [&](std::chrono::milliseconds d) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double, std::milli>(static_cast<double>(d.count()) * jitter(rng)));
  };

  // Acquire: try every retryPeriod (jittered) until we hold the Lease.
  while (!stop.stop_requested()) {
    CallOptions call{stop, config_.renewDeadline};
    if (tryAcquireOrRenew(call)) break;
    sleepFor(jittered(config_.retryPeriod), stop);
  }
  if (stop.stop_requested()) return;

  leading_ = true;
  logInfo("leader election: became leader",
          {{"lease", config_.lease.toString()}, {"identity", config_.identity}});
  std::jthread work([this](const std::stop_token& lost) { config_.onStartedLeading(lost); });

  // Renew every retryPeriod; give up when renewDeadline has passed since the last success.
  while (!stop.stop_requested()) {
    if (!sleepFor(config_.retryPeriod, stop)) break;
    bool renewed = false;
    while (!stop.stop_requested()) {
      Clock::TimePoint deadline;
      {
        std::lock_guard lock(mu_);
        deadline = lastRenew_ + config_.renewDeadline;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_.now());
      if (left.count() <= 0) break;
      if (tryAcquireOrRenew(CallOptions{stop, left})) {
        renewed = true;
        break;
      }
      const auto pause = std::min<std::chrono::nanoseconds>(
          config_.retryPeriod,
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - clock_.now()));
      sleepFor(pause, stop);
    }
    if (!renewed && !stop.stop_requested()) {
      logWarn("leader election: failed to renew the lease in time, stepping down",
              {{"lease", config_.lease.toString()}, {"identity", config_.identity}});
      break;
    }
  }
  leading_ = false;
  work.request_stop();
  work.join();
  if (stop.stop_requested() && config_.releaseOnCancel) release();
  config_.onStoppedLeading();
}

}  // namespace tasklease::kube
