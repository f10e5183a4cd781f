#pragma once
// ClusterView: what the reconciler reads instead of asking the API server, the informer caches
// of AgentTasks, AgentPolicies and the operator's Jobs. InformerClusterView is the running
// operator's; unit tests read a FakeApiClient's store through their own implementation.
//
//   InformerClusterView view(client, {.ns = "team-a"});
//   view.start();
//   view.waitForSync(std::chrono::seconds(30), stop);
//   kube::ObjectPtr task = view.task({"team-a", "t1"});

#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

#include "common/json.h"
#include "kube/informer.h"

namespace tasklease::op {

class ClusterView {
 public:
  virtual ~ClusterView() = default;
  virtual kube::ObjectPtr task(const kube::ObjectKey& key) const = 0;
  virtual std::vector<kube::ObjectPtr> tasks() const = 0;
  virtual std::vector<Json> policies() const = 0;
  virtual kube::ObjectPtr job(const kube::ObjectKey& key) const = 0;
};

struct InformerClusterViewOptions {
  std::string ns;  // tasks and Jobs of this namespace only; "" for all
  std::chrono::milliseconds resyncPeriod{std::chrono::minutes(10)};
};

class InformerClusterView final : public ClusterView {
 public:
  InformerClusterView(kube::ApiClient& client, const InformerClusterViewOptions& options);

  kube::ObjectPtr task(const kube::ObjectKey& key) const override;
  std::vector<kube::ObjectPtr> tasks() const override;
  std::vector<Json> policies() const override;
  kube::ObjectPtr job(const kube::ObjectKey& key) const override;

  kube::Informer& taskInformer() { return tasks_; }
  kube::Informer& policyInformer() { return policies_; }
  kube::Informer& jobInformer() { return jobs_; }

  void start();
  void stop();
  bool waitForSync(std::chrono::milliseconds timeout, const std::stop_token& stop);
  bool hasSynced() const;

 private:
  kube::Informer tasks_;
  kube::Informer policies_;
  kube::Informer jobs_;
};

}  // namespace tasklease::op
