#pragma once
// A fixed set of threads that run submitted tasks in submission order, with a bounded queue:
// where the webhook runs its reviews, away from the threads that do the HTTP server's I/O, and
// where an AgentTask review's SubjectAccessReviews run side by side (docs/webhook.md, "Threads").
//
//   WorkerPool pool("review", 2, 1024);
//   if (!pool.trySubmit([req = std::move(req), respond] { respond(judge(req)); })) {
//     respond(busy());   // the queue is full (or the pool stopped)
//   }
//   ...
//   pool.stop();   // runs nothing more; what was queued is dropped, unrun
//
// Tasks must not throw (an escaping exception ends the process, as in any thread).

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tasklease {

class WorkerPool {
 public:
  // name: thread names ("<name>-<i>", cut to what the system keeps) for debuggers and top -H.
  WorkerPool(std::string name, int threads, size_t maxQueued);
  ~WorkerPool();  // stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues the task; false when maxQueued tasks already wait or the pool has stopped.
  bool trySubmit(std::function<void()> task);
  // Tasks waiting for a thread (not those running).
  size_t queued() const;
  int threads() const { return static_cast<int>(threads_.size()); }
  // Lets the running tasks finish, drops the queued ones (destroying them unrun) and joins the
  // threads. Idempotent.
  void stop();

 private:
  void run();

  const size_t maxQueued_;
  mutable std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;  // guarded by mu_
  bool stopped_ = false;                     // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace tasklease
