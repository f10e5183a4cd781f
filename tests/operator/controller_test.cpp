#include "operator/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "operator/objects.h"
#include "tests/mocks/fake_clock.h"
#include "tests/operator/operator_fixture.h"

namespace tasklease::op {
namespace {

using testing::OperatorHarness;

// The whole loop on the in-memory cluster: informers, work queue, workers, the deadline requeue
// and the sweep, with the real clock.
class ControllerTest : public ::testing::Test {
 protected:
  explicit ControllerTest(ControllerOptions o = options())
      : view(h.api, {"", std::chrono::milliseconds(0)}),
        sweeper(h.api, view, h.revoker, "", [] { return std::chrono::system_clock::now(); }),
        reconciler({.client = h.api,
                    .view = view,
                    .issuers = h.issuers,
                    .revoker = h.revoker,
                    .sweeper = sweeper,
                    .delegation = h.delegation,
                    .events = h.events,
                    .evidence = h.chain.get(),
                    .metrics = &h.metrics,
                    .now = [] { return std::chrono::system_clock::now(); }}),
        controller(view, reconciler, sweeper, &h.metrics, std::move(o)) {}

  static ControllerOptions options() {
    ControllerOptions o;
    o.workers = 2;
    o.sweepInterval = std::chrono::milliseconds(200);
    o.syncTimeout = std::chrono::seconds(10);
    return o;
  }

  void start() {
    runner = std::jthread([this](const std::stop_token& stop) { result = controller.run(stop); });
  }

  // Polls for at most 10 s (an upper bound, not a measurement).
  bool eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 1000; ++i) {
      if (condition()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return condition();
  }

  OperatorHarness h;
  InformerClusterView view;
  Sweeper sweeper;
  Reconciler reconciler;
  Controller controller;
  Status result;
  std::jthread runner;  // last: stopped and joined first
};

TEST_F(ControllerTest, ATaskIsIssuedOnCreationAndRevokedOnCompletion) {
  h.addPolicy("allow-refactor", Json::object());
  start();
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Active"; })) << h.task(key).dump();
  ASSERT_TRUE(
      h.fake.patch(kAgentTasks, kube::ObjectKey::parse(key), {{"spec", {{"completed", true}}}})
          .ok());
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Succeeded"; })) << h.task(key).dump();
  EXPECT_FALSE(h.exists(kube::resources::kSecrets, "team-a", h.names(key).secret()));
  // The gauges count the informer's cache, which follows the store a moment later.
  EXPECT_TRUE(eventually([&] {
    controller.updateGauges();
    return h.metrics.tasks.labels({"Succeeded"}).value() == 1 &&
           h.metrics.tasks.labels({"Active"}).value() == 0;
  }));
  runner.request_stop();
  runner.join();
  EXPECT_TRUE(result.ok()) << result.toString();
}

TEST_F(ControllerTest, AnActiveTaskExpiresAtItsDeadlineWithoutAnyEvent) {
  h.addPolicy("allow-refactor", Json::object());
  start();
  Json spec = OperatorHarness::taskSpec();
  spec["credential"] = {{"type", "X509SVID"}};
  spec["ttl"] = "2s";  // the CRD's 1m minimum is the API server's to enforce, not the fake's
  const std::string key = h.createTask("short", spec);
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Active"; })) << h.task(key).dump();
  // Nothing touches the task: only the work queue's deadline requeue can end it.
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Expired"; })) << h.task(key).dump();
  EXPECT_FALSE(h.exists(kube::resources::kServiceAccounts, "team-a", h.names(key).base));
}

TEST_F(ControllerTest, AHeldRevocationIsCountedByKindUntilTheFinalizerGoes) {
  h.addPolicy("allow-refactor", Json::object());
  start();
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Active"; })) << h.task(key).dump();
  const std::string name = h.names(key).base;
  const auto hold = [&](Json finalizers) {
    ASSERT_TRUE(h.setFinalizers(kube::resources::kSecrets, name, std::move(finalizers)).ok());
  };
  const auto held = [&](const std::string& kind) {
    controller.updateGauges();
    return h.metrics.revocationsHeld.labels({kind}).value();
  };
  hold({"example.com/hold"});
  ASSERT_TRUE(
      h.fake.patch(kAgentTasks, kube::ObjectKey::parse(key), {{"spec", {{"completed", true}}}})
          .ok());
  ASSERT_TRUE(eventually([&] { return held("Secret") == 1; })) << h.task(key).dump();
  EXPECT_EQ(h.phase(key), "Revoking");
  EXPECT_EQ(held("RoleBinding"), 0);
  EXPECT_EQ(h.metrics.tasks.labels({"Revoking"}).value(), 1);
  EXPECT_NE(h.registry.render().find("tasklease_operator_revocations_blocked{kind=\"Secret\"} 1"),
            std::string::npos)
      << h.registry.render();
  hold(Json::array());
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Succeeded"; })) << h.task(key).dump();
  EXPECT_TRUE(eventually([&] { return held("Secret") == 0; }));
}

// A task whose every pass fails still ends at its deadline, however long its backoff has grown.
class SlowRetryControllerTest : public ControllerTest {
 protected:
  SlowRetryControllerTest() : ControllerTest(slowRetries()) {}
  static ControllerOptions slowRetries() {
    ControllerOptions o = options();
    o.retryBaseDelay = std::chrono::minutes(1);
    return o;
  }
};

TEST_F(SlowRetryControllerTest, AFailingTaskIsStillRevokedAtItsDeadline) {
  h.addPolicy("allow-refactor", Json::object());
  h.fake.prependReactor("create", "jobs", [](const kube::FakeApiClient::Action&) {
    return std::optional<StatusOr<Json>>(Status(StatusCode::kPermissionDenied, "refused"));
  });
  start();
  Json spec = OperatorHarness::taskSpec();
  spec["credential"] = {{"type", "X509SVID"}};
  spec["ttl"] = "3s";
  spec["workload"] = {
      {"template", {{"spec", {{"containers", {{{"name", "a"}, {"image", "a"}}}}}}}}};
  const std::string key = h.createTask("stuck", spec);
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Active"; })) << h.task(key).dump();
  // The Job is refused on every pass; the next retry is a minute away, the deadline seconds.
  ASSERT_TRUE(eventually([&] { return h.phase(key) == "Expired"; })) << h.task(key).dump();
  EXPECT_FALSE(h.exists(kube::resources::kSecrets, "team-a", h.names(key).secret()));
}

// Controller::work's retry discipline on a fake clock: reconcile, ask RequeuePolicy when the key
// comes back, let that much time pass. The revocation of an expired task is held by a finalizer
// and goes through the revocation lanes, as in the operator: each pass that hands the task to
// the lanes is followed, once they are done, by a pass that fails. Those failures must back off
// (the handing-over pass must not reset the count, and the passed deadline must not bring the
// key back at once); before, the task was retried as fast as the lanes ran.
TEST(RequeuePolicyTest, AHeldRevocationIsRetriedWithAGrowingBackoff) {
  OperatorHarness h;
  h.addPolicy("allow-refactor", Json::object());
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  ASSERT_EQ(h.phase(key), "Active");
  ASSERT_TRUE(
      h.setFinalizers(kube::resources::kRoleBindings, h.names(key).base, {"example.com/hold"})
          .ok());
  h.advance(std::chrono::minutes(31));  // past the deadline: the task expires

  kube::FakeClock clock;
  ControllerOptions options;
  options.retryClock = &clock;
  options.now = [&] { return h.now(); };
  RequeuePolicy requeue(options);
  // Before the batcher: its lane may still call back while it stops.
  std::mutex mu;
  std::condition_variable cv;
  int handedBack = 0;
  RevocationBatcher batcher(
      h.revoker, [&] { return h.now(); }, 1);
  Reconciler reconciler({.client = h.api,
                         .view = h.view,
                         .issuers = h.issuers,
                         .revoker = h.revoker,
                         .batcher = &batcher,
                         .sweeper = h.sweeper,
                         .delegation = h.delegation,
                         .events = h.events,
                         .now = [&] { return h.now(); }});
  reconciler.onRevocationDone([&](const std::string&) {
    std::lock_guard lock(mu);
    ++handedBack;
    cv.notify_all();
  });

  const auto window = std::chrono::minutes(10);
  std::chrono::nanoseconds elapsed{0};
  int passes = 0;
  int failures = 0;
  int handedOver = 0;
  std::chrono::nanoseconds lastDelay{0};
  while (elapsed < window && passes < 1000) {
    const auto result = reconciler.reconcile(key);
    ++passes;
    const Json task = h.task(key);
    const auto after = requeue.after(key, result, &task);
    if (!after) {
      // Handed to the lanes, which queue the key again when they are done.
      ASSERT_TRUE(result.ok() && result->waiting);
      ++handedOver;
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return handedBack == handedOver; });
      continue;
    }
    ASSERT_FALSE(result.ok()) << "a held revocation never succeeds";
    ++failures;
    lastDelay = *after;
    clock.advance(*after);
    h.advance(*after);
    elapsed += *after;
  }
  reconciler.onRevocationDone(nullptr);
  EXPECT_EQ(h.phase(key), "Revoking");
  // 5 ms doubling: 17 failures fill ten minutes; at once or at 5 ms it would be thousands.
  EXPECT_LE(failures, 20) << passes << " passes in " << window.count() << " minutes";
  EXPECT_GE(failures, 10);
  EXPECT_GE(lastDelay, std::chrono::seconds(60));
  EXPECT_EQ(requeue.failures(key), failures);
}

TEST_F(ControllerTest, TheSweepRemovesLeftoversOfAGoneTaskOnItsTimer) {
  start();
  ASSERT_TRUE(eventually([&] { return controller.synced(); }));
  // Roles are not watched: only the sweep's timer can find this one.
  const TaskRef ghost{"team-a", "ghost", "uid-ghost"};
  ASSERT_TRUE(
      h.fake
          .create(kube::resources::kRoles,
                  {{"metadata", issuedObjectMeta(ghost, taskNames("ghost", "uid-ghost").base)},
                   {"rules", Json::array()}})
          .ok());
  EXPECT_TRUE(eventually([&] {
    return !h.exists(kube::resources::kRoles, "team-a", taskNames("ghost", "uid-ghost").base);
  }));
}

}  // namespace
}  // namespace tasklease::op
