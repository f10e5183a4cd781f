// Calls against a real API surface (kubesim): CRUD, pagination, errors, subresources, reviews.

#include <atomic>
#include <set>
#include <thread>

#include "kube/reviews.h"
#include "tests/kube/kubesim_fixture.h"

namespace tasklease::kube::testing {
namespace {

Json configMap(const std::string& name, const std::string& value, Json labels = Json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"namespace", "default"}, {"name", name}, {"labels", labels}}},
          {"data", {{"value", value}}}};
}

using CrudTest = KubesimTest;

TEST_F(CrudTest, CreateGetUpdatePatchDelete) {
  auto created = client_->create(resources::kConfigMaps, configMap("crud", "1"));
  ASSERT_TRUE(created.ok()) << created.status().toString();
  EXPECT_FALSE(uidOf(*created).empty());

  auto got = client_->get(resources::kConfigMaps, {"default", "crud"});
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ((*got)["data"]["value"], "1");

  Json next = *got;
  next["data"]["value"] = "2";
  auto updated = client_->update(resources::kConfigMaps, next);
  ASSERT_TRUE(updated.ok()) << updated.status().toString();
  EXPECT_NE(resourceVersionOf(*updated), resourceVersionOf(*got));

  // The copy read before the update is stale now.
  Json stale = *got;
  stale["data"]["value"] = "stale";
  auto conflict = client_->update(resources::kConfigMaps, stale);
  ASSERT_FALSE(conflict.ok());
  EXPECT_TRUE(conflict.status().isConflict()) << conflict.status().toString();
  EXPECT_EQ(conflict.status().httpCode(), 409);

  auto merged = client_->patch(resources::kConfigMaps, {"default", "crud"},
                               Json{{"metadata", {{"labels", {{"patched", "yes"}}}}}});
  ASSERT_TRUE(merged.ok()) << merged.status().toString();
  EXPECT_EQ((*merged)["metadata"]["labels"]["patched"], "yes");
  auto jsonPatched =
      client_->patch(resources::kConfigMaps, {"default", "crud"},
                     Json::parse(R"([{"op":"replace","path":"/data/value","value":"3"}])"),
                     PatchOptions{PatchType::kJson, "", false, ""});
  ASSERT_TRUE(jsonPatched.ok()) << jsonPatched.status().toString();
  EXPECT_EQ((*jsonPatched)["data"]["value"], "3");

  DeleteOptions wrongUid;
  wrongUid.preconditionUid = "not-the-uid";
  const Status refused = client_->remove(resources::kConfigMaps, {"default", "crud"}, wrongUid);
  EXPECT_TRUE(refused.isConflict()) << refused.toString();

  DeleteOptions rightUid;
  rightUid.preconditionUid = uidOf(*created);
  rightUid.propagation = PropagationPolicy::kBackground;
  const Status removed = client_->remove(resources::kConfigMaps, {"default", "crud"}, rightUid);
  EXPECT_TRUE(removed.ok()) << removed.toString();
  auto gone = client_->get(resources::kConfigMaps, {"default", "crud"});
  EXPECT_TRUE(gone.status().isNotFound());
  EXPECT_EQ(gone.status().reason(), "NotFound");
  EXPECT_EQ(gone.status().httpCode(), 404);
}

TEST_F(CrudTest, AlreadyExistsAndInvalidAreTypedErrors) {
  ASSERT_TRUE(client_->create(resources::kConfigMaps, configMap("dup", "1")).ok());
  auto again = client_->create(resources::kConfigMaps, configMap("dup", "1"));
  EXPECT_TRUE(again.status().isAlreadyExists()) << again.status().toString();
  Json invalid = configMap("Not_A_Valid_Name", "1");
  auto bad = client_->create(resources::kConfigMaps, invalid);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().toString();
  EXPECT_EQ(bad.status().httpCode(), 422);
}

TEST_F(CrudTest, PaginatesOverTwoThousandObjects) {
  constexpr int kObjects = 2000;
  constexpr int kWorkers = 8;
  std::atomic<int> failures{0};
  std::vector<std::thread> workers;
  workers.reserve(kWorkers);
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int i = w; i < kObjects; i += kWorkers) {
        const std::string parity = i % 2 == 0 ? "even" : "odd";
        if (!client_
                 ->create(resources::kConfigMaps,
                          configMap("page-" + std::to_string(i), std::to_string(i),
                                    {{"parity", parity}}))
                 .ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  ASSERT_EQ(failures.load(), 0);

  ListOptions opts;
  opts.limit = 150;
  auto first = client_->list(resources::kConfigMaps, "default", opts);
  ASSERT_TRUE(first.ok()) << first.status().toString();
  EXPECT_EQ((*first)["items"].size(), 150u);
  EXPECT_FALSE((*first)["metadata"].value("continue", "").empty());

  auto all = listAll(*client_, resources::kConfigMaps, "default", opts);
  ASSERT_TRUE(all.ok()) << all.status().toString();
  std::set<std::string> names;
  for (const auto& item : all->items) {
    const std::string name = objectKeyOf(item).name;
    if (name.rfind("page-", 0) == 0) names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(kObjects));
  EXPECT_FALSE(all->resourceVersion.empty());

  ListOptions even;
  even.labelSelector = "parity=even";
  even.limit = 300;
  auto evens = listAll(*client_, resources::kConfigMaps, "default", even);
  ASSERT_TRUE(evens.ok()) << evens.status().toString();
  EXPECT_EQ(evens->items.size(), static_cast<size_t>(kObjects / 2));
}

TEST_F(CrudTest, ServiceAccountTokenRequestAndTokenReview) {
  ASSERT_TRUE(client_
                  ->create(resources::kServiceAccounts,
                           {{"apiVersion", "v1"},
                            {"kind", "ServiceAccount"},
                            {"metadata", {{"namespace", "default"}, {"name", "agent"}}}})
                  .ok());
  const Json request = {{"apiVersion", "authentication.k8s.io/v1"},
                        {"kind", "TokenRequest"},
                        {"spec", {{"expirationSeconds", 600}}}};
  auto minted = client_->createSubresource(resources::kServiceAccounts, {"default", "agent"},
                                           "token", request);
  ASSERT_TRUE(minted.ok()) << minted.status().toString();
  const std::string token = (*minted)["status"]["token"];
  ASSERT_FALSE(token.empty());

  auto review = reviewToken(*client_, token, {});
  ASSERT_TRUE(review.ok()) << review.status().toString();
  EXPECT_TRUE(review->authenticated) << review->error;
  EXPECT_EQ(review->username, "system:serviceaccount:default:agent");

  auto bogus = reviewToken(*client_, "not-a-token", {});
  ASSERT_TRUE(bogus.ok()) << bogus.status().toString();
  EXPECT_FALSE(bogus->authenticated);
}

TEST_F(CrudTest, SubjectAccessReviewAnswersByRbac) {
  AccessReviewRequest admin;
  admin.user = "root";
  admin.groups = {"system:masters"};
  admin.ns = "default";
  admin.verb = "delete";
  admin.resource = "secrets";
  auto allowed = reviewAccess(*client_, admin);
  ASSERT_TRUE(allowed.ok()) << allowed.status().toString();
  EXPECT_TRUE(allowed->allowed);

  AccessReviewRequest nobody = admin;
  nobody.user = "nobody";
  nobody.groups = {};
  auto denied = reviewAccess(*client_, nobody);
  ASSERT_TRUE(denied.ok()) << denied.status().toString();
  EXPECT_FALSE(denied->allowed);
}

TEST_F(CrudTest, WatchDeliversEventsAndStopsPromptly) {
  auto listed = client_->list(resources::kConfigMaps, "default");
  ASSERT_TRUE(listed.ok());
  const std::string from = (*listed)["metadata"]["resourceVersion"];
  std::stop_source stop;
  std::mutex mu;
  std::vector<std::string> seen;
  Status result;
  std::thread watcher([&] {
    WatchOptions opts;
    opts.resourceVersion = from;
    opts.timeoutSeconds = 300;
    result = client_->watch(
        resources::kConfigMaps, "default", opts,
        [&](WatchEvent&& e) {
          std::lock_guard lock(mu);
          if (e.type != WatchEventType::kBookmark) {
            seen.push_back(std::string(watchEventTypeName(e.type)) + ":" +
                           objectKeyOf(e.object).name);
          }
          return true;
        },
        CallOptions{stop.get_token(), {}});
  });
  ASSERT_TRUE(client_->create(resources::kConfigMaps, configMap("watched", "1")).ok());
  ASSERT_TRUE(client_->remove(resources::kConfigMaps, {"default", "watched"}).ok());
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard lock(mu);
      if (seen.size() >= 2) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // The stream is idle now; a stop request must end it without waiting for the server.
  stop.request_stop();
  watcher.join();
  EXPECT_EQ(result.code(), StatusCode::kCancelled) << result.toString();
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED:watched", "DELETED:watched"}));
}

TEST_F(CrudTest, WatchFromACompactedVersionIsGone) {
  auto created = client_->create(resources::kConfigMaps, configMap("old", "1"));
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(client_->create(resources::kConfigMaps, configMap("newer", "1")).ok());
  ASSERT_TRUE(sim_.compact().ok());
  WatchOptions opts;
  opts.resourceVersion = resourceVersionOf(*created);
  const Status s = client_->watch(resources::kConfigMaps, "default", opts,
                                  [](WatchEvent&&) { return true; }, {});
  EXPECT_TRUE(s.isGone()) << s.toString();
}

}  // namespace
}  // namespace tasklease::kube::testing
