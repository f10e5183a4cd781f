#pragma once
// FakeApiClient: an in-memory ApiClient for unit tests of code written against kube::ApiClient
// (the operator's reconciler, the webhook's reviews). It behaves like an API server where our
// code depends on it: resourceVersions from one counter, 409 Conflict on a stale update, 409
// AlreadyExists, uid/creationTimestamp/generation, finalizers and deletionTimestamp,
// deletion preconditions, background garbage collection by ownerReferences, merge and JSON
// patch, label and field selectors, pagination, and watches with history (resume from a
// resourceVersion, 410 after compact(), server-side close). Reactors answer calls first, for
// reviews and injected failures. Thread-safe.
//
//   FakeApiClient fake;
//   fake.failNext("create", "rolebindings", Status(StatusCode::kInternal, "boom"));
//   fake.prependReactor("create", "subjectaccessreviews", [](const FakeApiClient::Action&) {
//     return std::optional<StatusOr<Json>>(Json{{"status", {{"allowed", true}}}});
//   });
//   Reconciler r(fake, ...);
//   EXPECT_EQ(fake.actions().size(), 3u);

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kube/api_client.h"

namespace tasklease::kube {

class FakeApiClient final : public ApiClient {
 public:
  // One call as the fake saw it. verb: get, list, create, update, patch, delete,
  // deletecollection (key.name empty, body {"labelSelector", "fieldSelector", "options"}), watch;
  // update of status and patch of a subresource carry subresource "status".
  struct Action {
    std::string verb;
    std::string resource;  // ResourceRef::resource, e.g. "configmaps"
    ObjectKey key;
    std::string subresource;
    Json body;  // the object, patch or DeleteOptions sent
  };
  // Returns an answer to short-circuit the call, or nullopt to let the fake handle it.
  using Reactor = std::function<std::optional<StatusOr<Json>>(const Action&)>;

  FakeApiClient();
  ~FakeApiClient() override;

  using ApiClient::create;
  using ApiClient::createSubresource;
  using ApiClient::get;
  using ApiClient::list;
  using ApiClient::patch;
  using ApiClient::remove;
  using ApiClient::removeCollection;
  using ApiClient::update;
  using ApiClient::updateStatus;

  StatusOr<Json> get(const ResourceRef& resource, const ObjectKey& key,
                     const CallOptions& call) override;
  StatusOr<Json> list(const ResourceRef& resource, const std::string& ns,
                      const ListOptions& options, const CallOptions& call) override;
  StatusOr<Json> create(const ResourceRef& resource, const Json& object,
                        const WriteOptions& options, const CallOptions& call) override;
  StatusOr<Json> update(const ResourceRef& resource, const Json& object,
                        const WriteOptions& options, const CallOptions& call) override;
  StatusOr<Json> updateStatus(const ResourceRef& resource, const Json& object,
                              const WriteOptions& options, const CallOptions& call) override;
  StatusOr<Json> patch(const ResourceRef& resource, const ObjectKey& key, const Json& patch,
                       const PatchOptions& options, const CallOptions& call) override;
  Status remove(const ResourceRef& resource, const ObjectKey& key, const DeleteOptions& options,
                const CallOptions& call) override;
  StatusOr<Json> removeCollection(const ResourceRef& resource, const std::string& ns,
                                  const ListOptions& selection, const DeleteOptions& options,
                                  const CallOptions& call) override;
  StatusOr<Json> createSubresource(const ResourceRef& resource, const ObjectKey& key,
                                   const std::string& subresource, const Json& body,
                                   const CallOptions& call) override;
  Status watch(const ResourceRef& resource, const std::string& ns, const WatchOptions& options,
               const WatchHandler& handler, const CallOptions& call) override;

  // ---- controls for tests ----

  // Consulted newest first, before the store; verb and resource may be "*".
  void prependReactor(const std::string& verb, const std::string& resource, Reactor reactor);
  // The next `times` matching calls fail with `status` (and are still recorded).
  void failNext(const std::string& verb, const std::string& resource, const Status& status,
                int times = 1);
  std::vector<Action> actions() const;
  void clearActions();

  // The stored object, without recording an action.
  std::optional<Json> object(const ResourceRef& resource, const ObjectKey& key) const;
  std::vector<Json> objects(const ResourceRef& resource) const;

  // Forgets the watch history: a watch from any earlier resourceVersion gets 410 Expired.
  void compact();
  // Ends every open watch stream, as a server does when a connection drops.
  void closeWatches();
  // Sends a BOOKMARK with the current resourceVersion to open watches of `resource`.
  void bookmark(const ResourceRef& resource);
  // Events kept for watch resumption (default 1000); older ones are compacted away.
  void setHistoryLimit(size_t events);
  // The server's clock for creation and deletion timestamps (default: the real clock); a test
  // with a clock of its own sets it, so that what is counted from a creation (a task's ttl)
  // agrees with that clock. Set before any call.
  void setClock(std::function<std::chrono::system_clock::time_point()> clock) {
    clock_ = std::move(clock);
  }
  int64_t resourceVersion() const;
  size_t openWatches() const;

 private:
  std::function<std::chrono::system_clock::time_point()> clock_ = [] {
    return std::chrono::system_clock::now();
  };
  struct HistoryEvent {
    int64_t rv;
    std::string resource;
    WatchEventType type;
    Json object;
    Json previous;  // the object before the change (null for additions)
  };

  std::optional<StatusOr<Json>> reactLocked(const Action& action);
  void recordLocked(const Action& action) { actions_.push_back(action); }
  std::map<std::string, Json>& storeLocked(const ResourceRef& resource);
  const Json* findLocked(const ResourceRef& resource, const ObjectKey& key) const;
  void emitLocked(const std::string& resource, WatchEventType type, const Json& object,
                  const Json& previous);
  StatusOr<Json> createLocked(const ResourceRef& resource, Json object);
  StatusOr<Json> replaceLocked(const ResourceRef& resource, const ObjectKey& key, Json next,
                               bool statusOnly, bool checkVersion);
  Status deleteLocked(const ResourceRef& resource, const ObjectKey& key,
                      const DeleteOptions& options);
  void collectGarbageLocked(const std::string& ownerUid);
  std::string nextVersionLocked() { return std::to_string(++rv_); }

  mutable std::mutex mu_;
  std::condition_variable_any changed_;                         // new history, closeWatches()
  std::map<std::string, ResourceRef> refs_;                     // guarded by mu_
  std::map<std::string, std::map<std::string, Json>> objects_;  // guarded by mu_
  std::deque<HistoryEvent> history_;                            // guarded by mu_
  size_t historyLimit_ = 1000;                                  // guarded by mu_
  int64_t oldestResumable_ = 0;  // guarded by mu_: watches from below this get 410
  int64_t rv_ = 100;             // guarded by mu_
  int64_t uidCounter_ = 0;       // guarded by mu_
  int64_t closeGeneration_ = 0;  // guarded by mu_
  size_t openWatches_ = 0;       // guarded by mu_
  std::vector<Action> actions_;  // guarded by mu_
  std::vector<std::tuple<std::string, std::string, Reactor>> reactors_;  // guarded by mu_
};

}  // namespace tasklease::kube
