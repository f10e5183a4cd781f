#include "tests/mocks/fake_api_client.h"

#include <gtest/gtest.h>

#include <thread>

namespace tasklease::kube {
namespace {

Json secret(const std::string& name, const Json& extraMeta = Json::object()) {
  Json meta = {{"namespace", "ns"}, {"name", name}};
  meta.update(extraMeta);
  return {{"apiVersion", "v1"}, {"kind", "Secret"}, {"metadata", meta}};
}

TEST(FakeApiClientTest, CreateAssignsServerFieldsAndRejectsDuplicates) {
  FakeApiClient fake;
  auto created = fake.create(resources::kSecrets, secret("s"));
  ASSERT_TRUE(created.ok());
  EXPECT_FALSE(uidOf(*created).empty());
  EXPECT_FALSE(resourceVersionOf(*created).empty());
  EXPECT_EQ((*created)["metadata"]["generation"], 1);
  EXPECT_TRUE(fake.create(resources::kSecrets, secret("s")).status().isAlreadyExists());
  EXPECT_TRUE(fake.get(resources::kSecrets, {"ns", "missing"}).status().isNotFound());
}

TEST(FakeApiClientTest, StaleUpdateIsAConflict) {
  FakeApiClient fake;
  Json v1 = *fake.create(resources::kSecrets, secret("s"));
  Json v2 = v1;
  v2["data"] = {{"k", "dg=="}};
  ASSERT_TRUE(fake.update(resources::kSecrets, v2).ok());
  v1["data"] = {{"k", "eA=="}};
  EXPECT_TRUE(fake.update(resources::kSecrets, v1).status().isConflict());
}

TEST(FakeApiClientTest, UpdateKeepsStatusAndUpdateStatusKeepsSpec) {
  FakeApiClient fake;
  const ResourceRef tasks{"tasklease.io", "v1alpha1", "agenttasks", "AgentTask", true};
  Json obj = {{"metadata", {{"namespace", "ns"}, {"name", "t"}}}, {"spec", {{"agent", "a"}}}};
  Json created = *fake.create(tasks, obj);
  created["status"] = {{"phase", "Active"}};
  Json withStatus = *fake.updateStatus(tasks, created);
  EXPECT_EQ(withStatus["status"]["phase"], "Active");
  EXPECT_EQ(withStatus["metadata"]["generation"], 1);
  withStatus["spec"]["agent"] = "b";
  withStatus["status"]["phase"] = "Ignored";
  Json updated = *fake.update(tasks, withStatus);
  EXPECT_EQ(updated["status"]["phase"], "Active");
  EXPECT_EQ(updated["metadata"]["generation"], 2);
}

TEST(FakeApiClientTest, FinalizersDelayDeletionUntilRemoved) {
  FakeApiClient fake;
  ASSERT_TRUE(
      fake.create(resources::kSecrets, secret("s", {{"finalizers", {"tasklease.io/revoke"}}}))
          .ok());
  ASSERT_TRUE(fake.remove(resources::kSecrets, {"ns", "s"}).ok());
  Json marked = *fake.get(resources::kSecrets, {"ns", "s"});
  EXPECT_TRUE(marked["metadata"].contains("deletionTimestamp"));
  ASSERT_TRUE(
      fake.patch(resources::kSecrets, {"ns", "s"}, Json{{"metadata", {{"finalizers", nullptr}}}})
          .ok());
  EXPECT_TRUE(fake.get(resources::kSecrets, {"ns", "s"}).status().isNotFound());
}

TEST(FakeApiClientTest, DeletePreconditionsAreChecked) {
  FakeApiClient fake;
  ASSERT_TRUE(fake.create(resources::kSecrets, secret("s")).ok());
  DeleteOptions wrongUid;
  wrongUid.preconditionUid = "other";
  EXPECT_TRUE(fake.remove(resources::kSecrets, {"ns", "s"}, wrongUid).isConflict());
  EXPECT_TRUE(fake.get(resources::kSecrets, {"ns", "s"}).ok());
}

TEST(FakeApiClientTest, DeletingAnOwnerCollectsItsDependents) {
  FakeApiClient fake;
  Json owner = *fake.create(resources::kServiceAccounts,
                            {{"metadata", {{"namespace", "ns"}, {"name", "sa"}}}});
  ASSERT_TRUE(fake.create(resources::kSecrets, secret("dep", {{"ownerReferences",
                                                               {{{"apiVersion", "v1"},
                                                                 {"kind", "ServiceAccount"},
                                                                 {"name", "sa"},
                                                                 {"uid", uidOf(owner)}}}}}))
                  .ok());
  ASSERT_TRUE(fake.remove(resources::kServiceAccounts, {"ns", "sa"}).ok());
  EXPECT_TRUE(fake.get(resources::kSecrets, {"ns", "dep"}).status().isNotFound());
}

TEST(FakeApiClientTest, JsonPatchAndMergePatch) {
  FakeApiClient fake;
  ASSERT_TRUE(fake.create(resources::kSecrets, secret("s")).ok());
  auto merged =
      fake.patch(resources::kSecrets, {"ns", "s"}, Json{{"metadata", {{"labels", {{"a", "1"}}}}}});
  ASSERT_TRUE(merged.ok());
  EXPECT_EQ((*merged)["metadata"]["labels"]["a"], "1");
  auto patched =
      fake.patch(resources::kSecrets, {"ns", "s"},
                 Json::parse(R"([{"op":"add","path":"/metadata/labels/b","value":"2"}])"),
                 PatchOptions{PatchType::kJson, "", false, ""});
  ASSERT_TRUE(patched.ok());
  EXPECT_EQ((*patched)["metadata"]["labels"]["b"], "2");
  auto bad = fake.patch(resources::kSecrets, {"ns", "s"},
                        Json::parse(R"([{"op":"remove","path":"/nope/x"}])"),
                        PatchOptions{PatchType::kJson, "", false, ""});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(FakeApiClientTest, ListPaginatesAndFiltersBySelector) {
  FakeApiClient fake;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(fake.create(resources::kSecrets,
                            secret("s" + std::to_string(i),
                                   {{"labels", {{"even", i % 2 == 0 ? "yes" : "no"}}}}))
                    .ok());
  }
  auto all = listAll(fake, resources::kSecrets, "ns", ListOptions{"", "", 2, "", ""});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 5u);
  auto even = listAll(fake, resources::kSecrets, "ns", ListOptions{"even=yes", "", 1, "", ""});
  ASSERT_TRUE(even.ok());
  EXPECT_EQ(even->items.size(), 3u);
}

TEST(FakeApiClientTest, WatchResumesFromAResourceVersionAndExpiresAfterCompaction) {
  FakeApiClient fake;
  const std::string rv0 = std::to_string(fake.resourceVersion());
  ASSERT_TRUE(fake.create(resources::kSecrets, secret("a")).ok());
  ASSERT_TRUE(fake.create(resources::kSecrets, secret("b")).ok());
  std::vector<std::string> names;
  Status s = fake.watch(resources::kSecrets, "ns", WatchOptions{"", "", rv0, true, 0},
                        [&](WatchEvent&& e) {
                          names.push_back(objectKeyOf(e.object).name);
                          return names.size() < 2;
                        },
                        {});
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(names, (std::vector<std::string>{"a", "b"}));
  fake.compact();
  Status gone = fake.watch(resources::kSecrets, "ns", WatchOptions{"", "", rv0, true, 0},
                           [](WatchEvent&&) { return true; }, {});
  EXPECT_TRUE(gone.isGone());
}

TEST(FakeApiClientTest, ClosedWatchReturnsOk) {
  FakeApiClient fake;
  std::thread closer([&] {
    while (fake.openWatches() == 0) std::this_thread::yield();
    fake.closeWatches();
  });
  Status s =
      fake.watch(resources::kSecrets, "", WatchOptions{}, [](WatchEvent&&) { return true; }, {});
  closer.join();
  EXPECT_TRUE(s.ok());
}

TEST(FakeApiClientTest, ReactorsAnswerFirstAndActionsAreRecorded) {
  FakeApiClient fake;
  fake.prependReactor("create", "subjectaccessreviews",
                      [](const FakeApiClient::Action& a) -> std::optional<StatusOr<Json>> {
                        Json answer = a.body;
                        answer["status"] = {{"allowed", true}};
                        return StatusOr<Json>(answer);
                      });
  auto review = fake.create(resources::kSubjectAccessReviews,
                            {{"spec", {{"user", "alice"}}}, {"metadata", Json::object()}});
  ASSERT_TRUE(review.ok());
  EXPECT_EQ((*review)["status"]["allowed"], true);
  fake.failNext("get", "secrets", Status(StatusCode::kInternal, "boom"));
  EXPECT_EQ(fake.get(resources::kSecrets, {"ns", "x"}).status().code(), StatusCode::kInternal);
  EXPECT_TRUE(fake.get(resources::kSecrets, {"ns", "x"}).status().isNotFound());
  const auto actions = fake.actions();
  ASSERT_EQ(actions.size(), 3u);
  EXPECT_EQ(actions[0].verb, "create");
  EXPECT_EQ(actions[1].resource, "secrets");
}

TEST(FakeApiClientTest, TokenRequestNeedsTheServiceAccount) {
  FakeApiClient fake;
  const Json request = {{"spec", {{"expirationSeconds", 600}}}};
  EXPECT_TRUE(fake.createSubresource(resources::kServiceAccounts, {"ns", "sa"}, "token", request)
                  .status()
                  .isNotFound());
  ASSERT_TRUE(fake.create(resources::kServiceAccounts,
                          {{"metadata", {{"namespace", "ns"}, {"name", "sa"}}}})
                  .ok());
  auto token = fake.createSubresource(resources::kServiceAccounts, {"ns", "sa"}, "token", request);
  ASSERT_TRUE(token.ok());
  EXPECT_FALSE((*token)["status"]["token"].get<std::string>().empty());
}

}  // namespace
}  // namespace tasklease::kube
