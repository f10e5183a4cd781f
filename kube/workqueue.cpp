#include "kube/workqueue.h"

#include <algorithm>
#include <cmath>

namespace tasklease::kube {

ItemExponentialRateLimiter::ItemExponentialRateLimiter(std::chrono::nanoseconds base,
                                                       std::chrono::nanoseconds max)
    : base_(base), max_(max) {}

std::chrono::nanoseconds ItemExponentialRateLimiter::when(const std::string& item) {
  std::lock_guard lock(mu_);
  const int exp = failures_[item]++;
  // Doubling past the cap in floating point cannot overflow.
  const double delay = static_cast<double>(base_.count()) * std::pow(2.0, exp);
  if (delay >= static_cast<double>(max_.count())) return max_;
  return std::chrono::nanoseconds(static_cast<int64_t>(delay));
}

void ItemExponentialRateLimiter::forget(const std::string& item) {
  std::lock_guard lock(mu_);
  failures_.erase(item);
}

int ItemExponentialRateLimiter::numRequeues(const std::string& item) {
  std::lock_guard lock(mu_);
  const auto it = failures_.find(item);
  return it == failures_.end() ? 0 : it->second;
}

BucketRateLimiter::BucketRateLimiter(double qps, int burst, Clock& clock)
    : bucket_(qps, burst, clock) {}

std::chrono::nanoseconds BucketRateLimiter::when(const std::string& /*item*/) {
  return bucket_.reserve();
}

MaxOfRateLimiter::MaxOfRateLimiter(std::vector<std::unique_ptr<WorkQueueRateLimiter>> limiters)
    : limiters_(std::move(limiters)) {}

std::chrono::nanoseconds MaxOfRateLimiter::when(const std::string& item) {
  std::chrono::nanoseconds longest{0};
  for (auto& l : limiters_) longest = std::max(longest, l->when(item));
  return longest;
}

void MaxOfRateLimiter::forget(const std::string& item) {
  for (auto& l : limiters_) l->forget(item);
}

int MaxOfRateLimiter::numRequeues(const std::string& item) {
  int most = 0;
  for (auto& l : limiters_) most = std::max(most, l->numRequeues(item));
  return most;
}

std::unique_ptr<WorkQueueRateLimiter> defaultControllerRateLimiter(Clock& clock) {
  std::vector<std::unique_ptr<WorkQueueRateLimiter>> limiters;
  limiters.push_back(std::make_unique<ItemExponentialRateLimiter>(std::chrono::milliseconds(5),
                                                                  std::chrono::seconds(1000)));
  limiters.push_back(std::make_unique<BucketRateLimiter>(10.0, 100, clock));
  return std::make_unique<MaxOfRateLimiter>(std::move(limiters));
}

WorkQueue::WorkQueue(std::unique_ptr<WorkQueueRateLimiter> limiter)
    : limiter_(std::move(limiter)) {}

void WorkQueue::addLocked(const std::string& key) {
  if (shuttingDown_ || dirty_.count(key) != 0) return;
  dirty_.insert(key);
  if (processing_.count(key) != 0) return;  // queued again by done()
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::add(const std::string& key) {
  std::lock_guard lock(mu_);
  addLocked(key);
}

void WorkQueue::addAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard lock(mu_);
  if (shuttingDown_) return;
  if (delay <= std::chrono::nanoseconds::zero()) {
    addLocked(key);
    return;
  }
  const SteadyTime readyAt = std::chrono::steady_clock::now() + delay;
  const auto it = delayedAt_.find(key);
  if (it != delayedAt_.end() && it->second <= readyAt) return;
  delayedAt_[key] = readyAt;
  delayed_.push({readyAt, seq_++, key});
  cv_.notify_all();  // a waiting get() may need to wake earlier
}

void WorkQueue::addRateLimited(const std::string& key) {
  addAfter(key, limiter_->when(key));
}

void WorkQueue::forget(const std::string& key) {
  limiter_->forget(key);
}

int WorkQueue::numRequeues(const std::string& key) {
  return limiter_->numRequeues(key);
}

void WorkQueue::promoteDueLocked(SteadyTime now) {
  while (!delayed_.empty() && delayed_.top().readyAt <= now) {
    Delayed d = delayed_.top();
    delayed_.pop();
    const auto it = delayedAt_.find(d.key);
    // Entries superseded by an earlier time for the same key are skipped.
    if (it == delayedAt_.end() || it->second != d.readyAt) continue;
    delayedAt_.erase(it);
    addLocked(d.key);
  }
}

std::optional<std::string> WorkQueue::get() {
  std::unique_lock lock(mu_);
  while (true) {
    promoteDueLocked(std::chrono::steady_clock::now());
    if (!queue_.empty()) break;
    if (shuttingDown_) return std::nullopt;
    if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      // A copy: wait_until keeps reading its argument after the lock is released, and an
      // addAfter() meanwhile may reallocate the heap that top() points into.
      const SteadyTime until = delayed_.top().readyAt;
      cv_.wait_until(lock, until);
    }
  }
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  processing_.insert(key);
  dirty_.erase(key);
  return key;
}

void WorkQueue::done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key) != 0) queue_.push_back(key);
  cv_.notify_all();  // a queued key for get(), or an empty processing set for a drain
}

void WorkQueue::shutDown() {
  std::lock_guard lock(mu_);
  shuttingDown_ = true;
  delayed_ = {};
  delayedAt_.clear();
  cv_.notify_all();
}

void WorkQueue::shutDownWithDrain() {
  std::unique_lock lock(mu_);
  shuttingDown_ = true;
  delayed_ = {};
  delayedAt_.clear();
  cv_.notify_all();
  cv_.wait(lock, [this] { return processing_.empty(); });
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard lock(mu_);
  return shuttingDown_;
}

size_t WorkQueue::len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

size_t WorkQueue::delayedLen() const {
  std::lock_guard lock(mu_);
  return delayedAt_.size();
}

}  // namespace tasklease::kube
