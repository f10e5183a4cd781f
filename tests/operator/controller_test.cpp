#include "operator/controller.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "operator/objects.h"
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
