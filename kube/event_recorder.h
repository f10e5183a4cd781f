#pragma once
// EventRecorder: writes core/v1 Events about an object ("Issued", "Revoked", ...), which
// `kubectl describe` shows. A repeat of the same event (same object, type, reason and message)
// is folded into the existing Event by raising its count and lastTimestamp, as client-go does,
// so a reconcile loop that repeats itself does not flood the namespace.
//
//   EventRecorderImpl recorder(client, "tasklease-operator", podName);
//   recorder.record(task, EventType::kNormal, "CredentialIssued", "token for SA x issued");

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"

namespace tasklease::kube {

enum class EventType { kNormal, kWarning };

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // `object` is the involved object (its kind, apiVersion, metadata.namespace/name/uid are
  // used). Returns the write's Status; callers usually log and carry on.
  virtual Status record(const Json& object, EventType type, const std::string& reason,
                        const std::string& message) = 0;
};

class EventRecorderImpl final : public EventRecorder {
 public:
  // `component` is source.component and reportingComponent; `instance` (e.g. the pod name)
  // is source.host and reportingInstance. `now` is replaceable in tests.
  EventRecorderImpl(ApiClient& client, std::string component, std::string instance,
                    std::function<std::chrono::system_clock::time_point()> now = {});

  Status record(const Json& object, EventType type, const std::string& reason,
                const std::string& message) override;

 private:
  struct Seen {
    std::string ns;
    std::string name;  // the Event's name
    int64_t count = 0;
    std::string firstTimestamp;
    std::list<std::string>::iterator lru;
  };
  static constexpr size_t kMaxRemembered = 4096;

  Status createEvent(const std::string& key, const Json& object, EventType type,
                     const std::string& reason, const std::string& message, int64_t count,
                     const std::string& firstTimestamp);
  // A name for a new Event: the object's name and the time in hex nanoseconds, unique within
  // this recorder even when the clock reads the same twice.
  std::string eventName(const std::string& objectName, std::chrono::system_clock::time_point now);
  std::mutex& stripeFor(const std::string& key);

  ApiClient& client_;
  const std::string component_;
  const std::string instance_;
  const std::function<std::chrono::system_clock::time_point()> now_;
  // One of these is held across the API call for a given aggregation key, so two identical
  // events in a row become one Event with count 2, while events about other objects (other
  // stripes) are written in parallel.
  std::array<std::mutex, 16> stripes_;
  std::mutex mu_;                     // guards the three below; never held across a call
  std::map<std::string, Seen> seen_;  // guarded by mu_: aggregation key -> Event written
  std::list<std::string> lru_;        // guarded by mu_: most recent first
  int64_t lastNanos_ = 0;             // guarded by mu_: the last time used in a name
};

}  // namespace tasklease::kube
