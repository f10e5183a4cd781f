#include "kube/clock.h"

#include <condition_variable>
#include <mutex>

namespace tasklease::kube {
namespace {

class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return std::chrono::steady_clock::now(); }
};

}  // namespace

Clock& steadyClock() {
  static SteadyClock clock;
  return clock;
}

bool sleepFor(std::chrono::nanoseconds d, const std::stop_token& stop) {
  if (d <= std::chrono::nanoseconds::zero()) return !stop.stop_requested();
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  // Nothing notifies cv: the wait ends at the timeout or when `stop` is requested.
  cv.wait_for(lock, stop, d, [] { return false; });
  return !stop.stop_requested();
}

}  // namespace tasklease::kube
