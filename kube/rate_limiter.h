#pragma once
// TokenBucket: the client-side rate limiter (QPS with a burst) in front of every API request,
// and the overall limit of the work queue. Tokens refill at `qps` per second up to `burst`;
// reserve() takes one, going into debt if needed, and says how long to wait before acting.
//
//   TokenBucket bucket(50, 100, steadyClock());
//   if (!bucket.wait(stop)) return cancelled(...);

#include <chrono>
#include <mutex>
#include <stop_token>

#include "kube/clock.h"

namespace tasklease::kube {

class TokenBucket {
 public:
  // qps <= 0 means no limit. The bucket starts full.
  TokenBucket(double qps, int burst, Clock& clock);

  // Takes a token and returns the wait before it may be used (zero when one was available).
  std::chrono::nanoseconds reserve();
  // Takes a token only if one is available now.
  bool tryAccept();
  // reserve() and sleep for the wait; false when `stop` cut the sleep short.
  bool wait(const std::stop_token& stop);

 private:
  void refillLocked(Clock::TimePoint now);

  const double qps_;
  const double burst_;
  Clock& clock_;
  std::mutex mu_;
  double tokens_;          // guarded by mu_; negative while reservations are outstanding
  Clock::TimePoint last_;  // guarded by mu_
};

}  // namespace tasklease::kube
