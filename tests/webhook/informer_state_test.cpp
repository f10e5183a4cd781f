#include "webhook/informer_state.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "tests/mocks/fake_api_client.h"
#include "tests/webhook/fixtures.h"

namespace tasklease::webhook {
namespace {

using namespace testing;  // NOLINT: the fixtures

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
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!state.synced() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(state.synced());
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
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!state.synced() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(state.synced());
  auto lookup =
      std::async(std::launch::async, [&] { return state.serviceAccount("team-a", "late"); });
  ASSERT_TRUE(
      fake_.create(kube::resources::kServiceAccounts, serviceAccount("late", "Pod/late")).ok());
  EXPECT_EQ(lookup.get().state, LookupState::kFound);
  state.stop();
}

}  // namespace
}  // namespace tasklease::webhook
