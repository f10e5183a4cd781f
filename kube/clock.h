#pragma once
// Clock: the monotonic time source of the rate limiters, work queue and leader elector, as an
// interface so that tests drive time by hand (tests/mocks/fake_clock.h) instead of sleeping.
//
//   TokenBucket bucket(10.0, 5, steadyClock());

#include <chrono>
#include <stop_token>

namespace tasklease::kube {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

// The process-wide std::chrono::steady_clock.
Clock& steadyClock();

// Sleeps for `d` in real time or until `stop` is requested, whichever is first. Returns false
// when the sleep was cut short by `stop`.
bool sleepFor(std::chrono::nanoseconds d, const std::stop_token& stop);

}  // namespace tasklease::kube
