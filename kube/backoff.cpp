#include "kube/backoff.h"

#include <algorithm>
#include <cmath>

namespace tasklease::kube {

Backoff::Backoff(BackoffPolicy policy) : Backoff(policy, std::random_device{}()) {}

Backoff::Backoff(BackoffPolicy policy, uint64_t seed) : policy_(policy), rng_(seed) {}

std::chrono::milliseconds Backoff::next() {
  const double base = static_cast<double>(policy_.initial.count()) *
                      std::pow(std::max(policy_.factor, 1.0), steps_);
  const double capped = std::min(base, static_cast<double>(policy_.max.count()));
  // A huge exponent gives +inf, which the cap absorbs.
  ++steps_;
  double extra = 0;
  if (policy_.jitter > 0) {
    std::uniform_real_distribution<double> dist(0.0, policy_.jitter);
    extra = capped * dist(rng_);
  }
  return std::chrono::milliseconds(static_cast<long long>(capped + extra));
}

}  // namespace tasklease::kube
