#include "kube/event_recorder.h"

#include <gtest/gtest.h>

#include <set>

#include "tests/mocks/fake_api_client.h"

namespace tasklease::kube {
namespace {

const Json kTask = {{"apiVersion", "tasklease.io/v1alpha1"},
                    {"kind", "AgentTask"},
                    {"metadata", {{"namespace", "team-a"}, {"name", "refactor"}, {"uid", "u-1"}}}};

class EventRecorderTest : public ::testing::Test {
 protected:
  EventRecorderTest() : recorder_(fake_, "tasklease-operator", "pod-1", [this] { return now_; }) {}
  FakeApiClient fake_;
  std::chrono::system_clock::time_point now_{std::chrono::seconds(1700000000)};
  EventRecorderImpl recorder_;
};

TEST_F(EventRecorderTest, WritesACoreV1EventAboutTheObject) {
  ASSERT_TRUE(recorder_.record(kTask, EventType::kNormal, "Issued", "token issued").ok());
  const auto events = fake_.objects(resources::kEvents);
  ASSERT_EQ(events.size(), 1u);
  const Json& e = events[0];
  EXPECT_EQ(e["metadata"]["namespace"], "team-a");
  EXPECT_EQ(e["involvedObject"]["kind"], "AgentTask");
  EXPECT_EQ(e["involvedObject"]["name"], "refactor");
  EXPECT_EQ(e["involvedObject"]["uid"], "u-1");
  EXPECT_EQ(e["reason"], "Issued");
  EXPECT_EQ(e["message"], "token issued");
  EXPECT_EQ(e["type"], "Normal");
  EXPECT_EQ(e["source"]["component"], "tasklease-operator");
  EXPECT_EQ(e["count"], 1);
  EXPECT_EQ(e["firstTimestamp"], "2023-11-14T22:13:20Z");
}

TEST_F(EventRecorderTest, EventsAtTheSameClockReadingGetDistinctNames) {
  // The clock does not move between these: names must still differ, or the second create
  // would fail with AlreadyExists.
  const Json other = {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata", {{"namespace", "team-a"}, {"name", "refactor"}, {"uid", "u-2"}}}};
  ASSERT_TRUE(recorder_.record(kTask, EventType::kNormal, "Issued", "one").ok());
  ASSERT_TRUE(recorder_.record(kTask, EventType::kNormal, "Revoked", "two").ok());
  ASSERT_TRUE(recorder_.record(other, EventType::kNormal, "Issued", "three").ok());
  const auto events = fake_.objects(resources::kEvents);
  ASSERT_EQ(events.size(), 3u);
  std::set<std::string> names;
  for (const Json& e : events) names.insert(e["metadata"]["name"].get<std::string>());
  EXPECT_EQ(names.size(), 3u);
}

TEST_F(EventRecorderTest, RepeatsAreAggregatedIntoACount) {
  ASSERT_TRUE(recorder_.record(kTask, EventType::kWarning, "Denied", "no policy").ok());
  now_ += std::chrono::seconds(30);
  ASSERT_TRUE(recorder_.record(kTask, EventType::kWarning, "Denied", "no policy").ok());
  ASSERT_TRUE(recorder_.record(kTask, EventType::kWarning, "Denied", "no policy").ok());
  const auto events = fake_.objects(resources::kEvents);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 3);
  EXPECT_EQ(events[0]["firstTimestamp"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(events[0]["lastTimestamp"], "2023-11-14T22:13:50Z");
}

TEST_F(EventRecorderTest, DifferentMessagesAreSeparateEvents) {
  ASSERT_TRUE(recorder_.record(kTask, EventType::kNormal, "Issued", "one").ok());
  now_ += std::chrono::seconds(1);
  ASSERT_TRUE(recorder_.record(kTask, EventType::kNormal, "Issued", "two").ok());
  EXPECT_EQ(fake_.objects(resources::kEvents).size(), 2u);
}

TEST_F(EventRecorderTest, RecreatesAnExpiredEventKeepingTheCount) {
  ASSERT_TRUE(recorder_.record(kTask, EventType::kNormal, "Synced", "ok").ok());
  const std::string name = fake_.objects(resources::kEvents)[0]["metadata"]["name"];
  ASSERT_TRUE(fake_.remove(resources::kEvents, {"team-a", name}).ok());
  now_ += std::chrono::seconds(5);
  ASSERT_TRUE(recorder_.record(kTask, EventType::kNormal, "Synced", "ok").ok());
  const auto events = fake_.objects(resources::kEvents);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["count"], 2);
}

TEST_F(EventRecorderTest, ClusterScopedObjectsGetEventsInDefault) {
  const Json policy = {{"apiVersion", "tasklease.io/v1alpha1"},
                       {"kind", "AgentPolicy"},
                       {"metadata", {{"name", "p"}}}};
  ASSERT_TRUE(recorder_.record(policy, EventType::kNormal, "Loaded", "ok").ok());
  EXPECT_EQ(fake_.objects(resources::kEvents)[0]["metadata"]["namespace"], "default");
}

TEST_F(EventRecorderTest, WriteFailureIsReturned) {
  fake_.failNext("create", "events", Status(StatusCode::kPermissionDenied, "forbidden"));
  Status s = recorder_.record(kTask, EventType::kNormal, "Issued", "x");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
}

}  // namespace
}  // namespace tasklease::kube
