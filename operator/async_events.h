#pragma once
// AsyncEventRecorder: hands Events to another recorder on a thread of its own, so that a
// reconcile never waits for an Event write. Events are best effort (kubectl describe shows
// them; the evidence log is the record), while kube::EventRecorderImpl serialises every write
// behind one lock held across the API call: with several workers and a slow or throttling API
// server, the workers would queue behind each other's Events. When the queue is full, Events
// are dropped and counted.
//
//   kube::EventRecorderImpl direct(client, "tasklease-operator", identity);
//   AsyncEventRecorder events(direct);
//   events.record(task, kube::EventType::kNormal, "CredentialIssued", "...");   // returns at once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "kube/event_recorder.h"

namespace tasklease::op {

class AsyncEventRecorder final : public kube::EventRecorder {
 public:
  explicit AsyncEventRecorder(kube::EventRecorder& inner, size_t capacity = 10000);
  // Writes what is queued for up to a second, then stops.
  ~AsyncEventRecorder() override;
  AsyncEventRecorder(const AsyncEventRecorder&) = delete;
  AsyncEventRecorder& operator=(const AsyncEventRecorder&) = delete;

  // Queues the Event; ResourceExhausted (and the Event dropped) when the queue is full.
  Status record(const Json& object, kube::EventType type, const std::string& reason,
                const std::string& message) override;
  uint64_t dropped() const { return dropped_.load(); }

 private:
  struct Pending {
    Json object;
    kube::EventType type;
    std::string reason;
    std::string message;
  };
  void run(const std::stop_token& stop);

  kube::EventRecorder& inner_;
  const size_t capacity_;
  std::atomic<uint64_t> dropped_{0};
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Pending> queue_;  // guarded by mu_
  std::jthread worker_;        // last: it uses everything above
};

}  // namespace tasklease::op
