#pragma once
// WorkQueue: the rate-limited queue of a controller, with client-go's semantics. Keys
// ("namespace/name") are de-duplicated; a key handed to a worker is never handed to another
// until done(key); a key added meanwhile is processed again after done(). Failed keys come
// back after a per-item exponential backoff (5 ms doubling to 1000 s) under an overall token
// bucket (10 per second, burst 100); addAfter() schedules a key for later.
//
//   WorkQueue queue;
//   informer.addEventHandler({.onAdd = [&](const Json& o) { queue.add(keyOf(o)); }, ...});
//   while (auto key = queue.get()) {        // nullopt once shut down and drained
//     Status s = reconcile(*key);
//     if (s.ok()) queue.forget(*key); else queue.addRateLimited(*key);
//     queue.done(*key);
//   }

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "kube/clock.h"
#include "kube/rate_limiter.h"

namespace tasklease::kube {

// How long a key waits before its next attempt.
class WorkQueueRateLimiter {
 public:
  virtual ~WorkQueueRateLimiter() = default;
  // The delay for this attempt of `item`; counts the attempt.
  virtual std::chrono::nanoseconds when(const std::string& item) = 0;
  // Clears the item's history after a success.
  virtual void forget(const std::string& item) = 0;
  virtual int numRequeues(const std::string& item) = 0;
};

// base * 2^failures, capped at max, per item.
class ItemExponentialRateLimiter final : public WorkQueueRateLimiter {
 public:
  ItemExponentialRateLimiter(std::chrono::nanoseconds base, std::chrono::nanoseconds max);
  std::chrono::nanoseconds when(const std::string& item) override;
  void forget(const std::string& item) override;
  int numRequeues(const std::string& item) override;

 private:
  const std::chrono::nanoseconds base_;
  const std::chrono::nanoseconds max_;
  std::mutex mu_;
  std::map<std::string, int> failures_;  // guarded by mu_
};

// One token bucket over all items: spreads a burst of failures out.
class BucketRateLimiter final : public WorkQueueRateLimiter {
 public:
  BucketRateLimiter(double qps, int burst, Clock& clock);
  std::chrono::nanoseconds when(const std::string& item) override;
  void forget(const std::string& /*item*/) override {}
  int numRequeues(const std::string& /*item*/) override { return 0; }

 private:
  TokenBucket bucket_;
};

// The longest delay of several limiters.
class MaxOfRateLimiter final : public WorkQueueRateLimiter {
 public:
  explicit MaxOfRateLimiter(std::vector<std::unique_ptr<WorkQueueRateLimiter>> limiters);
  std::chrono::nanoseconds when(const std::string& item) override;
  void forget(const std::string& item) override;
  int numRequeues(const std::string& item) override;

 private:
  std::vector<std::unique_ptr<WorkQueueRateLimiter>> limiters_;
};

// client-go's DefaultControllerRateLimiter: max(5 ms..1000 s per item, 10 qps burst 100).
std::unique_ptr<WorkQueueRateLimiter> defaultControllerRateLimiter(Clock& clock = steadyClock());

class WorkQueue {
 public:
  explicit WorkQueue(
      std::unique_ptr<WorkQueueRateLimiter> limiter = defaultControllerRateLimiter());
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues the key unless it is already queued; ignored after shutDown().
  void add(const std::string& key);
  // Queues the key after `delay`; an earlier pending time for the same key wins.
  void addAfter(const std::string& key, std::chrono::nanoseconds delay);
  // Queues the key after the rate limiter's delay for it.
  void addRateLimited(const std::string& key);
  // Resets the key's backoff (after a success).
  void forget(const std::string& key);
  int numRequeues(const std::string& key);

  // Blocks for the next key; nullopt once shut down and no queued key is left. The caller
  // owns the key until done(key).
  std::optional<std::string> get();
  // Ends processing of a key; a key added while it was processed is queued again now.
  void done(const std::string& key);

  // Stops accepting keys, drops delayed ones, and wakes blocked get() calls.
  void shutDown();
  // shutDown(), then waits until every key handed out is done().
  void shutDownWithDrain();
  bool shuttingDown() const;

  // Keys ready to be handed out (delayed ones not counted).
  size_t len() const;
  // Keys waiting for their addAfter() time.
  size_t delayedLen() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Delayed {
    SteadyTime readyAt;
    uint64_t seq;
    std::string key;
    bool operator>(const Delayed& o) const {
      return readyAt != o.readyAt ? readyAt > o.readyAt : seq > o.seq;
    }
  };

  void addLocked(const std::string& key);
  void promoteDueLocked(SteadyTime now);

  const std::unique_ptr<WorkQueueRateLimiter> limiter_;
  mutable std::mutex mu_;
  std::condition_variable cv_;        // get() waiters and drain waiters
  std::deque<std::string> queue_;     // guarded by mu_: keys ready, in order
  std::set<std::string> dirty_;       // guarded by mu_: keys that need processing
  std::set<std::string> processing_;  // guarded by mu_: keys handed out, not yet done()
  std::priority_queue<Delayed, std::vector<Delayed>, std::greater<>> delayed_;  // guarded by mu_
  std::map<std::string, SteadyTime> delayedAt_;  // guarded by mu_: the live entry per key
  uint64_t seq_ = 0;                             // guarded by mu_
  bool shuttingDown_ = false;                    // guarded by mu_
};

}  // namespace tasklease::kube
