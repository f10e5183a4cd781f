#include "operator/cluster_view.h"

#include "operator/task.h"

namespace tasklease::op {

namespace {

kube::InformerOptions informerOptions(const std::string& ns, const std::string& selector,
                                      std::chrono::milliseconds resync) {
  kube::InformerOptions o;
  o.ns = ns;
  o.labelSelector = selector;
  o.resyncPeriod = resync;
  return o;
}

}  // namespace

InformerClusterView::InformerClusterView(kube::ApiClient& client,
                                         const InformerClusterViewOptions& options)
    : tasks_(client, kAgentTasks, informerOptions(options.ns, "", options.resyncPeriod)),
      policies_(client, kAgentPolicies, informerOptions("", "", options.resyncPeriod)),
      // Jobs only wake their task up; the task's own resync covers them.
      jobs_(client, kube::resources::kJobs,
            informerOptions(options.ns, kManagedSelector, std::chrono::milliseconds(0))) {}

kube::ObjectPtr InformerClusterView::task(const kube::ObjectKey& key) const {
  return tasks_.cache().get(key.toString());
}

std::vector<kube::ObjectPtr> InformerClusterView::tasks() const {
  return tasks_.cache().list();
}

std::vector<Json> InformerClusterView::policies() const {
  std::vector<Json> out;
  for (const auto& p : policies_.cache().list()) out.push_back(*p);
  return out;
}

kube::ObjectPtr InformerClusterView::job(const kube::ObjectKey& key) const {
  return jobs_.cache().get(key.toString());
}

void InformerClusterView::start() {
  tasks_.start();
  policies_.start();
  jobs_.start();
}

void InformerClusterView::stop() {
  tasks_.stop();
  policies_.stop();
  jobs_.stop();
}

bool InformerClusterView::waitForSync(std::chrono::milliseconds timeout,
                                      const std::stop_token& stop) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (kube::Informer* informer : {&tasks_, &policies_, &jobs_}) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !informer->waitForSync(left, stop)) return false;
  }
  return true;
}

bool InformerClusterView::hasSynced() const {
  return tasks_.hasSynced() && policies_.hasSynced() && jobs_.hasSynced();
}

}  // namespace tasklease::op
