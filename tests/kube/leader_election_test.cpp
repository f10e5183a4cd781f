#include "kube/leader_election.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/mocks/fake_api_client.h"

namespace tasklease::kube {
namespace {

using std::chrono::milliseconds;

LeaderElectionConfig baseConfig(const std::string& identity) {
  LeaderElectionConfig cfg;
  cfg.lease = {"kube-system", "tasklease-test"};
  cfg.identity = identity;
  cfg.leaseDuration = milliseconds(1000);
  cfg.renewDeadline = milliseconds(600);
  cfg.retryPeriod = milliseconds(100);
  cfg.onStartedLeading = [](const std::stop_token&) {};
  cfg.onStoppedLeading = [] {};
  return cfg;
}

template <typename Pred>
bool eventually(Pred pred, milliseconds limit = milliseconds(10000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return pred();
}

TEST(LeaderElectorConfigTest, RejectsUnsafeTimings) {
  FakeApiClient fake;
  auto cfg = baseConfig("a");
  cfg.renewDeadline = cfg.leaseDuration;
  EXPECT_FALSE(LeaderElector::create(fake, cfg).ok());
  cfg = baseConfig("a");
  cfg.retryPeriod = milliseconds(550);  // 1.2 * 550 > 600
  EXPECT_FALSE(LeaderElector::create(fake, cfg).ok());
  cfg = baseConfig("");
  EXPECT_FALSE(LeaderElector::create(fake, cfg).ok());
  cfg = baseConfig("a");
  cfg.onStartedLeading = nullptr;
  EXPECT_FALSE(LeaderElector::create(fake, cfg).ok());
  EXPECT_TRUE(LeaderElector::create(fake, baseConfig("a")).ok());
}

TEST(LeaderElectorTest, AcquiresAFreeLeaseAndReleasesItOnStop) {
  FakeApiClient fake;
  std::atomic<bool> started{false};
  std::atomic<bool> stopped{false};
  auto cfg = baseConfig("alpha");
  cfg.onStartedLeading = [&](const std::stop_token&) { started = true; };
  cfg.onStoppedLeading = [&] { stopped = true; };
  auto elector = LeaderElector::create(fake, cfg);
  ASSERT_TRUE(elector.ok());
  std::jthread runner([&](const std::stop_token& st) { (*elector)->run(st); });
  ASSERT_TRUE(eventually([&] { return (*elector)->isLeader(); }));
  EXPECT_TRUE(eventually([&] { return started.load(); }));
  auto lease = fake.object(resources::kLeases, cfg.lease);
  ASSERT_TRUE(lease.has_value());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "alpha");
  EXPECT_EQ((*lease)["spec"]["leaseDurationSeconds"], 1);
  runner.request_stop();
  runner.join();
  EXPECT_TRUE(stopped.load());
  EXPECT_FALSE((*elector)->isLeader());
  EXPECT_EQ((*fake.object(resources::kLeases, cfg.lease))["spec"]["holderIdentity"], "");
}

TEST(LeaderElectorTest, RenewsWhileLeading) {
  FakeApiClient fake;
  auto cfg = baseConfig("alpha");
  auto elector = LeaderElector::create(fake, cfg);
  ASSERT_TRUE(elector.ok());
  std::jthread runner([&](const std::stop_token& st) { (*elector)->run(st); });
  ASSERT_TRUE(eventually([&] { return (*elector)->isLeader(); }));
  const std::string firstRenew = (*fake.object(resources::kLeases, cfg.lease))["spec"]["renewTime"];
  ASSERT_TRUE(eventually([&] {
    return (*fake.object(resources::kLeases, cfg.lease))["spec"]["renewTime"] != firstRenew;
  }));
  EXPECT_TRUE((*elector)->isLeader());
}

TEST(LeaderElectorTest, DoesNotTakeALeaseHeldByAnother) {
  FakeApiClient fake;
  auto first = LeaderElector::create(fake, baseConfig("alpha"));
  auto second = LeaderElector::create(fake, baseConfig("beta"));
  ASSERT_TRUE(first.ok() && second.ok());
  std::jthread a([&](const std::stop_token& st) { (*first)->run(st); });
  ASSERT_TRUE(eventually([&] { return (*first)->isLeader(); }));
  std::jthread b([&](const std::stop_token& st) { (*second)->run(st); });
  ASSERT_TRUE(eventually([&] { return (*second)->leader() == "alpha"; }));
  // Over three lease durations of renewals, beta never leads.
  const auto until = std::chrono::steady_clock::now() + milliseconds(3000);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_FALSE((*second)->isLeader());
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_TRUE((*first)->isLeader());
}

TEST(LeaderElectorTest, StepsDownWhenRenewalsFailPastTheDeadline) {
  FakeApiClient fake;
  std::atomic<bool> lostSignalled{false};
  std::atomic<bool> stopped{false};
  auto cfg = baseConfig("alpha");
  cfg.onStartedLeading = [&](const std::stop_token& lost) {
    while (!lost.stop_requested()) std::this_thread::sleep_for(milliseconds(5));
    lostSignalled = true;
  };
  cfg.onStoppedLeading = [&] { stopped = true; };
  auto elector = LeaderElector::create(fake, cfg);
  ASSERT_TRUE(elector.ok());
  std::thread runner([&] { (*elector)->run(std::stop_token{}); });
  ASSERT_TRUE(eventually([&] { return (*elector)->isLeader(); }));
  Status down(StatusCode::kUnavailable, "partitioned");
  down.withHttpCode(503);
  fake.failNext("get", "leases", down, 1000000);
  runner.join();  // run() returns by itself once the deadline passes
  EXPECT_FALSE((*elector)->isLeader());
  EXPECT_TRUE(lostSignalled.load());
  EXPECT_TRUE(stopped.load());
}

TEST(LeaderElectorTest, TakesOverAfterTheHolderStopsWithoutReleasing) {
  FakeApiClient fake;
  auto cfgA = baseConfig("alpha");
  cfgA.releaseOnCancel = false;  // as if killed
  auto first = LeaderElector::create(fake, cfgA);
  auto second = LeaderElector::create(fake, baseConfig("beta"));
  ASSERT_TRUE(first.ok() && second.ok());
  std::jthread a([&](const std::stop_token& st) { (*first)->run(st); });
  ASSERT_TRUE(eventually([&] { return (*first)->isLeader(); }));
  std::jthread b([&](const std::stop_token& st) { (*second)->run(st); });
  ASSERT_TRUE(eventually([&] { return (*second)->leader() == "alpha"; }));
  a.request_stop();
  a.join();
  EXPECT_EQ((*fake.object(resources::kLeases, cfgA.lease))["spec"]["holderIdentity"], "alpha");
  ASSERT_TRUE(eventually([&] { return (*second)->isLeader(); }));
  const Json lease = *fake.object(resources::kLeases, cfgA.lease);
  EXPECT_EQ(lease["spec"]["holderIdentity"], "beta");
  EXPECT_EQ(lease["spec"]["leaseTransitions"], 1);
}

TEST(LeaderElectorTest, ReportsNewLeaders) {
  FakeApiClient fake;
  std::mutex mu;
  std::vector<std::string> leaders;
  auto cfg = baseConfig("alpha");
  cfg.onNewLeader = [&](const std::string& who) {
    std::lock_guard lock(mu);
    leaders.push_back(who);
  };
  auto elector = LeaderElector::create(fake, cfg);
  ASSERT_TRUE(elector.ok());
  {
    std::jthread runner([&](const std::stop_token& st) { (*elector)->run(st); });
    ASSERT_TRUE(eventually([&] { return (*elector)->isLeader(); }));
  }
  std::lock_guard lock(mu);
  EXPECT_EQ(leaders, (std::vector<std::string>{"alpha", ""}));
}

}  // namespace
}  // namespace tasklease::kube
