#pragma once
// The webhook's ClusterState in a cluster: informer caches of Namespaces, ServiceAccounts,
// AgentTasks and IdentityExceptions across all namespaces (kube/informer.h). Reviews read the
// caches only, never the API server.
//
//   InformerClusterState state(apiClient);
//   state.start();
//   ... state.synced() turns true once every cache has its first list (/readyz) ...
//   state.stop();
//
// A ServiceAccount, task or namespace created a moment before the pod that uses it may not be
// in the cache yet: a lookup that misses waits up to `missWait` for the informer to bring it,
// then answers kAbsent. Only `maxMissWaiters` lookups wait at once; the others answer kAbsent
// at once, so that pods naming objects that do not exist cannot hold every review worker.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kube/api_client.h"
#include "kube/resource.h"
#include "webhook/cluster_state.h"

namespace tasklease::kube {
class Informer;
}  // namespace tasklease::kube

namespace tasklease::webhook {

inline const kube::ResourceRef kAgentTasks{"tasklease.io", "v1alpha1", "agenttasks", "AgentTask",
                                           true};
inline const kube::ResourceRef kIdentityExceptions{"tasklease.io", "v1alpha1", "identityexceptions",
                                                   "IdentityException", true};

struct InformerClusterStateOptions {
  std::chrono::milliseconds missWait{1000};
  size_t maxMissWaiters = 1;
  std::chrono::milliseconds resyncPeriod{0};
};

class InformerClusterState : public ClusterState {
 public:
  explicit InformerClusterState(kube::ApiClient& client, InformerClusterStateOptions options = {});
  ~InformerClusterState() override;

  void start();
  void stop();

  bool synced() const override;
  // The resources whose first list has not arrived, e.g. {"agenttasks"}.
  std::vector<std::string> unsynced() const;
  // Lookups waiting on a cache miss now.
  size_t missWaiters() const;

  Lookup namespaceObject(std::string_view name) const override;
  Lookup serviceAccount(std::string_view ns, std::string_view name) const override;
  Lookup agentTask(std::string_view ns, std::string_view name) const override;
  std::vector<ObjectRef> identityExceptions(std::string_view ns) const override;

 private:
  Lookup lookup(const kube::Informer& informer, const std::string& key) const;

  InformerClusterStateOptions options_;
  std::unique_ptr<kube::Informer> namespaces_;
  std::unique_ptr<kube::Informer> serviceAccounts_;
  std::unique_ptr<kube::Informer> agentTasks_;
  std::unique_ptr<kube::Informer> identityExceptions_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;  // any cache gained or changed an object
  uint64_t changes_ = 0;                     // guarded by mu_
  mutable size_t missWaiters_ = 0;           // guarded by mu_
};

}  // namespace tasklease::webhook
