#pragma once
// FakeClock: a kube::Clock that moves only when the test says so.
//
//   FakeClock clock;
//   TokenBucket bucket(10, 2, clock);
//   clock.advance(std::chrono::milliseconds(100));

#include <atomic>
#include <chrono>

#include "kube/clock.h"

namespace tasklease::kube {

class FakeClock final : public Clock {
 public:
  TimePoint now() const override { return TimePoint(std::chrono::nanoseconds(nanos_.load())); }
  void advance(std::chrono::nanoseconds d) { nanos_ += d.count(); }

 private:
  std::atomic<int64_t> nanos_{1'000'000'000};
};

}  // namespace tasklease::kube
