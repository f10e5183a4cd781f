#include "operator/delayed_keys.h"

#include <vector>

namespace tasklease::op {

DelayedKeys::DelayedKeys(std::function<void(const std::string&)> ready)
    : ready_(std::move(ready)), timer_([this](const std::stop_token& s) { run(s); }) {}

DelayedKeys::~DelayedKeys() {
  stop();
}

void DelayedKeys::addAfter(const std::string& key, std::chrono::nanoseconds delay) {
  const Time when = std::chrono::steady_clock::now() + delay;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    const auto it = at_.find(key);
    if (it != at_.end()) {
      if (it->second <= when) return;
      due_.erase({it->second, key});
    }
    at_[key] = when;
    due_.insert({when, key});
  }
  cv_.notify_all();
}

void DelayedKeys::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    due_.clear();
    at_.clear();
  }
  timer_.request_stop();
  cv_.notify_all();
}

size_t DelayedKeys::size() const {
  std::lock_guard lock(mu_);
  return at_.size();
}

void DelayedKeys::run(const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    const Time now = std::chrono::steady_clock::now();
    std::vector<std::string> ready;
    while (!due_.empty() && due_.begin()->first <= now) {
      ready.push_back(due_.begin()->second);
      at_.erase(due_.begin()->second);
      due_.erase(due_.begin());
    }
    if (!ready.empty()) {
      lock.unlock();
      for (const auto& key : ready) ready_(key);
      lock.lock();
      continue;
    }
    if (due_.empty()) {
      cv_.wait(lock, stop, [&] { return !due_.empty(); });
    } else {
      const Time next = due_.begin()->first;  // a copy: due_ may change while we wait
      cv_.wait_until(lock, stop, next, [&] { return due_.empty() || due_.begin()->first < next; });
    }
  }
}

}  // namespace tasklease::op
