#pragma once
// ApiClient: the calls the operator and the webhook make on the Kubernetes API, on JSON objects.
// It is the seam of everything that talks to a cluster: ApiClientImpl (kube/api_client_impl.h)
// speaks HTTPS to a real API server; FakeApiClient (tests/mocks/fake_api_client.h) keeps objects
// in memory for unit tests.
//
//   StatusOr<Json> cm = client.get(resources::kConfigMaps, {"team-a", "billing"});
//   if (!cm.ok() && cm.status().isNotFound()) ...
//   auto created = client.create(resources::kConfigMaps, object);   // namespace from metadata
//   Status gone = client.remove(resources::kSecrets, {"team-a", "x"},
//                               DeleteOptions{.propagation = PropagationPolicy::kBackground});
//   auto deleted = client.removeCollection(resources::kSecrets, "team-a",
//                                          ListOptions{.labelSelector = "app=x"});
//
// Every call returns errors as Status values (kube/errors.h): isNotFound(), isConflict(),
// isAlreadyExists(), isGone(), with the server's reason, code, message and causes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kube/resource.h"

namespace tasklease::kube {

// Per call: cancellation and an overall deadline, retries and backoff included.
struct CallOptions {
  std::stop_token stop;
  std::chrono::milliseconds timeout{0};  // zero: the client's per-attempt timeout and retry policy
};

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  int64_t limit = 0;            // page size; zero: everything in one answer
  std::string continueToken;    // from the previous page's metadata.continue
  std::string resourceVersion;  // "": the latest (a quorum read)
};

struct WatchOptions {
  std::string labelSelector;
  std::string fieldSelector;
  std::string resourceVersion;  // events after this one; "": from the current state
  bool allowBookmarks = true;
  int timeoutSeconds = 0;  // the server ends the stream after this; zero: server default
};

struct WriteOptions {
  bool dryRun = false;
  std::string fieldManager;
};

enum class PatchType {
  kMerge,           // application/merge-patch+json (RFC 7386)
  kJson,            // application/json-patch+json (RFC 6902): the patch is an array of ops
  kStrategicMerge,  // application/strategic-merge-patch+json (built-in types only)
};

struct PatchOptions {
  PatchType type = PatchType::kMerge;
  std::string subresource;  // e.g. "status"
  bool dryRun = false;
  std::string fieldManager;
};

enum class PropagationPolicy { kDefault, kBackground, kForeground, kOrphan };

struct DeleteOptions {
  PropagationPolicy propagation = PropagationPolicy::kDefault;
  std::string preconditionUid;              // delete only this incarnation
  std::string preconditionResourceVersion;  // delete only this version
  std::optional<int64_t> gracePeriodSeconds;
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark, kError };

struct WatchEvent {
  WatchEventType type = WatchEventType::kAdded;
  Json object;  // the object; for kError a metav1.Status; for kBookmark only metadata
};

const char* watchEventTypeName(WatchEventType type);

// Receives each event of a watch; returns false to end the watch.
using WatchHandler = std::function<bool(WatchEvent&&)>;

class ApiClient {
 public:
  virtual ~ApiClient() = default;

  virtual StatusOr<Json> get(const ResourceRef& resource, const ObjectKey& key,
                             const CallOptions& call) = 0;

  // One page: the List object, with metadata.resourceVersion and metadata.continue.
  // listAll() below follows the pages.
  virtual StatusOr<Json> list(const ResourceRef& resource, const std::string& ns,
                              const ListOptions& options, const CallOptions& call) = 0;

  // The namespace and name come from the object's metadata (or metadata.generateName).
  virtual StatusOr<Json> create(const ResourceRef& resource, const Json& object,
                                const WriteOptions& options, const CallOptions& call) = 0;

  // PUT of the whole object; with metadata.resourceVersion set, a stale copy gets Conflict.
  virtual StatusOr<Json> update(const ResourceRef& resource, const Json& object,
                                const WriteOptions& options, const CallOptions& call) = 0;

  // PUT to the status subresource: only .status changes.
  virtual StatusOr<Json> updateStatus(const ResourceRef& resource, const Json& object,
                                      const WriteOptions& options, const CallOptions& call) = 0;

  virtual StatusOr<Json> patch(const ResourceRef& resource, const ObjectKey& key, const Json& patch,
                               const PatchOptions& options, const CallOptions& call) = 0;

  // OK once the server accepted the deletion (finalizers may keep the object a while).
  virtual Status remove(const ResourceRef& resource, const ObjectKey& key,
                        const DeleteOptions& options, const CallOptions& call) = 0;

  // DELETE of a collection (the deletecollection verb): every object of `resource` in `ns`
  // that `selection`'s label and field selectors match (limit and continue are not used), each
  // deleted as by remove() with `options`. Returns the List of the objects the server deleted
  // or marked for deletion, as it answered; an object a finalizer holds is still there after.
  virtual StatusOr<Json> removeCollection(const ResourceRef& resource, const std::string& ns,
                                          const ListOptions& selection,
                                          const DeleteOptions& options,
                                          const CallOptions& call) = 0;

  // POST to a subresource, e.g. serviceaccounts/token (a TokenRequest); returns the answer.
  virtual StatusOr<Json> createSubresource(const ResourceRef& resource, const ObjectKey& key,
                                           const std::string& subresource, const Json& body,
                                           const CallOptions& call) = 0;

  // One watch stream: blocks, delivering events to `handler`, until the server ends the
  // stream (OK), the handler returns false (OK), `call.stop` fires (kCancelled) or an error
  // (a 410 as isGone()). An ERROR event is delivered to the handler and then ends the watch
  // with its Status. Resuming and relisting are the Informer's job (kube/informer.h).
  virtual Status watch(const ResourceRef& resource, const std::string& ns,
                       const WatchOptions& options, const WatchHandler& handler,
                       const CallOptions& call) = 0;

  // Shorthands with default options.
  StatusOr<Json> get(const ResourceRef& resource, const ObjectKey& key) {
    return get(resource, key, CallOptions{});
  }
  StatusOr<Json> list(const ResourceRef& resource, const std::string& ns,
                      const ListOptions& options = {}) {
    return list(resource, ns, options, CallOptions{});
  }
  StatusOr<Json> create(const ResourceRef& resource, const Json& object) {
    return create(resource, object, WriteOptions{}, CallOptions{});
  }
  StatusOr<Json> update(const ResourceRef& resource, const Json& object) {
    return update(resource, object, WriteOptions{}, CallOptions{});
  }
  StatusOr<Json> updateStatus(const ResourceRef& resource, const Json& object) {
    return updateStatus(resource, object, WriteOptions{}, CallOptions{});
  }
  StatusOr<Json> patch(const ResourceRef& resource, const ObjectKey& key, const Json& patchBody,
                       const PatchOptions& options = {}) {
    return patch(resource, key, patchBody, options, CallOptions{});
  }
  Status remove(const ResourceRef& resource, const ObjectKey& key,
                const DeleteOptions& options = {}) {
    return remove(resource, key, options, CallOptions{});
  }
  StatusOr<Json> removeCollection(const ResourceRef& resource, const std::string& ns,
                                  const ListOptions& selection, const DeleteOptions& options = {}) {
    return removeCollection(resource, ns, selection, options, CallOptions{});
  }
  StatusOr<Json> createSubresource(const ResourceRef& resource, const ObjectKey& key,
                                   const std::string& subresource, const Json& body) {
    return createSubresource(resource, key, subresource, body, CallOptions{});
  }
};

// Every item of a list, page by page (`options.limit` per page; 500 when zero). If a continue
// token expires midway (410), it starts over with one unpaginated list, as client-go's pager
// does. The resourceVersion is the list's, to start a watch from.
struct ListResult {
  std::vector<Json> items;
  std::string resourceVersion;
};
StatusOr<ListResult> listAll(ApiClient& client, const ResourceRef& resource, const std::string& ns,
                             ListOptions options = {}, const CallOptions& call = {});

// The body of a DELETE: a meta/v1 DeleteOptions object.
Json deleteOptionsBody(const DeleteOptions& options);

// The list of query parameters for a call ("?labelSelector=...&limit=..."), percent-encoded;
// "" when there are none.
std::string listQuery(const ListOptions& options);
std::string watchQuery(const WatchOptions& options);
std::string writeQuery(bool dryRun, const std::string& fieldManager);

}  // namespace tasklease::kube
