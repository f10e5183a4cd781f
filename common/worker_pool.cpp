#include "common/worker_pool.h"

#include <pthread.h>

#include <algorithm>

namespace tasklease {

WorkerPool::WorkerPool(std::string name, int threads, size_t maxQueued) : maxQueued_(maxQueued) {
  const int n = std::max(1, threads);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] { run(); });
    // Linux keeps 15 characters of a thread's name.
    const std::string threadName = (name + "-" + std::to_string(i)).substr(0, 15);
    pthread_setname_np(threads_.back().native_handle(), threadName.c_str());
  }
}

WorkerPool::~WorkerPool() {
  stop();
}

bool WorkerPool::trySubmit(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || queue_.size() >= maxQueued_) return false;
    queue_.push_back(std::move(task));
  }
  ready_.notify_one();
  return true;
}

size_t WorkerPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void WorkerPool::stop() {
  std::deque<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    dropped.swap(queue_);
  }
  ready_.notify_all();
  // Destroyed here, outside the lock: a dropped task's captures may answer a request.
  dropped.clear();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void WorkerPool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      ready_.wait(lock, [&] { return stopped_ || !queue_.empty(); });
      if (stopped_) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace tasklease
