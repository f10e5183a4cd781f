#pragma once
// Informer: keeps a local, thread-safe copy of one resource (optionally one namespace or label
// selection) by listing it and then watching it, and tells event handlers about each change.
// When the watch ends it resumes from the last resourceVersion seen; when the server says that
// version is too old (410) it lists again and reports only the differences. Handlers run one
// at a time, in the order the changes happened, on the informer's thread, and never see the
// same resourceVersion of an object twice (periodic resync, if enabled, is the exception: it
// calls onUpdate(obj, obj) for every object, as client-go does).
//
//   Informer tasks(client, kAgentTasks, {.resyncPeriod = std::chrono::minutes(10)});
//   tasks.addEventHandler({.onAdd = [&](const Json& o) { queue.add(objectKeyOf(o).toString()); }});
//   tasks.start();
//   tasks.waitForSync(stop);
//   for (const auto& t : tasks.cache().listNamespace("team-a")) ...

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "kube/api_client.h"
#include "kube/backoff.h"
#include "kube/resource.h"
#include "kube/selector.h"

namespace tasklease::kube {

using ObjectPtr = std::shared_ptr<const Json>;

// The informer's store: objects by key ("ns/name"), indexed by namespace and by label.
// Readers get shared, immutable objects. Thread-safe.
class ObjectCache {
 public:
  ObjectPtr get(const std::string& key) const;
  std::vector<ObjectPtr> list() const;
  std::vector<ObjectPtr> listNamespace(const std::string& ns) const;
  // Objects whose label `key` has `value`.
  std::vector<ObjectPtr> listByLabel(const std::string& key, const std::string& value) const;
  // Objects in `ns` ("" for all) matching the selector.
  std::vector<ObjectPtr> select(const std::string& ns, const LabelSelector& selector) const;
  std::vector<std::string> keys() const;
  size_t size() const;

  // Stores the object under its key; returns the previous one (null if none).
  ObjectPtr upsert(ObjectPtr object);
  // Removes the key; returns what was stored (null if nothing).
  ObjectPtr erase(const std::string& key);

 private:
  void indexLocked(const std::string& key, const Json& object);
  void unindexLocked(const std::string& key, const Json& object);
  std::vector<ObjectPtr> collectLocked(const std::set<std::string>& keys) const;

  mutable std::shared_mutex mu_;
  std::map<std::string, ObjectPtr> objects_;                  // guarded by mu_
  std::map<std::string, std::set<std::string>> byNamespace_;  // guarded by mu_
  std::map<std::string, std::set<std::string>> byLabel_;      // guarded by mu_: "k=v" -> keys
};

// Callbacks for changes; any may be left empty.
struct ResourceEventHandler {
  std::function<void(const Json& object)> onAdd;
  std::function<void(const Json& oldObject, const Json& newObject)> onUpdate;
  // The last state known; after a relist it is the cached copy, not the final one.
  std::function<void(const Json& object)> onDelete;
};

struct InformerOptions {
  std::string ns;  // "" for all namespaces
  std::string labelSelector;
  std::string fieldSelector;
  std::chrono::milliseconds resyncPeriod{0};  // zero: no resync
  int64_t pageSize = 500;
  // After a failed list or watch. Reset once a watch has delivered events.
  BackoffPolicy backoff{std::chrono::milliseconds(200), 2.0, 0.5, std::chrono::seconds(30)};
  // Each watch asks the server to end it after a random time in [min, 2*min): spreads
  // reconnects and bounds how long a silently broken connection goes unnoticed.
  std::chrono::seconds minWatchTimeout{300};
};

class Informer {
 public:
  Informer(ApiClient& client, ResourceRef resource, InformerOptions options = {});
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Handlers added after start() first get onAdd for every cached object. Handlers must not
  // call addEventHandler() themselves.
  void addEventHandler(ResourceEventHandler handler);

  // Starts the list-and-watch thread (and the resync thread). Call once.
  void start();
  // Stops both threads promptly, interrupting a blocked watch; idempotent.
  void stop();

  // True once the first list is in the cache.
  bool hasSynced() const;
  // Waits for hasSynced(), at most `timeout` or until `stop`; returns hasSynced().
  bool waitForSync(std::chrono::milliseconds timeout, const std::stop_token& stop = {});

  const ObjectCache& cache() const { return cache_; }
  // The resourceVersion the informer would resume its watch from.
  std::string lastResourceVersion() const;

  // Counters for tests and metrics.
  int listCount() const;
  int watchCount() const;

 private:
  void run(const std::stop_token& stop);
  void resyncLoop(const std::stop_token& stop);
  // Applies a full list: adds, updates for changed resourceVersions, deletes for the missing.
  void replace(std::vector<Json>&& items);
  // Applies one watch event; returns false for an ERROR event.
  void apply(WatchEvent&& event);
  void upsertAndNotifyLocked(Json&& object);
  void deleteAndNotifyLocked(const std::string& key, const Json* finalState);

  ApiClient& client_;
  const ResourceRef resource_;
  const InformerOptions options_;
  ObjectCache cache_;

  // Serializes cache changes with handler calls, so handlers see changes one at a time and in
  // order, and a handler added late gets a consistent replay.
  std::mutex dispatchMu_;
  std::vector<ResourceEventHandler> handlers_;  // guarded by dispatchMu_

  mutable std::mutex stateMu_;
  std::condition_variable_any syncedCv_;
  bool synced_ = false;          // guarded by stateMu_
  std::string resourceVersion_;  // guarded by stateMu_
  int lists_ = 0;                // guarded by stateMu_
  int watches_ = 0;              // guarded by stateMu_

  std::jthread runThread_;
  std::jthread resyncThread_;
};

}  // namespace tasklease::kube
