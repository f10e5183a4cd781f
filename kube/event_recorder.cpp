#include "kube/event_recorder.h"

#include <cstdio>

#include "common/rfc3339.h"

namespace tasklease::kube {
namespace {

const char* typeName(EventType type) {
  return type == EventType::kWarning ? "Warning" : "Normal";
}

Json involvedObject(const Json& object) {
  const Json meta = object.value("metadata", Json::object());
  Json ref = {{"kind", object.value("kind", std::string())},
              {"apiVersion", object.value("apiVersion", std::string())},
              {"name", meta.value("name", std::string())}};
  if (meta.contains("namespace")) ref["namespace"] = meta.value("namespace", std::string());
  if (meta.contains("uid")) ref["uid"] = meta.value("uid", std::string());
  if (meta.contains("resourceVersion")) {
    ref["resourceVersion"] = meta.value("resourceVersion", std::string());
  }
  return ref;
}

}  // namespace

EventRecorderImpl::EventRecorderImpl(ApiClient& client, std::string component, std::string instance,
                                     std::function<std::chrono::system_clock::time_point()> now)
    : client_(client),
      component_(std::move(component)),
      instance_(std::move(instance)),
      now_(now ? std::move(now) : [] { return std::chrono::system_clock::now(); }) {}

std::mutex& EventRecorderImpl::stripeFor(const std::string& key) {
  return stripes_[std::hash<std::string>{}(key) % stripes_.size()];
}

std::string EventRecorderImpl::eventName(const std::string& objectName,
                                         std::chrono::system_clock::time_point now) {
  int64_t nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  {
    std::lock_guard lock(mu_);
    if (nanos <= lastNanos_) nanos = lastNanos_ + 1;
    lastNanos_ = nanos;
  }
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%llx", static_cast<unsigned long long>(nanos));
  return objectName + suffix;
}

Status EventRecorderImpl::createEvent(const std::string& key, const Json& object, EventType type,
                                      const std::string& reason, const std::string& message,
                                      int64_t count, const std::string& firstTimestamp) {
  const auto now = now_();
  const ObjectKey target = objectKeyOf(object);
  // Events about cluster-scoped objects go to "default", as client-go does.
  const std::string ns = target.ns.empty() ? "default" : target.ns;
  const std::string name = eventName(target.name, now);
  const std::string stamp = formatRfc3339(now);
  const std::string first = firstTimestamp.empty() ? stamp : firstTimestamp;
  const Json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"namespace", ns}, {"name", name}}},
      {"involvedObject", involvedObject(object)},
      {"reason", reason},
      {"message", message},
      {"type", typeName(type)},
      {"source", {{"component", component_}, {"host", instance_}}},
      {"reportingComponent", component_},
      {"reportingInstance", instance_},
      {"firstTimestamp", first},
      {"lastTimestamp", stamp},
      {"count", count},
  };
  auto created = client_.create(resources::kEvents, event);
  if (!created.ok()) return created.status().annotate("recording event " + reason);
  std::lock_guard lock(mu_);
  auto it = seen_.find(key);
  if (it == seen_.end()) {
    lru_.push_front(key);
    it = seen_.emplace(key, Seen{ns, name, count, first, lru_.begin()}).first;
  } else {
    it->second = Seen{ns, name, count, first, it->second.lru};
  }
  while (seen_.size() > kMaxRemembered) {
    seen_.erase(lru_.back());
    lru_.pop_back();
  }
  return {};
}

Status EventRecorderImpl::record(const Json& object, EventType type, const std::string& reason,
                                 const std::string& message) {
  const ObjectKey target = objectKeyOf(object);
  const std::string key = object.value("kind", std::string()) + "\n" + target.ns + "\n" +
                          target.name + "\n" + uidOf(object) + "\n" + typeName(type) + "\n" +
                          reason + "\n" + message;
  std::lock_guard keyLock(stripeFor(key));
  Seen seen;
  {
    std::lock_guard lock(mu_);
    const auto it = seen_.find(key);
    if (it == seen_.end()) {
      seen.count = 0;
    } else {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      seen = it->second;
    }
  }
  if (seen.count == 0) return createEvent(key, object, type, reason, message, 1, "");

  const int64_t count = seen.count + 1;
  const Json patch = {{"count", count}, {"lastTimestamp", formatRfc3339(now_())}};
  auto patched = client_.patch(resources::kEvents, {seen.ns, seen.name}, patch);
  if (patched.ok()) {
    std::lock_guard lock(mu_);
    const auto it = seen_.find(key);
    if (it != seen_.end()) it->second.count = count;
    return {};
  }
  // The Event expired (the API server keeps Events for an hour) or never got written: start a
  // new one that carries the running count.
  if (patched.status().isNotFound()) {
    return createEvent(key, object, type, reason, message, count, seen.firstTimestamp);
  }
  return patched.status().annotate("recording event " + reason);
}

}  // namespace tasklease::kube
