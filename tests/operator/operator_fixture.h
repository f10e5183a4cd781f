#pragma once
// Test support for the operator's unit tests: an in-memory cluster (FakeApiClient) behind a
// decorator that answers TokenRequests with JWT-shaped tokens bound to their Secret (as the API
// server does) and can simulate a crash at the N-th write; a ClusterView that reads the fake's
// store; and an OperatorHarness that wires a Reconciler the way app.cpp does.
//
//   OperatorHarness h;
//   h.addPolicy("allow-all", {});
//   auto key = h.createTask("t1", h.taskSpec());
//   h.reconcileUntilStable(key);
//   EXPECT_EQ(h.phase(key), "Active");

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/evidence.h"
#include "common/json.h"
#include "common/metrics.h"
#include "kube/event_recorder.h"
#include "operator/ca_store.h"
#include "operator/cluster_view.h"
#include "operator/crl.h"
#include "operator/delegation.h"
#include "operator/issuer.h"
#include "operator/metrics.h"
#include "operator/reconciler.h"
#include "operator/revoker.h"
#include "operator/sweeper.h"
#include "tests/mocks/fake_api_client.h"
#include "tests/mocks/fake_stamp_verifier.h"

namespace tasklease::op::testing {

// Forwards to a FakeApiClient. TokenRequests become JWTs ({jti, sub, iat, exp,
// kubernetes.io: {namespace, serviceaccount{name, uid}, secret{name, uid}}}) checked against
// the bound Secret. With crashAt(n), the n-th write (create, update, patch, delete, token) and
// every call after it fail as a dead process's would; `performed` says whether that n-th write
// reaches the store first (a response lost) or not (a crash before sending).
class TestApi final : public kube::ApiClient {
 public:
  explicit TestApi(kube::FakeApiClient& fake) : fake_(fake) {}

  using ApiClient::create;
  using ApiClient::createSubresource;
  using ApiClient::get;
  using ApiClient::list;
  using ApiClient::patch;
  using ApiClient::remove;
  using ApiClient::removeCollection;
  using ApiClient::update;
  using ApiClient::updateStatus;

  StatusOr<Json> get(const kube::ResourceRef& r, const kube::ObjectKey& k,
                     const kube::CallOptions& c) override;
  StatusOr<Json> list(const kube::ResourceRef& r, const std::string& ns, const kube::ListOptions& o,
                      const kube::CallOptions& c) override;
  StatusOr<Json> create(const kube::ResourceRef& r, const Json& obj, const kube::WriteOptions& o,
                        const kube::CallOptions& c) override;
  StatusOr<Json> update(const kube::ResourceRef& r, const Json& obj, const kube::WriteOptions& o,
                        const kube::CallOptions& c) override;
  StatusOr<Json> updateStatus(const kube::ResourceRef& r, const Json& obj,
                              const kube::WriteOptions& o, const kube::CallOptions& c) override;
  StatusOr<Json> patch(const kube::ResourceRef& r, const kube::ObjectKey& k, const Json& p,
                       const kube::PatchOptions& o, const kube::CallOptions& c) override;
  Status remove(const kube::ResourceRef& r, const kube::ObjectKey& k, const kube::DeleteOptions& o,
                const kube::CallOptions& c) override;
  StatusOr<Json> removeCollection(const kube::ResourceRef& r, const std::string& ns,
                                  const kube::ListOptions& selection, const kube::DeleteOptions& o,
                                  const kube::CallOptions& c) override;
  StatusOr<Json> createSubresource(const kube::ResourceRef& r, const kube::ObjectKey& k,
                                   const std::string& sub, const Json& body,
                                   const kube::CallOptions& c) override;
  Status watch(const kube::ResourceRef& r, const std::string& ns, const kube::WatchOptions& o,
               const kube::WatchHandler& h, const kube::CallOptions& c) override;

  // The API server's clock, for token iat/exp (the operator's own clock in the tests).
  void setClock(std::function<TimePoint()> clock) { clock_ = std::move(clock); }

  // Fails the n-th write from now (1-based) and everything after it.
  void crashAt(int n, bool performed);
  void recover();
  bool crashed() const { return crashed_.load(); }
  int writes() const { return writes_.load(); }

  // Every token minted, in order.
  std::vector<std::string> tokens() const;
  std::vector<Json> tokenRequests() const;

 private:
  // nullopt: go ahead; otherwise the failure. `perform` runs the write when it should happen.
  template <typename T>
  StatusOr<T> write(const std::function<StatusOr<T>()>& perform);
  std::optional<Status> failIfDead();

  kube::FakeApiClient& fake_;
  std::function<TimePoint()> clock_ = [] { return std::chrono::system_clock::now(); };
  std::atomic<int> writes_{0};
  std::atomic<int> crashAt_{0};
  std::atomic<bool> performCrashing_{false};
  std::atomic<bool> crashed_{false};
  mutable std::mutex mu_;
  std::vector<std::string> tokens_;  // guarded by mu_
  std::vector<Json> tokenRequests_;  // guarded by mu_
  int jti_ = 0;                      // guarded by mu_
};

// Reads the fake's store directly: a cache that is never behind.
class FakeClusterView final : public ClusterView {
 public:
  explicit FakeClusterView(kube::FakeApiClient& fake) : fake_(fake) {}
  kube::ObjectPtr task(const kube::ObjectKey& key) const override;
  std::vector<kube::ObjectPtr> tasks() const override;
  std::vector<Json> policies() const override;
  kube::ObjectPtr job(const kube::ObjectKey& key) const override;

  // A cache that has not caught up: policies() answers these instead of the fake's.
  std::optional<std::vector<Json>> lagging;

 private:
  kube::FakeApiClient& fake_;
};

class MemoryEvidenceSink final : public EvidenceSink {
 public:
  explicit MemoryEvidenceSink(std::shared_ptr<std::vector<Json>> records)
      : records_(std::move(records)) {}
  Status write(std::string_view line) override;

 private:
  std::shared_ptr<std::vector<Json>> records_;
};

// A test's whole operator: the fake cluster, a controllable clock, every component.
class OperatorHarness {
 public:
  OperatorHarness();

  // A valid AgentTask spec (SAT, ttl 30m, get/update on one ConfigMap).
  static Json taskSpec();
  // Creates the task in namespace "team-a"; returns its key.
  std::string createTask(const std::string& name, const Json& spec,
                         const Json& annotations = Json::object());
  // A policy allowing agents refactor-*, every namespace, maxTTL 1h, both credential types,
  // configmaps get/update/list, workloads within Pod Security baseline; `spec` is merge-patched
  // over it.
  void addPolicy(const std::string& name, const Json& specPatch);

  // Sets the finalizers of the object `name` of that kind in namespace "team-a" (a foreign
  // controller's, or an attacker's, on a task's object; [] removes them).
  Status setFinalizers(const kube::ResourceRef& kind, const std::string& name, Json finalizers);

  // Reconciles until a pass fails or changes nothing in the store (at most 20 passes).
  StatusOr<ReconcileResult> reconcileUntilStable(const std::string& key);
  // A fresh Reconciler over the same cluster: what a restarted process has.
  void restart();

  Json task(const std::string& key) const;
  std::string phase(const std::string& key) const;
  bool exists(const kube::ResourceRef& resource, const std::string& ns,
              const std::string& name) const;
  // Write actions (create/update/patch/delete) in order, as "verb resource[/sub] name".
  std::vector<std::string> writeLog() const;
  std::vector<std::string> eventReasons() const;
  std::vector<std::string> evidenceKinds() const;
  // The names of the objects issued for the task.
  TaskNames names(const std::string& key) const;

  void advance(std::chrono::nanoseconds by) {
    now_ += std::chrono::duration_cast<TimePoint::duration>(by);
  }
  TimePoint now() const { return now_; }

  kube::FakeApiClient fake;
  TestApi api{fake};
  FakeClusterView view{fake};
  CaStore cas;
  CrlPublisher crl;
  ServiceAccountTokenIssuer tokens;
  X509SvidIssuer svids;
  IssuerSet issuers;
  Revoker revoker;
  Sweeper sweeper;
  // Trusts the keys the test adds: none at first, so stamps do not verify.
  kube::FakeStampVerifier stamps;
  VerifyingDelegationSource delegation{stamps};
  kube::EventRecorderImpl events;
  std::shared_ptr<std::vector<Json>> evidence = std::make_shared<std::vector<Json>>();
  EvidenceChainPtr chain;
  MetricsRegistry registry;
  OperatorMetrics metrics{registry};
  std::unique_ptr<Reconciler> reconciler;

 private:
  TimePoint now_;
};

}  // namespace tasklease::op::testing
