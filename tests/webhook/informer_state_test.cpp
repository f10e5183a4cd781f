#include "webhook/informer_state.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "tests/common/eventually.h"
#include "tests/mocks/fake_api_client.h"
#include "tests/webhook/fixtures.h"

namespace tasklease::webhook {
namespace {

using namespace testing;  // NOLINT: the fixtures
using tasklease::testing::eventually;

class InformerStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(
        fake_.create(kube::resources::kNamespaces, namespaceObject("team-a", "enforce")).ok());
    ASSERT_TRUE(
        fake_.create(kube::resources::kServiceAccounts, serviceAccount("web", "Pod/web")).ok());
    ASSERT_TRUE(fake_.create(kAgentTasks, agentTask("build", "Active")).ok());
  }
  kube::FakeApiClient fake_;
};

TEST_F(InformerStateTest, AnswersFromTheCachesOnceSynced) {
  InformerClusterStateOptions options;
  options.missWait = std::chrono::milliseconds(0);
  InformerClusterState state(fake_, options);
  EXPECT_FALSE(state.synced());
  state.start();
  ASSERT_TRUE(eventually([&] { return state.synced(); }));
  EXPECT_TRUE(state.namespaceObject("team-a").found());
  EXPECT_EQ(state.serviceAccount("team-a", "web").state, LookupState::kFound);
  EXPECT_EQ(state.serviceAccount("team-a", "nobody").state, LookupState::kAbsent);
  EXPECT_EQ(state.agentTask("team-a", "build").get()["metadata"]["uid"].is_string(), true);
  EXPECT_TRUE(state.identityExceptions("team-a").empty());
  state.stop();
}

TEST_F(InformerStateTest, AMissWaitsForAnObjectCreatedJustBefore) {
  InformerClusterStateOptions options;
  options.missWait = std::chrono::seconds(10);  // an upper bound: the object arrives sooner
  InformerClusterState state(fake_, options);
  state.start();
  ASSERT_TRUE(eventually([&] { return state.synced(); }));
  auto lookup =
      std::async(std::launch::async, [&] { return state.serviceAccount("team-a", "late"); });
  ASSERT_TRUE(
      fake_.create(kube::resources::kServiceAccounts, serviceAccount("late", "Pod/late")).ok());
  EXPECT_EQ(lookup.get().state, LookupState::kFound);
  state.stop();
}

TEST_F(InformerStateTest, OnlyOneLookupAtATimeWaitsOnAMiss) {
  // Pods naming ServiceAccounts that do not exist must not hold every review worker for
  // missWait each: while one lookup waits, another miss answers absent at once.
  InformerClusterStateOptions options;
  options.missWait = std::chrono::seconds(20);  // an upper bound: "late" arrives sooner
  InformerClusterState state(fake_, options);
  state.start();
  ASSERT_TRUE(eventually([&] { return state.synced(); }));
  auto waiting =
      std::async(std::launch::async, [&] { return state.serviceAccount("team-a", "late"); });
  ASSERT_TRUE(eventually([&] { return state.missWaiters() == 1; }));
  EXPECT_EQ(state.serviceAccount("team-a", "nobody").state, LookupState::kAbsent);
  EXPECT_EQ(waiting.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  ASSERT_TRUE(
      fake_.create(kube::resources::kServiceAccounts, serviceAccount("late", "Pod/late")).ok());
  EXPECT_EQ(waiting.get().state, LookupState::kFound);
  EXPECT_EQ(state.missWaiters(), 0u);
  state.stop();
}

}  // namespace
}  // namespace tasklease::webhook
