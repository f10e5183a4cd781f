#pragma once
// Jittered exponential backoff, as client-go's wait.Backoff: the n-th delay is
// min(initial * factor^n, max), plus a random extra of up to `jitter` times that. One Backoff
// per retry loop; reset() after a success.
//
//   Backoff backoff(BackoffPolicy{});
//   while (!tryIt()) sleepFor(backoff.next());

#include <chrono>
#include <cstdint>
#include <random>

namespace tasklease::kube {

struct BackoffPolicy {
  std::chrono::milliseconds initial{100};
  double factor = 2.0;
  double jitter = 0.2;  // each delay grows by a uniform random fraction in [0, jitter)
  std::chrono::milliseconds max{10000};
};

class Backoff {
 public:
  // A seed makes the jitter reproducible in tests; by default it comes from std::random_device.
  explicit Backoff(BackoffPolicy policy);
  Backoff(BackoffPolicy policy, uint64_t seed);

  // The next delay; grows until it reaches policy.max (jitter applies on top of the cap).
  std::chrono::milliseconds next();
  // Steps taken since construction or reset().
  int steps() const { return steps_; }
  void reset() { steps_ = 0; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  int steps_ = 0;
};

}  // namespace tasklease::kube
