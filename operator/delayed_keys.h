#pragma once
// DelayedKeys: work-queue keys to be added later (a task's deadline, a retry's backoff). It
// stands in for kube::WorkQueue::addAfter, whose get() waits on a reference into the queue's own
// heap of delayed keys (kube/workqueue.cpp, `cv_.wait_until(lock, delayed_.top().readyAt)`):
// an addAfter that grows the heap, or a shutDown that clears it, while a worker waits frees the
// time the worker reads. AddressSanitizer reports it as a heap-use-after-free. Once kube/ copies
// the time before waiting, the controller can go back to WorkQueue::addAfter and this goes.
//
//   DelayedKeys later([&](const std::string& key) { queue.add(key); });
//   later.addAfter("team-a/t1", std::chrono::minutes(30));   // the earlier of two times wins

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

namespace tasklease::op {

class DelayedKeys {
 public:
  explicit DelayedKeys(std::function<void(const std::string&)> ready);
  ~DelayedKeys();
  DelayedKeys(const DelayedKeys&) = delete;
  DelayedKeys& operator=(const DelayedKeys&) = delete;

  // Calls ready(key) after `delay`, unless an earlier time is already pending for the key.
  void addAfter(const std::string& key, std::chrono::nanoseconds delay);
  // Drops every pending key; later addAfter calls are ignored.
  void stop();
  size_t size() const;

 private:
  using Time = std::chrono::steady_clock::time_point;
  void run(const std::stop_token& stop);

  const std::function<void(const std::string&)> ready_;
  mutable std::mutex mu_;
  std::condition_variable_any cv_;
  std::set<std::pair<Time, std::string>> due_;  // guarded by mu_: in time order
  std::map<std::string, Time> at_;              // guarded by mu_: each key's pending time
  bool stopped_ = false;                        // guarded by mu_
  std::jthread timer_;                          // last: it uses everything above
};

}  // namespace tasklease::op
