#include "kube/informer.h"

#include <random>
#include <utility>

#include "common/log.h"
#include "kube/clock.h"

namespace tasklease::kube {
namespace {

// A watch that lasted this long was working; its end is a normal reconnect, not a failure.
constexpr std::chrono::seconds kHealthyWatch{1};

std::string keyOf(const Json& object) {
  return objectKeyOf(object).toString();
}

std::vector<std::string> labelEntries(const Json& object) {
  std::vector<std::string> out;
  const Json& labels = labelsOf(object);
  if (!labels.is_object()) return out;
  for (const auto& [k, v] : labels.items()) {
    if (v.is_string()) out.push_back(k + "=" + v.get<std::string>());
  }
  return out;
}

}  // namespace

// ---- ObjectCache ----

ObjectPtr ObjectCache::get(const std::string& key) const {
  std::shared_lock lock(mu_);
  const auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> ObjectCache::list() const {
  std::shared_lock lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(objects_.size());
  for (const auto& [k, v] : objects_) out.push_back(v);
  return out;
}

std::vector<ObjectPtr> ObjectCache::collectLocked(const std::set<std::string>& keys) const {
  std::vector<ObjectPtr> out;
  out.reserve(keys.size());
  for (const auto& k : keys) {
    const auto it = objects_.find(k);
    if (it != objects_.end()) out.push_back(it->second);
  }
  return out;
}

std::vector<ObjectPtr> ObjectCache::listNamespace(const std::string& ns) const {
  std::shared_lock lock(mu_);
  const auto it = byNamespace_.find(ns);
  return it == byNamespace_.end() ? std::vector<ObjectPtr>{} : collectLocked(it->second);
}

std::vector<ObjectPtr> ObjectCache::listByLabel(const std::string& key,
                                                const std::string& value) const {
  std::shared_lock lock(mu_);
  const auto it = byLabel_.find(key + "=" + value);
  return it == byLabel_.end() ? std::vector<ObjectPtr>{} : collectLocked(it->second);
}

std::vector<ObjectPtr> ObjectCache::select(const std::string& ns,
                                           const LabelSelector& selector) const {
  std::vector<ObjectPtr> candidates = ns.empty() ? list() : listNamespace(ns);
  std::vector<ObjectPtr> out;
  for (auto& o : candidates) {
    if (selector.matches(labelsOf(*o))) out.push_back(std::move(o));
  }
  return out;
}

std::vector<std::string> ObjectCache::keys() const {
  std::shared_lock lock(mu_);
  std::vector<std::string> out;
  out.reserve(objects_.size());
  for (const auto& [k, v] : objects_) out.push_back(k);
  return out;
}

size_t ObjectCache::size() const {
  std::shared_lock lock(mu_);
  return objects_.size();
}

void ObjectCache::indexLocked(const std::string& key, const Json& object) {
  byNamespace_[objectKeyOf(object).ns].insert(key);
  for (const auto& entry : labelEntries(object)) byLabel_[entry].insert(key);
}

void ObjectCache::unindexLocked(const std::string& key, const Json& object) {
  const std::string ns = objectKeyOf(object).ns;
  if (auto it = byNamespace_.find(ns); it != byNamespace_.end()) {
    it->second.erase(key);
    if (it->second.empty()) byNamespace_.erase(it);
  }
  for (const auto& entry : labelEntries(object)) {
    if (auto it = byLabel_.find(entry); it != byLabel_.end()) {
      it->second.erase(key);
      if (it->second.empty()) byLabel_.erase(it);
    }
  }
}

ObjectPtr ObjectCache::upsert(ObjectPtr object) {
  const std::string key = keyOf(*object);
  std::unique_lock lock(mu_);
  ObjectPtr old;
  if (auto it = objects_.find(key); it != objects_.end()) {
    old = it->second;
    unindexLocked(key, *old);
    it->second = object;
  } else {
    objects_.emplace(key, object);
  }
  indexLocked(key, *object);
  return old;
}

ObjectPtr ObjectCache::erase(const std::string& key) {
  std::unique_lock lock(mu_);
  const auto it = objects_.find(key);
  if (it == objects_.end()) return nullptr;
  ObjectPtr old = it->second;
  unindexLocked(key, *old);
  objects_.erase(it);
  return old;
}

// ---- Informer ----

Informer::Informer(ApiClient& client, ResourceRef resource, InformerOptions options)
    : client_(client), resource_(std::move(resource)), options_(std::move(options)) {}

Informer::~Informer() {
  stop();
}

void Informer::addEventHandler(ResourceEventHandler handler) {
  std::lock_guard lock(dispatchMu_);
  if (handler.onAdd) {
    for (const auto& o : cache_.list()) handler.onAdd(*o);
  }
  handlers_.push_back(std::move(handler));
}

void Informer::start() {
  runThread_ = std::jthread([this](const std::stop_token& st) { run(st); });
  if (options_.resyncPeriod.count() > 0) {
    resyncThread_ = std::jthread([this](const std::stop_token& st) { resyncLoop(st); });
  }
}

void Informer::stop() {
  runThread_.request_stop();
  resyncThread_.request_stop();
  if (runThread_.joinable()) runThread_.join();
  if (resyncThread_.joinable()) resyncThread_.join();
}

bool Informer::hasSynced() const {
  std::lock_guard lock(stateMu_);
  return synced_;
}

bool Informer::waitForSync(std::chrono::milliseconds timeout, const std::stop_token& stop) {
  std::unique_lock lock(stateMu_);
  syncedCv_.wait_for(lock, stop, timeout, [this] { return synced_; });
  return synced_;
}

std::string Informer::lastResourceVersion() const {
  std::lock_guard lock(stateMu_);
  return resourceVersion_;
}

int Informer::listCount() const {
  std::lock_guard lock(stateMu_);
  return lists_;
}

int Informer::watchCount() const {
  std::lock_guard lock(stateMu_);
  return watches_;
}

void Informer::upsertAndNotifyLocked(Json&& object) {
  const std::string key = keyOf(object);
  const ObjectPtr current = cache_.get(key);
  // The same resourceVersion again (a watch replaying what a list already showed): no change.
  if (current && resourceVersionOf(*current) == resourceVersionOf(object)) return;
  auto next = std::make_shared<const Json>(std::move(object));
  const ObjectPtr old = cache_.upsert(next);
  for (const auto& h : handlers_) {
    if (old) {
      if (h.onUpdate) h.onUpdate(*old, *next);
    } else if (h.onAdd) {
      h.onAdd(*next);
    }
  }
}

void Informer::deleteAndNotifyLocked(const std::string& key, const Json* finalState) {
  const ObjectPtr old = cache_.erase(key);
  if (!old) return;  // never seen, or already gone
  for (const auto& h : handlers_) {
    if (h.onDelete) h.onDelete(finalState != nullptr ? *finalState : *old);
  }
}

void Informer::replace(std::vector<Json>&& items) {
  std::lock_guard lock(dispatchMu_);
  std::set<std::string> listed;
  for (auto& item : items) {
    listed.insert(keyOf(item));
    upsertAndNotifyLocked(std::move(item));
  }
  for (const auto& key : cache_.keys()) {
    if (listed.count(key) == 0) deleteAndNotifyLocked(key, nullptr);
  }
}

void Informer::apply(WatchEvent&& event) {
  std::lock_guard lock(dispatchMu_);
  switch (event.type) {
    case WatchEventType::kAdded:
    case WatchEventType::kModified:
      upsertAndNotifyLocked(std::move(event.object));
      break;
    case WatchEventType::kDeleted:
      deleteAndNotifyLocked(keyOf(event.object), &event.object);
      break;
    case WatchEventType::kBookmark:
    case WatchEventType::kError:
      break;
  }
}

void Informer::run(const std::stop_token& stop) {
  Backoff backoff(options_.backoff);
  std::mt19937 rng(std::random_device{}());
  bool needList = true;
  bool listedJustNow = false;  // the watch about to start is the first after a fresh list
  const std::string what = "informer " + resource_.groupResource();
  while (!stop.stop_requested()) {
    if (needList) {
      {
        std::lock_guard lock(stateMu_);
        ++lists_;
      }
      ListOptions lo;
      lo.labelSelector = options_.labelSelector;
      lo.fieldSelector = options_.fieldSelector;
      lo.limit = options_.pageSize;
      auto listed = listAll(client_, resource_, options_.ns, lo, CallOptions{stop, {}});
      if (!listed.ok()) {
        if (stop.stop_requested()) return;
        const auto delay = backoff.next();
        logWarn(what + ": list failed",
                {{"error", listed.status().toString()}, {"retryInMs", delay.count()}});
        sleepFor(delay, stop);
        continue;
      }
      replace(std::move(listed->items));
      {
        std::lock_guard lock(stateMu_);
        resourceVersion_ = listed->resourceVersion;
        synced_ = true;
      }
      syncedCv_.notify_all();
      needList = false;
      listedJustNow = true;
    }

    WatchOptions wo;
    wo.labelSelector = options_.labelSelector;
    wo.fieldSelector = options_.fieldSelector;
    wo.resourceVersion = lastResourceVersion();
    wo.allowBookmarks = true;
    const auto minTimeout = std::max<int64_t>(1, options_.minWatchTimeout.count());
    wo.timeoutSeconds = static_cast<int>(
        std::uniform_int_distribution<int64_t>(minTimeout, 2 * minTimeout - 1)(rng));
    {
      std::lock_guard lock(stateMu_);
      ++watches_;
    }
    int events = 0;
    const auto watchStarted = std::chrono::steady_clock::now();
    const Status watched = client_.watch(
        resource_, options_.ns, wo,
        [&](WatchEvent&& event) {
          if (event.type == WatchEventType::kError) return false;
          const std::string rv = resourceVersionOf(event.object);
          apply(std::move(event));
          if (!rv.empty()) {
            std::lock_guard lock(stateMu_);
            resourceVersion_ = rv;
          }
          ++events;
          return !stop.stop_requested();
        },
        CallOptions{stop, {}});
    if (stop.stop_requested()) return;
    // A stream that delivered events or stayed up a while was healthy, however it ended.
    const bool healthy =
        events > 0 || std::chrono::steady_clock::now() - watchStarted >= kHealthyWatch;
    if (healthy) backoff.reset();
    const bool afterList = std::exchange(listedJustNow, false);
    if (watched.isGone()) {
      // Our resourceVersion is older than the server keeps: start over from a fresh list, at
      // once (the server answered, and every moment without the list is a moment blind;
      // failures before, which grew the backoff, must not delay it), unless the version of a
      // list just made is already too old: then after a pause, as that may keep happening.
      logInfo(what + ": watch expired, relisting", {{"resourceVersion", wo.resourceVersion}});
      needList = true;
      if (!healthy && afterList) sleepFor(backoff.next(), stop);
      continue;
    }
    if (healthy) {
      // Resume from the last resourceVersion at once.
      if (!watched.ok()) logInfo(what + ": watch ended", {{"error", watched.toString()}});
      continue;
    }
    // A watch that failed at once: pause before resuming from the same resourceVersion, so
    // a failing server is not hammered.
    const auto delay = backoff.next();
    if (!watched.ok()) {
      logWarn(what + ": watch failed",
              {{"error", watched.toString()}, {"retryInMs", delay.count()}});
    }
    sleepFor(delay, stop);
  }
}

void Informer::resyncLoop(const std::stop_token& stop) {
  while (sleepFor(options_.resyncPeriod, stop)) {
    std::lock_guard lock(dispatchMu_);
    for (const auto& o : cache_.list()) {
      for (const auto& h : handlers_) {
        if (h.onUpdate) h.onUpdate(*o, *o);
      }
    }
  }
}

}  // namespace tasklease::kube
