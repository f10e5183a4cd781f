#include "operator/async_events.h"

#include "common/log.h"

namespace tasklease::op {

AsyncEventRecorder::AsyncEventRecorder(kube::EventRecorder& inner, size_t capacity)
    : inner_(inner), capacity_(capacity), worker_([this](const std::stop_token& s) { run(s); }) {}

AsyncEventRecorder::~AsyncEventRecorder() {
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(1), [&] { return queue_.empty(); });
  }
  worker_.request_stop();
  cv_.notify_all();
}

Status AsyncEventRecorder::record(const Json& object, kube::EventType type,
                                  const std::string& reason, const std::string& message) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= capacity_) {
      ++dropped_;
      return Status(StatusCode::kResourceExhausted,
                    "event " + reason + " dropped: " + std::to_string(capacity_) +
                        " Events are already waiting to be written");
    }
    queue_.push_back({object, type, reason, message});
  }
  cv_.notify_all();
  return {};
}

void AsyncEventRecorder::run(const std::stop_token& stop) {
  while (true) {
    Pending next;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, stop, [&] { return !queue_.empty(); });
      if (queue_.empty()) return;
      next = std::move(queue_.front());
      queue_.pop_front();
    }
    Status s = inner_.record(next.object, next.type, next.reason, next.message);
    if (!s.ok()) {
      logDebug("event not recorded", {{"reason", next.reason}, {"error", s.toString()}});
    }
    cv_.notify_all();  // the destructor waits for an empty queue
  }
}

}  // namespace tasklease::op
