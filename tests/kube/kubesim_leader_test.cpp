// Two leader electors on one Lease in kubesim: exactly one leads at any time, and the other
// takes over within the lease duration after the leader stops without releasing.

#include <atomic>
#include <thread>

#include "kube/leader_election.h"
#include "tests/kube/kubesim_fixture.h"

namespace tasklease::kube::testing {
namespace {

using std::chrono::milliseconds;

using LeaderKubesimTest = KubesimTest;

LeaderElectionConfig electorConfig(const std::string& identity) {
  LeaderElectionConfig cfg;
  cfg.lease = {"default", "tasklease-operator"};
  cfg.identity = identity;
  cfg.leaseDuration = milliseconds(2000);
  cfg.renewDeadline = milliseconds(1500);
  cfg.retryPeriod = milliseconds(250);
  cfg.releaseOnCancel = false;  // stopping then is like being killed
  cfg.onStartedLeading = [](const std::stop_token&) {};
  cfg.onStoppedLeading = [] {};
  return cfg;
}

TEST_F(LeaderKubesimTest, ExactlyOneLeadsAndTheOtherTakesOverAfterAKill) {
  auto clientB = sim_.adminClient();
  auto a = LeaderElector::create(*client_, electorConfig("alpha"));
  auto b = LeaderElector::create(*clientB, electorConfig("beta"));
  ASSERT_TRUE(a.ok() && b.ok());

  std::atomic<int> bothLeading{0};
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      if ((*a)->isLeader() && (*b)->isLeader()) ++bothLeading;
      std::this_thread::sleep_for(milliseconds(2));
    }
  });

  std::jthread runA([&](const std::stop_token& st) { (*a)->run(st); });
  std::jthread runB([&](const std::stop_token& st) { (*b)->run(st); });
  const auto leaderOf = [&]() -> LeaderElector* {
    if ((*a)->isLeader()) return a->get();
    if ((*b)->isLeader()) return b->get();
    return nullptr;
  };
  const auto waitFor = [&](auto pred, milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!pred() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    return pred();
  };
  ASSERT_TRUE(waitFor([&] { return leaderOf() != nullptr; }, milliseconds(10000)));
  // Both keep running through several renewals; one of them leads all along.
  std::this_thread::sleep_for(milliseconds(3000));
  LeaderElector* first = leaderOf();
  ASSERT_NE(first, nullptr);
  LeaderElector* second = first == a->get() ? b->get() : a->get();
  EXPECT_FALSE(second->isLeader());

  // Stop the leader without releasing the Lease.
  const auto killedAt = std::chrono::steady_clock::now();
  if (first == a->get()) {
    runA.request_stop();
    runA.join();
  } else {
    runB.request_stop();
    runB.join();
  }
  // The upper bound: the lease duration plus one retry period (jittered) and slack for the
  // server round trips.
  ASSERT_TRUE(waitFor([&] { return second->isLeader(); }, milliseconds(2000 + 300 + 1500)));
  const auto takeover =
      std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - killedAt);
  sampling = false;
  sampler.join();
  EXPECT_EQ(bothLeading.load(), 0);
  auto lease = client_->get(resources::kLeases, {"default", "tasklease-operator"});
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], second == a->get() ? "alpha" : "beta");
  EXPECT_GE((*lease)["spec"].value("leaseTransitions", 0), 1);
  std::printf("leader election: takeover %lld ms after the leader stopped (lease 2000 ms)\n",
              static_cast<long long>(takeover.count()));
}

}  // namespace
}  // namespace tasklease::kube::testing
