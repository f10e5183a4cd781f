#include "webhook/informer_state.h"

#include "kube/informer.h"

namespace tasklease::webhook {

InformerClusterState::InformerClusterState(kube::ApiClient& client,
                                           InformerClusterStateOptions options)
    : options_(options) {
  kube::InformerOptions informerOptions;
  informerOptions.resyncPeriod = options.resyncPeriod;
  namespaces_ =
      std::make_unique<kube::Informer>(client, kube::resources::kNamespaces, informerOptions);
  serviceAccounts_ =
      std::make_unique<kube::Informer>(client, kube::resources::kServiceAccounts, informerOptions);
  agentTasks_ = std::make_unique<kube::Informer>(client, kAgentTasks, informerOptions);
  identityExceptions_ =
      std::make_unique<kube::Informer>(client, kIdentityExceptions, informerOptions);
  kube::ResourceEventHandler wake;
  auto bump = [this] {
    std::lock_guard<std::mutex> lock(mu_);
    ++changes_;
    changed_.notify_all();
  };
  wake.onAdd = [bump](const Json&) { bump(); };
  wake.onUpdate = [bump](const Json&, const Json&) { bump(); };
  for (auto* informer :
       {namespaces_.get(), serviceAccounts_.get(), agentTasks_.get(), identityExceptions_.get()}) {
    informer->addEventHandler(wake);
  }
}

InformerClusterState::~InformerClusterState() {
  stop();
}

void InformerClusterState::start() {
  for (auto* informer :
       {namespaces_.get(), serviceAccounts_.get(), agentTasks_.get(), identityExceptions_.get()}) {
    informer->start();
  }
}

void InformerClusterState::stop() {
  for (auto* informer :
       {namespaces_.get(), serviceAccounts_.get(), agentTasks_.get(), identityExceptions_.get()}) {
    informer->stop();
  }
}

bool InformerClusterState::synced() const {
  return unsynced().empty();
}

std::vector<std::string> InformerClusterState::unsynced() const {
  std::vector<std::string> out;
  if (!namespaces_->hasSynced()) out.emplace_back("namespaces");
  if (!serviceAccounts_->hasSynced()) out.emplace_back("serviceaccounts");
  if (!agentTasks_->hasSynced()) out.emplace_back("agenttasks");
  if (!identityExceptions_->hasSynced()) out.emplace_back("identityexceptions");
  return out;
}

Lookup InformerClusterState::lookup(const kube::Informer& informer, const std::string& key) const {
  if (!informer.hasSynced()) return {LookupState::kUnknown, nullptr};
  if (kube::ObjectPtr hit = informer.cache().get(key)) return {LookupState::kFound, hit};
  auto deadline = std::chrono::steady_clock::now() + options_.missWait;
  std::unique_lock<std::mutex> lock(mu_);
  if (missWaiters_ >= options_.maxMissWaiters) return {LookupState::kAbsent, nullptr};
  ++missWaiters_;
  struct Leave {
    size_t& waiters;
    ~Leave() { --waiters; }  // runs with mu_ held: every return below holds the lock
  } leave{missWaiters_};
  while (true) {
    uint64_t seen = changes_;
    lock.unlock();
    if (kube::ObjectPtr hit = informer.cache().get(key)) {
      lock.lock();
      return {LookupState::kFound, hit};
    }
    lock.lock();
    if (!changed_.wait_until(lock, deadline, [&] { return changes_ != seen; })) {
      return {LookupState::kAbsent, nullptr};
    }
  }
}

size_t InformerClusterState::missWaiters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return missWaiters_;
}

Lookup InformerClusterState::namespaceObject(std::string_view name) const {
  return lookup(*namespaces_, std::string(name));
}

Lookup InformerClusterState::serviceAccount(std::string_view ns, std::string_view name) const {
  return lookup(*serviceAccounts_, std::string(ns) + "/" + std::string(name));
}

Lookup InformerClusterState::agentTask(std::string_view ns, std::string_view name) const {
  return lookup(*agentTasks_, std::string(ns) + "/" + std::string(name));
}

std::vector<ObjectRef> InformerClusterState::identityExceptions(std::string_view ns) const {
  std::vector<ObjectRef> out;
  for (auto& o : identityExceptions_->cache().listNamespace(std::string(ns))) out.push_back(o);
  return out;
}

}  // namespace tasklease::webhook
