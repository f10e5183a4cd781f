#include "operator/reconciler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "common/crypto.h"
#include "common/delegation_stamp.h"
#include "operator/async_events.h"
#include "operator/conditions.h"
#include "operator/objects.h"
#include "tests/operator/operator_fixture.h"

namespace tasklease::op {
namespace {

using testing::OperatorHarness;
namespace res = kube::resources;

// Position of the n-th (1-based) entry starting with `prefix`, or -1.
int indexOf(const std::vector<std::string>& log, const std::string& prefix, int nth = 1) {
  for (size_t i = 0; i < log.size(); ++i) {
    if (log[i].rfind(prefix, 0) == 0 && --nth == 0) return static_cast<int>(i);
  }
  return -1;
}

std::string conditionStatus(const Json& task, const std::string& type) {
  const Json* c = findCondition(objectAt(task, {"status"}), type);
  return c == nullptr ? ""
                      : (*c)["status"].get<std::string>() + "/" + (*c)["reason"].get<std::string>();
}

// Objects of that resource in the tasks' namespace (the CA Secret lives elsewhere).
size_t inTeamA(const kube::FakeApiClient& fake, const kube::ResourceRef& resource) {
  const auto all = fake.objects(resource);
  return static_cast<size_t>(std::count_if(all.begin(), all.end(), [](const Json& o) {
    return stringAt(o, {"metadata", "namespace"}) == "team-a";
  }));
}

bool contains(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

class ReconcilerTest : public ::testing::Test {
 protected:
  // Creates an allowed task and reconciles it to Active.
  std::string activeTask(const std::string& name = "t1",
                         const Json& spec = OperatorHarness::taskSpec()) {
    h.addPolicy("allow-refactor", Json::object());
    std::string key = h.createTask(name, spec);
    auto result = h.reconcileUntilStable(key);
    EXPECT_TRUE(result.ok()) << result.status().toString();
    EXPECT_EQ(h.phase(key), "Active");
    return key;
  }

  // Several allowed tasks, each reconciled to Active.
  std::vector<std::string> activeTasks(const std::vector<std::string>& names,
                                       const Json& spec = OperatorHarness::taskSpec()) {
    h.addPolicy("allow-refactor", Json::object());
    std::vector<std::string> keys;
    for (const auto& name : names) {
      keys.push_back(h.createTask(name, spec));
      auto result = h.reconcileUntilStable(keys.back());
      EXPECT_TRUE(result.ok()) << result.status().toString();
      EXPECT_EQ(h.phase(keys.back()), "Active");
    }
    return keys;
  }

  // A task with a workload Job, reconciled to Active (the Job created).
  std::string activeWorkloadTask() {
    Json spec = OperatorHarness::taskSpec();
    spec["workload"] = {
        {"template", {{"spec", {{"containers", {{{"name", "agent"}, {"image", "a:1"}}}}}}}}};
    return activeTask("t1", spec);
  }

  // A task with a workload Job, under the policy "allow-refactor", not reconciled yet.
  std::string newWorkloadTask() {
    h.addPolicy("allow-refactor", Json::object());
    Json spec = OperatorHarness::taskSpec();
    spec["workload"] = {
        {"template", {{"spec", {{"containers", {{{"name", "agent"}, {"image", "a:1"}}}}}}}}};
    return h.createTask("t1", spec);
  }

  // One pass at a time until the task is Active: the last pass is the one that issued.
  void passUntilActive(const std::string& key) {
    for (int pass = 0; pass < 10 && h.phase(key) != "Active"; ++pass) {
      ASSERT_TRUE(h.reconciler->reconcile(key).ok());
    }
    ASSERT_EQ(h.phase(key), "Active");
  }

  // The task's Job ends with this condition ("Complete" or "Failed").
  void endJob(const std::string& key, const std::string& condition) {
    Json job = *h.fake.object(res::kJobs, {"team-a", h.names(key).job()});
    job["status"] = {{"conditions", {{{"type", condition}, {"status", "True"}}}}};
    ASSERT_TRUE(h.fake.updateStatus(res::kJobs, job).ok());
  }

  // Secret deletions are accepted but do nothing (as if a finalizer held them) while the flag
  // is true.
  std::shared_ptr<bool> secretDeletionsStuck() {
    auto stuck = std::make_shared<bool>(true);
    h.fake.prependReactor(
        "deletecollection", "secrets",
        [stuck](const kube::FakeApiClient::Action&) -> std::optional<StatusOr<Json>> {
          if (*stuck) return StatusOr<Json>(Json{{"items", Json::array()}});
          return std::nullopt;
        });
    return stuck;
  }

  void setCompleted(const std::string& key) {
    ASSERT_TRUE(
        h.fake.patch(kAgentTasks, kube::ObjectKey::parse(key), {{"spec", {{"completed", true}}}})
            .ok());
  }

  void expectCredentialObjects(const std::string& key, bool present) {
    const TaskNames n = h.names(key);
    for (const auto* r :
         {&res::kServiceAccounts, &res::kRoles, &res::kRoleBindings, &res::kSecrets}) {
      EXPECT_EQ(h.exists(*r, "team-a", n.base), present) << r->resource;
    }
  }

  OperatorHarness h;
};

TEST_F(ReconcilerTest, TheFinalizerIsAddedBeforeAnythingElse) {
  h.addPolicy("allow-refactor", Json::object());
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  h.fake.clearActions();
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  ASSERT_EQ(h.phase(key), "Active");
  const auto log = h.writeLog();
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front(), "update agenttasks t1");
  EXPECT_TRUE(hasFinalizer(h.task(key), kFinalizer));
}

TEST_F(ReconcilerTest, ATaskNoPolicyAllowsIsDeniedAndGetsNoObjects) {
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  h.fake.clearActions();
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  const Json task = h.task(key);
  EXPECT_EQ(h.phase(key), "Denied");
  EXPECT_EQ(stringAt(task, {"status", "policy", "decision"}), "Denied");
  EXPECT_EQ(stringAt(task, {"status", "policy", "reason"}),
            "denied by default: no AgentPolicy exists");
  EXPECT_EQ(conditionStatus(task, kConditionAuthorized), "False/PolicyDenied");
  EXPECT_EQ(conditionStatus(task, kConditionReady), "False/Denied");
  for (const auto& w : h.writeLog()) EXPECT_EQ(w.rfind("update agenttasks", 0), 0u) << w;
  expectCredentialObjects(key, false);
  EXPECT_TRUE(h.api.tokens().empty());
  EXPECT_EQ(h.evidenceKinds(), std::vector<std::string>{"denied"});
  EXPECT_TRUE(contains(h.eventReasons(), "Denied"));
}

TEST_F(ReconcilerTest, ATtlOverMaxTtlIsDeniedWithoutObjects) {
  h.addPolicy("short", {{"allow", {{"maxTTL", "10m"}}}});
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Denied");
  EXPECT_NE(stringAt(h.task(key), {"status", "policy", "reason"}).find("exceeds maxTTL 10m0s"),
            std::string::npos);
  EXPECT_TRUE(h.fake.objects(res::kServiceAccounts).empty());
}

TEST_F(ReconcilerTest, AnInvalidSpecIsDeniedNamingTheField) {
  h.addPolicy("allow-refactor", Json::object());
  Json spec = OperatorHarness::taskSpec();
  spec["ttl"] = "later";
  const std::string key = h.createTask("t1", spec);
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Denied");
  EXPECT_EQ(conditionStatus(h.task(key), kConditionAuthorized), "False/InvalidSpec");
  EXPECT_EQ(
      stringAt(h.task(key), {"status", "policy", "reason"}).rfind("invalid spec: spec.ttl", 0), 0u);
}

TEST_F(ReconcilerTest, AnAllowedTaskGetsABoundTokenStoredOnlyInItsSecret) {
  h.addPolicy("allow-refactor", Json::object());
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  auto result = h.reconcileUntilStable(key);
  ASSERT_TRUE(result.ok()) << result.status().toString();
  const Json task = h.task(key);
  const TaskNames n = h.names(key);
  expectCredentialObjects(key, true);
  for (const auto* r :
       {&res::kServiceAccounts, &res::kRoles, &res::kRoleBindings, &res::kSecrets}) {
    const Json o = *h.fake.object(*r, {"team-a", n.base});
    EXPECT_EQ(stringAt(o, {"metadata", "labels", kTaskLabel}), "t1");
    EXPECT_EQ(stringAt(o, {"metadata", "labels", kTaskUidLabel}), kube::uidOf(task));
    EXPECT_EQ(o["metadata"]["ownerReferences"][0]["uid"], kube::uidOf(task));
  }
  EXPECT_EQ((*h.fake.object(res::kRoles, {"team-a", n.base}))["rules"][0]["resourceNames"],
            Json::array({"billing-config"}));

  ASSERT_EQ(h.api.tokens().size(), 1u);
  const std::string token = h.api.tokens()[0];
  const Json request = h.api.tokenRequests()[0];
  const Json secret = *h.fake.object(res::kSecrets, {"team-a", n.secret()});
  EXPECT_EQ(request["spec"]["boundObjectRef"]["kind"], "Secret");
  EXPECT_EQ(request["spec"]["boundObjectRef"]["name"], n.secret());
  EXPECT_EQ(request["spec"]["boundObjectRef"]["uid"], kube::uidOf(secret));
  const int64_t seconds = request["spec"]["expirationSeconds"];
  EXPECT_GT(seconds, 29 * 60);
  EXPECT_LE(seconds, 30 * 60);
  EXPECT_EQ(secretValue(secret, "token"), token);
  EXPECT_EQ(secret["type"], "Opaque");

  EXPECT_EQ(h.phase(key), "Active");
  EXPECT_EQ(stringAt(task, {"status", "credential", "fingerprint"}), fingerprint(token));
  EXPECT_EQ(stringAt(task, {"status", "credential", "tokenID"}), "jti-1");
  EXPECT_EQ(stringAt(task, {"status", "credential", "serviceAccountName"}), n.serviceAccount());
  EXPECT_EQ(stringAt(task, {"status", "credential", "secretName"}), n.secret());
  EXPECT_EQ(task["status"]["observedGeneration"], generationOf(task));
  EXPECT_EQ(conditionStatus(task, kConditionReady), "True/Active");
  EXPECT_EQ(conditionStatus(task, kConditionIssued), "True/Issued");
  EXPECT_EQ(conditionStatus(task, kConditionAuthorized), "True/PolicyAllowed");
  EXPECT_EQ(stringAt(task, {"status", "policy", "name"}), "allow-refactor");
  ASSERT_TRUE(result->requeueAfter.has_value());
  EXPECT_GT(*result->requeueAfter, std::chrono::minutes(29));
  EXPECT_EQ(h.evidenceKinds(), (std::vector<std::string>{"authorized", "issued"}));
  EXPECT_TRUE(contains(h.eventReasons(), "CredentialIssued"));
}

TEST_F(ReconcilerTest, ATokenForLessThanTheApiMinimumIsAskedForTheMinimumAndEndsAtTheDeadline) {
  h.addPolicy("allow-refactor", Json::object());
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  h.advance(std::chrono::minutes(25));
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.api.tokenRequests().at(0)["spec"]["expirationSeconds"], 600);
  const Json task = h.task(key);
  EXPECT_EQ(stringAt(task, {"status", "credential", "expiresAt"}),
            stringAt(task, {"status", "expiresAt"}));
}

TEST_F(ReconcilerTest, ReconcilingAnActiveTaskAgainWritesNothing) {
  const std::string key = activeTask();
  h.fake.clearActions();
  auto again = h.reconciler->reconcile(key);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(h.writeLog().empty());
  EXPECT_EQ(h.api.tokens().size(), 1u);
}

TEST_F(ReconcilerTest, CompletionRevokesRoleBindingSecretServiceAccountRoleInThatOrder) {
  const std::string key = activeTask();
  const std::string base = h.names(key).base;
  setCompleted(key);
  h.fake.clearActions();
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  // One DELETE of the collection per kind, selecting by the task's uid, each followed by a
  // LIST with the same selector that finds nothing left.
  const std::string selector = taskUidSelector({kube::uidOf(h.task(key))});
  std::vector<std::string> deletes;
  std::vector<std::string> verified;
  for (const auto& a : h.fake.actions()) {
    if (a.verb == "delete") deletes.push_back("delete " + a.resource + " " + a.key.name);
    if (a.verb == "deletecollection" && a.body["labelSelector"] == selector) {
      deletes.push_back("deletecollection " + a.resource);
    }
    const bool afterItsDeletion =
        !deletes.empty() && deletes.back() == "deletecollection " + a.resource;
    if (a.verb == "list" && afterItsDeletion) verified.push_back(a.resource);
  }
  EXPECT_EQ(deletes, (std::vector<std::string>{
                         "deletecollection rolebindings", "deletecollection secrets",
                         "deletecollection serviceaccounts", "deletecollection roles"}));
  EXPECT_EQ(verified,
            (std::vector<std::string>{"rolebindings", "secrets", "serviceaccounts", "roles"}));
  expectCredentialObjects(key, false);
  const Json task = h.task(key);
  EXPECT_EQ(h.phase(key), "Succeeded");
  EXPECT_FALSE(stringAt(task, {"status", "credential", "revokedAt"}).empty());
  EXPECT_EQ(conditionStatus(task, kConditionRevoked), "True/Revoked");
  EXPECT_EQ(conditionStatus(task, kConditionReady), "False/Completed");
  EXPECT_EQ(h.evidenceKinds(),
            (std::vector<std::string>{"authorized", "issued", "completed", "revoked"}));
  EXPECT_TRUE(contains(h.eventReasons(), "CredentialRevoked"));
}

TEST_F(ReconcilerTest, ATaskExpiresAtItsDeadlineWithNobodyTouchingIt) {
  const std::string key = activeTask();
  h.advance(std::chrono::minutes(29));
  auto early = h.reconcileUntilStable(key);
  ASSERT_TRUE(early.ok());
  EXPECT_EQ(h.phase(key), "Active");
  ASSERT_TRUE(early->requeueAfter.has_value());
  EXPECT_LE(*early->requeueAfter, std::chrono::minutes(1));
  h.advance(std::chrono::minutes(1));
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Expired");
  expectCredentialObjects(key, false);
  EXPECT_EQ(conditionStatus(h.task(key), kConditionReady), "False/Expired");
  EXPECT_TRUE(contains(h.evidenceKinds(), "expired"));
}

TEST_F(ReconcilerTest, DeletingAnActiveTaskRevokesBeforeTheFinalizerComesOff) {
  const std::string key = activeTask();
  ASSERT_TRUE(h.fake.remove(kAgentTasks, kube::ObjectKey::parse(key)).ok());
  ASSERT_TRUE(h.fake.object(kAgentTasks, kube::ObjectKey::parse(key)).has_value());  // finalizer
  h.fake.clearActions();
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  const auto log = h.writeLog();
  const int firstDelete = indexOf(log, "deletecollection rolebindings");
  const int lastDelete = indexOf(log, "deletecollection roles");
  // Status writes: Revoking (before anything is deleted), then revokedAt (after).
  const int revoking = indexOf(log, "update agenttasks/status");
  const int revoked = indexOf(log, "update agenttasks/status", 2);
  const int finalizer = indexOf(log, "update agenttasks t1");
  ASSERT_GE(lastDelete, 0);
  EXPECT_LT(revoking, firstDelete);
  EXPECT_LT(lastDelete, revoked);
  EXPECT_LT(revoked, finalizer);
  EXPECT_FALSE(h.fake.object(kAgentTasks, kube::ObjectKey::parse(key)).has_value());
  expectCredentialObjects(key, false);
  EXPECT_TRUE(contains(h.evidenceKinds(), "revoked"));
}

TEST_F(ReconcilerTest, APolicyTheCacheHasNotSeenYetIsFoundBeforeDenying) {
  h.addPolicy("allow-refactor", Json::object());
  h.view.lagging = std::vector<Json>{};  // the policy informer is behind the task's
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Active");
  EXPECT_EQ(h.evidenceKinds(), (std::vector<std::string>{"authorized", "issued"}));
}

TEST_F(ReconcilerTest, ADenialIsNotDecidedWhenThePoliciesCannotBeRead) {
  h.addPolicy("allow-refactor", Json::object());
  h.view.lagging = std::vector<Json>{};
  h.fake.prependReactor("list", "agentpolicies",
                        [](const kube::FakeApiClient::Action&) -> std::optional<StatusOr<Json>> {
                          return StatusOr<Json>(unavailable("the API server is away"));
                        });
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  EXPECT_FALSE(h.reconcileUntilStable(key).ok());
  EXPECT_NE(h.phase(key), "Denied");
  EXPECT_TRUE(h.evidenceKinds().empty());
}

TEST_F(ReconcilerTest, ADeletionThatCannotBeVerifiedIsRetriedNotReported) {
  const std::string key = activeTask();
  auto stuck = secretDeletionsStuck();
  setCompleted(key);
  auto result = h.reconcileUntilStable(key);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("still present after its deletion"), std::string::npos)
      << result.status().message();
  EXPECT_EQ(h.phase(key), "Revoking");
  EXPECT_TRUE(stringAt(h.task(key), {"status", "credential", "revokedAt"}).empty());
  EXPECT_FALSE(contains(h.evidenceKinds(), "revoked"));
  // Only the Secret waits: the kinds after it in the order went ahead.
  EXPECT_TRUE(h.exists(res::kSecrets, "team-a", h.names(key).secret()));
  EXPECT_FALSE(h.exists(res::kRoleBindings, "team-a", h.names(key).base));
  EXPECT_FALSE(h.exists(res::kServiceAccounts, "team-a", h.names(key).base));
  EXPECT_FALSE(h.exists(res::kRoles, "team-a", h.names(key).base));
  *stuck = false;
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Succeeded");
  expectCredentialObjects(key, false);
  // The evidence names everything revoked, what the first pass deleted included.
  const auto revoked = std::find_if(h.evidence->begin(), h.evidence->end(), [](const Json& r) {
    return r.value("kind", std::string()) == "revoked";
  });
  ASSERT_NE(revoked, h.evidence->end());
  const std::string& name = h.names(key).base;
  EXPECT_EQ((*revoked)["details"]["deleted"], Json({"RoleBinding/" + name, "ServiceAccount/" + name,
                                                    "Role/" + name, "Secret/" + name}))
      << revoked->dump();
}

TEST_F(ReconcilerTest, RevocationLatencyCountsFromWhenTheEndingWasFirstSeen) {
  // The workload's Job finishes; the first revocation cannot verify the Secret gone and is
  // retried 30 s later: the latency reported is from the first pass that saw the Job done.
  const std::string key = activeWorkloadTask();
  endJob(key, "Complete");
  auto stuck = secretDeletionsStuck();
  ASSERT_FALSE(h.reconcileUntilStable(key).ok());
  h.advance(std::chrono::seconds(30));
  *stuck = false;
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Succeeded");
  const auto revoked = std::find_if(h.evidence->begin(), h.evidence->end(), [](const Json& r) {
    return r.value("kind", std::string()) == "revoked";
  });
  ASSERT_NE(revoked, h.evidence->end());
  EXPECT_EQ((*revoked)["details"]["latencyMs"], 30000) << revoked->dump();
}

TEST_F(ReconcilerTest, ObjectsNotLabelledForTheTaskAreNeverUsedOrDeleted) {
  h.addPolicy("allow-refactor", Json::object());
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  const TaskNames n = h.names(key);
  ASSERT_TRUE(
      h.fake
          .create(res::kServiceAccounts, {{"metadata",
                                           {{"name", n.serviceAccount()},
                                            {"namespace", "team-a"},
                                            {"labels", {{kTaskUidLabel, "someone-else"}}}}}})
          .ok());
  auto result = h.reconcileUntilStable(key);
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition) << result.status().toString();
  auto revoked = h.revoker.revoke(
      {taskRefOf(h.task(key)), n, CredentialType::kServiceAccountToken, Json::object()}, h.now());
  ASSERT_TRUE(revoked.ok());
  EXPECT_TRUE(h.exists(res::kServiceAccounts, "team-a", n.serviceAccount()));
  EXPECT_TRUE(h.api.tokens().empty());
}

RevocationTarget targetOf(OperatorHarness& h, const std::string& key, CredentialType type) {
  const Json task = h.task(key);
  return {taskRefOf(task), h.names(key), type, objectAt(task, {"status", "credential"})};
}

size_t countActions(const kube::FakeApiClient& fake, const std::string& verb,
                    const std::string& resource = "") {
  const auto all = fake.actions();
  return static_cast<size_t>(std::count_if(all.begin(), all.end(), [&](const auto& a) {
    return a.verb == verb && (resource.empty() || a.resource == resource);
  }));
}

TEST_F(ReconcilerTest, ABatchOfTasksIsRevokedWithOneDeleteAndOneListPerKind) {
  const std::vector<std::string> keys = activeTasks({"t1", "t2", "t3"});
  std::vector<RevocationTarget> targets;
  for (const auto& key : keys) {
    targets.push_back(targetOf(h, key, CredentialType::kServiceAccountToken));
  }
  h.fake.clearActions();
  const auto results = h.revoker.revokeAll(targets, h.now());
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(countActions(h.fake, "deletecollection"), 4u);
  EXPECT_EQ(countActions(h.fake, "list"), 4u);
  EXPECT_EQ(countActions(h.fake, "delete"), 0u);
  EXPECT_EQ(countActions(h.fake, "get"), 0u);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().toString();
    const std::string base = h.names(keys[i]).base;
    EXPECT_EQ(results[i]->deleted,
              (std::vector<std::string>{"RoleBinding/" + base, "Secret/" + base,
                                        "ServiceAccount/" + base, "Role/" + base}));
    expectCredentialObjects(keys[i], false);
  }
}

TEST_F(ReconcilerTest, ABatchLargerThanOneSelectorIsRevokedInGroupsAtOnce) {
  const std::vector<std::string> keys = activeTasks({"t1", "t2", "t3"});
  Revoker small(h.api, h.issuers, {.maxBatch = 1, .parallelGroups = 2});
  std::vector<RevocationTarget> targets;
  for (const auto& key : keys) {
    targets.push_back(targetOf(h, key, CredentialType::kServiceAccountToken));
  }
  h.fake.clearActions();
  const auto results = small.revokeAll(targets, h.now());
  EXPECT_EQ(countActions(h.fake, "deletecollection"), 12u);  // one group per task
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().toString();
    EXPECT_EQ(results[i]->deleted.size(), 4u);
    expectCredentialObjects(keys[i], false);
  }
}

TEST_F(ReconcilerTest, ATaskGivenTwiceIsRevokedInOneGroupAndReportedWholeToBoth) {
  // With one uid per selector, t1's second target must join t1's group, not race it in another.
  const std::vector<std::string> keys = activeTasks({"t1", "t2"});
  Revoker small(h.api, h.issuers, {.maxBatch = 1, .parallelGroups = 2});
  const RevocationTarget t1 = targetOf(h, keys[0], CredentialType::kServiceAccountToken);
  const RevocationTarget t2 = targetOf(h, keys[1], CredentialType::kServiceAccountToken);
  h.fake.clearActions();
  const auto results = small.revokeAll({t1, t2, t1}, h.now());
  EXPECT_EQ(countActions(h.fake, "deletecollection"), 8u);  // two groups, not three
  const std::string base = h.names(keys[0]).base;
  const std::vector<std::string> all = {"RoleBinding/" + base, "Secret/" + base,
                                        "ServiceAccount/" + base, "Role/" + base};
  for (size_t i : {0, 2}) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().toString();
    EXPECT_EQ(results[i]->deleted, all) << i;
  }
  ASSERT_TRUE(results[1].ok()) << results[1].status().toString();
  expectCredentialObjects(keys[0], false);
  expectCredentialObjects(keys[1], false);
}

TEST_F(ReconcilerTest, AnObjectHeldByAFinalizerHoldsOnlyItselfInItsTaskAndItsBatch) {
  const auto keys = activeTasks({"t1", "t2"});
  const std::string& held = keys[0];
  const std::string& free = keys[1];
  const std::string& name = h.names(held).base;
  ASSERT_TRUE(h.setFinalizers(res::kSecrets, h.names(held).secret(), {"example.com/hold"}).ok());
  const auto results =
      h.revoker.revokeAll({targetOf(h, held, CredentialType::kServiceAccountToken),
                           targetOf(h, free, CredentialType::kServiceAccountToken)},
                          h.now());
  ASSERT_TRUE(results[0].ok()) << results[0].status().toString();
  EXPECT_FALSE(results[0]->complete());
  ASSERT_EQ(results[0]->held.size(), 1u);
  EXPECT_EQ(results[0]->held[0].describe(),
            "Secret team-a/" + name + " (finalizers: example.com/hold)");
  // Every deletion was asked for, the held Secret's too (the API server marked it).
  EXPECT_EQ(results[0]->deleted,
            (std::vector<std::string>{"RoleBinding/" + name, "Secret/" + name,
                                      "ServiceAccount/" + name, "Role/" + name}));
  EXPECT_TRUE(h.exists(res::kSecrets, "team-a", name));
  EXPECT_FALSE(h.exists(res::kRoleBindings, "team-a", name));
  EXPECT_FALSE(h.exists(res::kServiceAccounts, "team-a", name));
  EXPECT_FALSE(h.exists(res::kRoles, "team-a", name));
  ASSERT_TRUE(results[1].ok()) << results[1].status().toString();
  EXPECT_TRUE(results[1]->complete());
  EXPECT_EQ(results[1]->deletedByThisPass, results[1]->deleted);
  expectCredentialObjects(free, false);
  // The finalizer goes and the Secret with it; the next pass finds nothing left and reports the
  // whole revocation, what the first pass deleted included.
  ASSERT_TRUE(h.setFinalizers(res::kSecrets, h.names(held).secret(), Json::array()).ok());
  ASSERT_FALSE(h.exists(res::kSecrets, "team-a", h.names(held).secret()));
  const auto again =
      h.revoker.revokeAll({targetOf(h, held, CredentialType::kServiceAccountToken)}, h.now());
  ASSERT_TRUE(again[0].ok()) << again[0].status().toString();
  EXPECT_TRUE(again[0]->complete());
  EXPECT_EQ(again[0]->deleted,
            (std::vector<std::string>{"RoleBinding/" + name, "Secret/" + name,
                                      "ServiceAccount/" + name, "Role/" + name}));
  EXPECT_TRUE(again[0]->deletedByThisPass.empty());
  expectCredentialObjects(held, false);
}

// The CRL entries in the CRL ConfigMap, by serial.
std::map<std::string, Json> crlEntries(const kube::FakeApiClient& fake) {
  std::map<std::string, Json> out;
  const auto crl = fake.object(res::kConfigMaps, {"tasklease-system", "tasklease-crl"});
  if (!crl) return out;
  const Json state = Json::parse(crl->at("data").at("revoked.json").get<std::string>());
  for (const Json& e : state["entries"]) out[e["serial"]] = e;
  return out;
}

// The messages of the Events with this reason.
std::vector<std::string> eventMessages(const kube::FakeApiClient& fake, const std::string& reason) {
  std::vector<std::string> out;
  for (const Json& e : fake.objects(res::kEvents)) {
    if (e.value("reason", std::string()) == reason) out.push_back(e.value("message", ""));
  }
  return out;
}

// A finalizer on one of a task's objects (an attacker's, or a stuck controller's) holds only
// that object: the task leaves Active at once, the serial reaches the CRL and every other object
// goes in the same pass; the held object is named in status, in an Event and in the error the
// pass is retried with; once the finalizer goes, the revocation finishes.
class HeldRevocationTest : public ReconcilerTest,
                           public ::testing::WithParamInterface<const kube::ResourceRef*> {};

TEST_P(HeldRevocationTest, AFinalizerHoldsOnlyItsObjectAndTheTaskLeavesActiveAtOnce) {
  const kube::ResourceRef& heldKind = *GetParam();
  Json spec = OperatorHarness::taskSpec();
  spec["credential"] = {{"type", "X509SVID"}};
  spec["ttl"] = "5m";
  const std::string key = activeTask("t1", spec);
  const std::string name = h.names(key).base;
  const std::string serial = stringAt(h.task(key), {"status", "credential", "serial"});
  const auto hold = [&](Json finalizers) {
    ASSERT_TRUE(h.setFinalizers(heldKind, name, std::move(finalizers)).ok());
  };
  hold({"example.com/hold"});
  setCompleted(key);

  auto first = h.reconciler->reconcile(key);
  ASSERT_FALSE(first.ok());
  const std::string described =
      heldKind.kind + " team-a/" + name + " (finalizers: example.com/hold)";
  EXPECT_NE(first.status().message().find(described), std::string::npos)
      << first.status().message();
  const Json task = h.task(key);
  EXPECT_EQ(h.phase(key), "Revoking");
  EXPECT_EQ(stringAt(task, {"status", "revocation", "outcome"}), "Succeeded");
  EXPECT_EQ(stringAt(task, {"status", "revocation", "reason"}), "Completed");
  EXPECT_EQ(task["status"]["revocation"]["held"],
            Json::parse(R"([{"kind":")" + heldKind.kind + R"(","name":")" + name +
                        R"(","finalizers":["example.com/hold"]}])"));
  EXPECT_EQ(conditionStatus(task, kConditionRevoked), "False/RevocationBlocked");
  const Json* revokedCondition = findCondition(task["status"], kConditionRevoked);
  ASSERT_NE(revokedCondition, nullptr);
  EXPECT_NE((*revokedCondition)["message"].get<std::string>().find(described), std::string::npos);
  const auto warnings = eventMessages(h.fake, "RevocationBlocked");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find(described), std::string::npos) << warnings[0];
  // The serial is on the CRL, complete, and everything but the held object is gone.
  const auto entries = crlEntries(h.fake);
  ASSERT_EQ(entries.count(serial), 1u);
  EXPECT_EQ(entries.at(serial)["issuer"], h.cas.current()->current.summary().fingerprint);
  for (const auto* kind :
       {&res::kRoleBindings, &res::kSecrets, &res::kServiceAccounts, &res::kRoles}) {
    EXPECT_EQ(h.exists(*kind, "team-a", name), kind == &heldKind) << kind->kind;
  }
  EXPECT_TRUE(stringAt(task, {"status", "credential", "revokedAt"}).empty());
  EXPECT_FALSE(contains(h.evidenceKinds(), "revoked"));

  hold(Json::array());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Succeeded");
  expectCredentialObjects(key, false);
  EXPECT_EQ(conditionStatus(h.task(key), kConditionRevoked), "True/Revoked");
  EXPECT_EQ(h.task(key)["status"]["revocation"]["held"], Json::array());
  EXPECT_TRUE(contains(h.evidenceKinds(), "revoked"));
}

INSTANTIATE_TEST_SUITE_P(Kinds, HeldRevocationTest,
                         ::testing::Values(&res::kRoleBindings, &res::kSecrets,
                                           &res::kServiceAccounts, &res::kRoles),
                         [](const auto& param) { return param.param->kind; });

TEST_F(ReconcilerTest, ADeletedTaskWhoseServiceAccountIsHeldLeavesActiveAndWaitsForIt) {
  const std::string key = activeTask();
  const std::string name = h.names(key).base;
  const auto hold = [&](Json finalizers) {
    ASSERT_TRUE(h.setFinalizers(res::kServiceAccounts, name, std::move(finalizers)).ok());
  };
  hold({"example.com/hold"});
  ASSERT_TRUE(h.fake.remove(kAgentTasks, kube::ObjectKey::parse(key)).ok());
  EXPECT_FALSE(h.reconciler->reconcile(key).ok());
  EXPECT_EQ(h.phase(key), "Revoking");
  EXPECT_EQ(stringAt(h.task(key), {"status", "revocation", "reason"}), "TaskDeleted");
  EXPECT_EQ(conditionStatus(h.task(key), kConditionRevoked), "False/RevocationBlocked");
  EXPECT_TRUE(hasFinalizer(h.task(key), kFinalizer));  // the task waits for its revocation
  EXPECT_TRUE(h.exists(res::kServiceAccounts, "team-a", name));
  EXPECT_FALSE(h.exists(res::kRoleBindings, "team-a", name));
  EXPECT_FALSE(h.exists(res::kSecrets, "team-a", name));
  EXPECT_FALSE(h.exists(res::kRoles, "team-a", name));
  hold(Json::array());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_FALSE(h.fake.object(kAgentTasks, kube::ObjectKey::parse(key)).has_value());
  expectCredentialObjects(key, false);
}

// Pins what a failed CRL write must not cost: the certificate's Secret (what the CRL entry is
// read from) stays for the next pass, whose entry then names the issuer, not only the serial.
TEST_F(ReconcilerTest, WhenTheCrlCannotBeWrittenTheSecretIsKeptAndTheLaterEntryIsComplete) {
  Json spec = OperatorHarness::taskSpec();
  spec["credential"] = {{"type", "X509SVID"}};
  spec["ttl"] = "5m";
  const std::string key = activeTask("t1", spec);
  const std::string serial = stringAt(h.task(key), {"status", "credential", "serial"});
  auto crlDown = std::make_shared<bool>(true);
  for (const char* verb : {"create", "update"}) {
    h.fake.prependReactor(
        verb, "configmaps",
        [crlDown](const kube::FakeApiClient::Action& a) -> std::optional<StatusOr<Json>> {
          if (!*crlDown || a.key.name != "tasklease-crl") return std::nullopt;
          return StatusOr<Json>(unavailable("etcdserver: request timed out"));
        });
  }
  setCompleted(key);
  auto failed = h.reconcileUntilStable(key);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("request timed out"), std::string::npos)
      << failed.status().message();
  EXPECT_EQ(h.phase(key), "Revoking");
  EXPECT_TRUE(h.exists(res::kSecrets, "team-a", h.names(key).secret()));
  EXPECT_EQ(crlEntries(h.fake).count(serial), 0u);
  *crlDown = false;
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Succeeded");
  expectCredentialObjects(key, false);
  const auto entries = crlEntries(h.fake);
  ASSERT_EQ(entries.count(serial), 1u);
  const Json& entry = entries.at(serial);
  EXPECT_EQ(entry["issuer"], h.cas.current()->current.summary().fingerprint) << entry.dump();
  EXPECT_FALSE(entry["issuer"].get<std::string>().empty());
  EXPECT_EQ(entry["task"], "team-a/t1");
  EXPECT_EQ(entry["notAfter"], stringAt(h.task(key), {"status", "credential", "expiresAt"}));
}

TEST_F(ReconcilerTest, TheSerialsOfAnX509BatchGoOnTheCrlInOneWrite) {
  Json spec = OperatorHarness::taskSpec();
  spec["credential"] = {{"type", "X509SVID"}};
  spec["ttl"] = "5m";
  const auto keys = activeTasks({"t1", "t2"}, spec);
  const std::string& a = keys[0];
  const std::string& b = keys[1];
  h.fake.clearActions();
  const auto results = h.revoker.revokeAll(
      {targetOf(h, a, CredentialType::kX509Svid), targetOf(h, b, CredentialType::kX509Svid)},
      h.now());
  ASSERT_TRUE(results[0].ok()) << results[0].status().toString();
  ASSERT_TRUE(results[1].ok()) << results[1].status().toString();
  size_t crlWrites = 0;
  for (const auto& a2 : h.fake.actions()) {
    if (a2.resource == "configmaps" && (a2.verb == "create" || a2.verb == "update")) ++crlWrites;
  }
  EXPECT_EQ(crlWrites, 1u);
  const Json crl = *h.fake.object(res::kConfigMaps, {"tasklease-system", "tasklease-crl"});
  const Json state = Json::parse(crl["data"]["revoked.json"].get<std::string>());
  std::vector<std::string> serials;
  for (const Json& e : state["entries"]) serials.push_back(e["serial"]);
  std::sort(serials.begin(), serials.end());
  std::vector<std::string> expected = {stringAt(h.task(a), {"status", "credential", "serial"}),
                                       stringAt(h.task(b), {"status", "credential", "serial"})};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(serials, expected);
  expectCredentialObjects(a, false);
  expectCredentialObjects(b, false);
}

TEST_F(ReconcilerTest, RevocationsThatArriveDuringABatchShareTheNextOne) {
  const std::vector<std::string> keys = activeTasks({"t1", "t2", "t3"});
  std::vector<RevocationTarget> targets;
  for (const auto& key : keys) {
    targets.push_back(targetOf(h, key, CredentialType::kServiceAccountToken));
  }
  const TimePoint now = h.now();
  // The first batch's first deletion waits (inside the fake, which is locked meanwhile: this
  // thread must not call it) until two more revocations are queued behind it.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool release = false;
  h.fake.prependReactor("deletecollection", "rolebindings",
                        [&](const kube::FakeApiClient::Action&) -> std::optional<StatusOr<Json>> {
                          std::unique_lock lock(mu);
                          if (!entered) {
                            entered = true;
                            cv.notify_all();
                            cv.wait(lock, [&] { return release; });
                          }
                          return std::nullopt;
                        });
  h.fake.clearActions();
  std::vector<StatusOr<RevocationReport>> results(3, RevocationReport{});
  std::vector<std::thread> threads;
  threads.emplace_back([&] { results[0] = h.revoker.revoke(targets[0], now); });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered; });
  }
  for (size_t i = 1; i < 3; ++i) {
    threads.emplace_back([&, i] { results[i] = h.revoker.revoke(targets[i], now); });
  }
  while (h.revoker.waiting() < 2) std::this_thread::yield();
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r.status().toString();
  std::vector<std::string> selectors;
  for (const auto& a : h.fake.actions()) {
    if (a.verb == "deletecollection" && a.resource == "rolebindings") {
      selectors.push_back(a.body["labelSelector"]);
    }
  }
  ASSERT_EQ(selectors.size(), 2u);  // two batches: t1 alone, then t2 and t3 together
  std::vector<std::string> later = {kube::uidOf(h.task(keys[1])), kube::uidOf(h.task(keys[2]))};
  std::sort(later.begin(), later.end());
  EXPECT_EQ(selectors[0], taskUidSelector({kube::uidOf(h.task(keys[0]))}));
  EXPECT_EQ(selectors[1], taskUidSelector(later));
  for (const auto& key : keys) expectCredentialObjects(key, false);
}

TEST_F(ReconcilerTest, TheBatcherRevokesOffThePassAndHandsTheKeyBack) {
  const std::vector<std::string> keys = activeTasks({"t1", "t2"});
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> done;
  RevocationBatcher batcher(h.revoker, [this] { return h.now(); });
  batcher.setDone([&](const std::string& key) {
    std::lock_guard lock(mu);
    done.push_back(key);
    cv.notify_all();
  });
  std::vector<RevocationTarget> targets;
  for (const auto& key : keys) {
    targets.push_back(targetOf(h, key, CredentialType::kServiceAccountToken));
  }
  // The first poll queues; asking again before the batch has run queues nothing twice.
  EXPECT_FALSE(batcher.poll(keys[0], targets[0]).has_value());
  EXPECT_FALSE(batcher.poll(keys[1], targets[1]).has_value());
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return done.size() >= 2; });
    std::sort(done.begin(), done.end());
    EXPECT_EQ(done, keys);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    auto outcome = batcher.poll(keys[i], targets[i]);
    ASSERT_TRUE(outcome.has_value());
    ASSERT_TRUE(outcome->ok()) << outcome->status().toString();
    EXPECT_EQ((*outcome)->deleted.size(), 4u);
    expectCredentialObjects(keys[i], false);
  }
  // Taken once: a later poll queues a new revocation.
  EXPECT_FALSE(batcher.poll(keys[0], targets[0]).has_value());
}

TEST_F(ReconcilerTest, ATaskQueuedBehindAGroupInFlightIsRevokedOnAnotherLane) {
  const std::vector<std::string> keys = activeTasks({"t1", "t2"});
  std::vector<RevocationTarget> targets;
  for (const auto& key : keys) {
    targets.push_back(targetOf(h, key, CredentialType::kServiceAccountToken));
  }
  // The lane that takes t1 stops in its clock read, before any call, until released.
  std::mutex mu;
  std::condition_variable cv;
  int clockReads = 0;
  bool release = false;
  std::vector<std::string> done;
  RevocationBatcher batcher(
      h.revoker,
      [&] {
        std::unique_lock lock(mu);
        if (++clockReads == 1) {
          cv.notify_all();
          cv.wait(lock, [&] { return release; });
        }
        return h.now();
      },
      2);
  batcher.setDone([&](const std::string& key) {
    std::lock_guard lock(mu);
    done.push_back(key);
    cv.notify_all();
  });
  EXPECT_FALSE(batcher.poll(keys[0], targets[0]).has_value());
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return clockReads == 1; });
  }
  EXPECT_FALSE(batcher.poll(keys[1], targets[1]).has_value());
  {
    // t2 is done while t1's group is still held (the bound only keeps a failure from hanging).
    std::unique_lock lock(mu);
    const bool t2Done = cv.wait_for(lock, std::chrono::seconds(60), [&] { return !done.empty(); });
    const std::vector<std::string> doneWhileHeld = done;
    release = true;
    cv.notify_all();
    cv.wait(lock, [&] { return done.size() == 2; });
    EXPECT_TRUE(t2Done) << "t2 waited for t1's group";
    EXPECT_EQ(doneWhileHeld, std::vector<std::string>{keys[1]});
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    auto outcome = batcher.poll(keys[i], targets[i]);
    ASSERT_TRUE(outcome.has_value());
    ASSERT_TRUE(outcome->ok()) << outcome->status().toString();
    expectCredentialObjects(keys[i], false);
  }
}

TEST_F(ReconcilerTest, ATaskCompletedBeforeIssuanceSucceedsWithoutACredential) {
  h.addPolicy("allow-refactor", Json::object());
  Json spec = OperatorHarness::taskSpec();
  spec["completed"] = true;
  const std::string key = h.createTask("t1", spec);
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Succeeded");
  EXPECT_TRUE(h.api.tokens().empty());
  expectCredentialObjects(key, false);
  EXPECT_EQ(conditionStatus(h.task(key), kConditionIssued), "False/NotIssued");
}

// For every write n that reconciling from `prepare`'s state makes, simulates a crash at n, before
// the write reaches the server and after it did (its answer lost); then a fresh Reconciler
// (a restarted process) finishes the work and `check` looks at the result. The loop ends at
// the first n past the last write, which must be at least `minWrites`.
void crashAtEveryWrite(const std::function<void(OperatorHarness&, const std::string&)>& prepare,
                       int minWrites,
                       const std::function<void(OperatorHarness&, const std::string&)>& check) {
  for (bool performed : {false, true}) {
    for (int n = 1;; ++n) {
      SCOPED_TRACE("crash at write " + std::to_string(n) + (performed ? " (performed)" : ""));
      OperatorHarness c;
      c.addPolicy("allow-refactor", Json::object());
      const std::string key = c.createTask("t1", OperatorHarness::taskSpec());
      prepare(c, key);
      c.api.crashAt(n, performed);
      (void)c.reconcileUntilStable(key);
      if (!c.api.crashed()) {
        EXPECT_GE(n, minWrites);
        break;
      }
      c.api.recover();
      c.restart();
      auto result = c.reconcileUntilStable(key);
      ASSERT_TRUE(result.ok()) << result.status().toString();
      check(c, key);
    }
  }
}

void complete(OperatorHarness& c, const std::string& key) {
  ASSERT_TRUE(
      c.fake.patch(kAgentTasks, kube::ObjectKey::parse(key), {{"spec", {{"completed", true}}}})
          .ok());
}

TEST(CrashTest, ACrashAtAnyWriteOfIssuanceIsFinishedByARestart) {
  // Writes: finalizer, decision, the four objects, the token, storing it, Active, Events.
  crashAtEveryWrite(
      [](OperatorHarness&, const std::string&) {}, 10,
      [](OperatorHarness& c, const std::string& key) {
        ASSERT_EQ(c.phase(key), "Active");
        const Json secret = *c.fake.object(res::kSecrets, {"team-a", c.names(key).secret()});
        const auto token = secretValue(secret, "token");
        ASSERT_TRUE(token.has_value());
        EXPECT_EQ(stringAt(c.task(key), {"status", "credential", "fingerprint"}),
                  fingerprint(*token));
        auto claims = jwtClaims(*token);
        ASSERT_TRUE(claims.ok());
        EXPECT_EQ(stringAt(*claims, {"kubernetes.io", "secret", "uid"}), kube::uidOf(secret));
        // Every token ever minted is bound to the one Secret that revocation deletes.
        for (const auto& request : c.api.tokenRequests()) {
          EXPECT_EQ(request["spec"]["boundObjectRef"]["uid"], kube::uidOf(secret));
        }
        EXPECT_LE(c.api.tokens().size(), 2u);
        EXPECT_EQ(inTeamA(c.fake, res::kSecrets), 1u);
        complete(c, key);
        ASSERT_TRUE(c.reconcileUntilStable(key).ok());
        EXPECT_EQ(c.phase(key), "Succeeded");
        EXPECT_EQ(inTeamA(c.fake, res::kSecrets), 0u);
        EXPECT_EQ(inTeamA(c.fake, res::kServiceAccounts), 0u);
      });
}

TEST(CrashTest, ACrashAtAnyWriteOfRevocationIsFinishedByARestart) {
  // Writes: four deletions, the status, the Events.
  crashAtEveryWrite(
      [](OperatorHarness& c, const std::string& key) {
        ASSERT_TRUE(c.reconcileUntilStable(key).ok());
        complete(c, key);
      },
      6,
      [](OperatorHarness& c, const std::string& key) {
        EXPECT_EQ(c.phase(key), "Succeeded");
        for (const auto* r :
             {&res::kServiceAccounts, &res::kRoles, &res::kRoleBindings, &res::kSecrets}) {
          EXPECT_EQ(inTeamA(c.fake, *r), 0u) << r->resource;
        }
        EXPECT_FALSE(stringAt(c.task(key), {"status", "credential", "revokedAt"}).empty());
      });
}

TEST_F(ReconcilerTest, TheWorkloadJobStartsOnceActiveAndItsCompletionEndsTheTask) {
  Json spec = OperatorHarness::taskSpec();
  spec["workload"] = {
      {"template", {{"spec", {{"containers", {{{"name", "agent"}, {"image", "a:1"}}}}}}}}};
  const std::string key = activeTask("t1", spec);
  const TaskNames n = h.names(key);
  const auto log = h.writeLog();
  // Status writes: the decision, then Active; only then the Job (the webhook admits a pod
  // under the task's account only while the task is Active).
  const int activeWrite = indexOf(log, "update agenttasks/status", 2);
  ASSERT_GE(activeWrite, 0);
  EXPECT_GT(indexOf(log, "create jobs"), activeWrite);
  EXPECT_EQ(stringAt(h.task(key), {"status", "workload", "jobName"}), n.job());
  Json job = *h.fake.object(res::kJobs, {"team-a", n.job()});
  EXPECT_EQ(job["spec"]["template"]["spec"]["serviceAccountName"], n.serviceAccount());
  job["status"] = {{"conditions", {{{"type", "Complete"}, {"status", "True"}}}}};
  ASSERT_TRUE(h.fake.updateStatus(res::kJobs, job).ok());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Succeeded");
  EXPECT_EQ(conditionStatus(h.task(key), kConditionReady), "False/WorkloadSucceeded");
  expectCredentialObjects(key, false);
  EXPECT_TRUE(h.exists(res::kJobs, "team-a", n.job()));  // its outcome stays readable
}

TEST_F(ReconcilerTest, APassOnACacheBehindTheJobItStartedDoesNotCreateItAgain) {
  Json spec = OperatorHarness::taskSpec();
  spec["workload"] = {
      {"template", {{"spec", {{"containers", {{{"name", "agent"}, {"image", "a:1"}}}}}}}}};
  const std::string key = activeTask("t1", spec);
  // What a cache from before the status write naming the Job shows: no jobName.
  Json stale = h.task(key);
  stale["status"].erase("workload");
  ASSERT_TRUE(h.fake.updateStatus(kAgentTasks, stale).ok());
  h.fake.clearActions();
  ASSERT_TRUE(h.reconciler->reconcile(key).ok());
  EXPECT_EQ(indexOf(h.writeLog(), "create jobs"), -1);
  // A restarted process has no such memory: it asks, and the API server says AlreadyExists.
  h.restart();
  ASSERT_TRUE(h.reconciler->reconcile(key).ok());
  EXPECT_GE(indexOf(h.writeLog(), "create jobs"), 0);
  EXPECT_EQ(stringAt(h.task(key), {"status", "workload", "jobName"}), h.names(key).job());
}

TEST_F(ReconcilerTest, AFailedJobFailsTheTaskAndRevokes) {
  const std::string key = activeWorkloadTask();
  endJob(key, "Failed");
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Failed");
  expectCredentialObjects(key, false);
}

TEST_F(ReconcilerTest, AHostTakeoverWorkloadIsDeniedNamingTheFieldsAndNothingRuns) {
  h.addPolicy("allow-refactor", Json::object());
  Json spec = OperatorHarness::taskSpec();
  spec["workload"] = {{"template", Json::parse(R"({"spec": {
      "hostPID": true, "hostNetwork": true,
      "containers": [{"name": "x", "image": "busybox", "securityContext": {"privileged": true},
                      "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
      "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}})")}};
  const std::string key = h.createTask("t1", spec);
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Denied");
  const std::string reason = stringAt(h.task(key), {"status", "policy", "reason"});
  for (const char* field : {"spec.workload.template.spec.hostPID: true",
                            "spec.workload.template.spec.hostNetwork: true",
                            "spec.workload.template.spec.containers[0].securityContext.privileged",
                            "spec.workload.template.spec.volumes[0].hostPath"}) {
    EXPECT_NE(reason.find(field), std::string::npos) << field << "\n" << reason;
  }
  ASSERT_EQ(h.evidenceKinds(), std::vector<std::string>{"denied"});
  EXPECT_EQ((*h.evidence)[0]["details"]["reason"], reason);
  EXPECT_FALSE(h.exists(res::kJobs, "team-a", h.names(key).job()));
  expectCredentialObjects(key, false);
}

TEST_F(ReconcilerTest, ThePolicysPodCreatorsAreCopiedIntoStatusAndTheAuthorizedRecord) {
  const Json creators = Json::parse(R"([{"kind":"User","name":"launcher"}])");
  h.addPolicy("allow-refactor", {{"allow", {{"podCreators", creators}}}});
  const std::string key = h.createTask("t1", OperatorHarness::taskSpec());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  ASSERT_EQ(h.phase(key), "Active");
  EXPECT_EQ(h.task(key)["status"]["policy"]["podCreators"], creators);
  EXPECT_EQ((*h.evidence)[0]["kind"], "authorized");
  EXPECT_EQ((*h.evidence)[0]["details"]["podCreators"], creators);
}

TEST_F(ReconcilerTest, AnAllowedWorkloadsBoundIsInTheAuthorizedRecord) {
  const std::string key = activeWorkloadTask();
  EXPECT_EQ((*h.evidence)[0]["kind"], "authorized");
  EXPECT_EQ((*h.evidence)[0]["details"]["workload"],
            Json({{"podSecurity", "baseline"}, {"allowedCapabilities", Json::array()}}));
  EXPECT_NE(stringAt(h.task(key), {"status", "policy", "reason"})
                .find("workload within Pod Security baseline"),
            std::string::npos);
}

// The webhook learns that a task is Active from a watch event, a moment after the status write:
// the pass that issues does not create the Job, the next one (brought by that event) does.
TEST_F(ReconcilerTest, ThePassThatIssuesLeavesTheJobToTheNextPass) {
  const std::string key = newWorkloadTask();
  passUntilActive(key);
  EXPECT_EQ(indexOf(h.writeLog(), "create jobs"), -1);
  ASSERT_TRUE(h.reconciler->reconcile(key).ok());
  EXPECT_GE(indexOf(h.writeLog(), "create jobs"), 0);
}

namespace {
Status webhookRefusal() {
  Status refusal(StatusCode::kPermissionDenied,
                 "admission webhook \"validate.tasklease.io\" denied the request: TL008");
  refusal.withHttpCode(403).withReason("Forbidden");
  return refusal;
}
}  // namespace

TEST_F(ReconcilerTest, AJobRefusedJustAfterIssuanceIsTriedAgainShortlyWithoutAWarning) {
  const std::string key = newWorkloadTask();
  h.fake.failNext("create", "jobs", webhookRefusal());
  auto first = h.reconcileUntilStable(key);
  ASSERT_TRUE(first.ok()) << first.status().toString();
  ASSERT_TRUE(first->requeueAfter.has_value());
  EXPECT_LE(*first->requeueAfter, std::chrono::seconds(1));
  EXPECT_EQ(h.phase(key), "Active");
  EXPECT_FALSE(contains(h.eventReasons(), "WorkloadRefused"));
  EXPECT_FALSE(h.exists(res::kJobs, "team-a", h.names(key).job()));
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_TRUE(h.exists(res::kJobs, "team-a", h.names(key).job()));
}

TEST_F(ReconcilerTest, AJobRefusedByAdmissionIsRetriedNotTakenAsFailure) {
  const std::string key = newWorkloadTask();
  passUntilActive(key);
  // Long after issuance a refusal is no longer the webhook catching up: a Warning, an error.
  h.advance(std::chrono::seconds(11));
  h.fake.failNext("create", "jobs", webhookRefusal());
  auto first = h.reconcileUntilStable(key);
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(h.phase(key), "Active");
  EXPECT_TRUE(contains(h.eventReasons(), "WorkloadRefused"));
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_TRUE(h.exists(res::kJobs, "team-a", h.names(key).job()));
  EXPECT_EQ(h.phase(key), "Active");
}

TEST_F(ReconcilerTest, CompletionStopsARunningJob) {
  Json spec = OperatorHarness::taskSpec();
  spec["workload"] = {
      {"template", {{"spec", {{"containers", {{{"name", "agent"}, {"image", "a:1"}}}}}}}}};
  const std::string key = activeTask("t1", spec);
  setCompleted(key);
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_FALSE(h.exists(res::kJobs, "team-a", h.names(key).job()));
}

TEST_F(ReconcilerTest, AnX509TaskGetsAnSvidWhoseSerialGoesOnTheCrlAtRevocation) {
  Json spec = OperatorHarness::taskSpec();
  spec["credential"] = {{"type", "X509SVID"}};
  spec["ttl"] = "5m";
  const std::string key = activeTask("t1", spec);
  const TaskNames n = h.names(key);
  const Json secret = *h.fake.object(res::kSecrets, {"team-a", n.secret()});
  EXPECT_EQ(secret["type"], "kubernetes.io/tls");
  const auto pem = secretValue(secret, "tls.crt");
  ASSERT_TRUE(pem.has_value());
  auto info = inspectCertificate(*pem);
  ASSERT_TRUE(info.ok());
  const std::string spiffeId =
      "spiffe://example.org/ns/team-a/task/t1/uid/" + kube::uidOf(h.task(key));
  EXPECT_EQ(info->uris, std::vector<std::string>{spiffeId});
  EXPECT_EQ(stringAt(h.task(key), {"status", "credential", "spiffeID"}), spiffeId);
  EXPECT_EQ(formatRfc3339(info->notAfter), stringAt(h.task(key), {"status", "expiresAt"}));
  EXPECT_NE(h.cas.current()->issuerOf(*pem), nullptr);
  EXPECT_EQ(secretValue(secret, "ca.crt"), h.cas.current()->bundlePem());
  EXPECT_EQ(stringAt(h.task(key), {"status", "credential", "serial"}), info->serialHex);
  EXPECT_TRUE(h.api.tokens().empty());

  setCompleted(key);
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.phase(key), "Succeeded");
  const Json crl = *h.fake.object(res::kConfigMaps, {"tasklease-system", "tasklease-crl"});
  const Json state = Json::parse(crl["data"]["revoked.json"].get<std::string>());
  ASSERT_EQ(state["entries"].size(), 1u);
  EXPECT_EQ(state["entries"][0]["serial"], info->serialHex);
  EXPECT_EQ(state["entries"][0]["task"], "team-a/t1");
  expectCredentialObjects(key, false);
}

TEST_F(ReconcilerTest, ATaskCreatedUnderADeletedTasksNameGetsAnotherSpiffeId) {
  Json spec = OperatorHarness::taskSpec();
  spec["credential"] = {{"type", "X509SVID"}};
  spec["ttl"] = "5m";
  const auto uriOf = [&](const std::string& key) {
    const Json secret = *h.fake.object(res::kSecrets, {"team-a", h.names(key).secret()});
    auto info = inspectCertificate(*secretValue(secret, "tls.crt"));
    EXPECT_TRUE(info.ok());
    return info.ok() && info->uris.size() == 1 ? info->uris[0] : std::string();
  };
  const std::string key = activeTask("t1", spec);
  const std::string first = uriOf(key);
  const std::string firstUid = kube::uidOf(h.task(key));
  ASSERT_TRUE(h.fake.remove(kAgentTasks, kube::ObjectKey::parse(key)).ok());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  ASSERT_FALSE(h.fake.object(kAgentTasks, kube::ObjectKey::parse(key)).has_value());

  // Someone else asks for a task of the same name: a different delegation, a different identity.
  ASSERT_EQ(h.createTask("t1", spec), key);
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  ASSERT_EQ(h.phase(key), "Active");
  const std::string second = uriOf(key);
  const std::string secondUid = kube::uidOf(h.task(key));
  ASSERT_NE(firstUid, secondUid);
  EXPECT_NE(first, second);
  EXPECT_EQ(first, "spiffe://example.org/ns/team-a/task/t1/uid/" + firstUid);
  EXPECT_EQ(second, "spiffe://example.org/ns/team-a/task/t1/uid/" + secondUid);
  // The issued record names it too, for whoever reads the evidence.
  std::vector<std::string> recorded;
  for (const Json& r : *h.evidence) {
    if (r.value("kind", std::string()) == "issued") recorded.push_back(r["details"]["spiffeID"]);
  }
  EXPECT_EQ(recorded, (std::vector<std::string>{first, second}));
}

TEST_F(ReconcilerTest, WhatIsLeftOfAGoneTaskIsSwept) {
  const TaskRef ghost{"team-a", "ghost", "uid-ghost"};
  const TaskNames n = taskNames(ghost.name, ghost.uid);
  ASSERT_TRUE(h.fake
                  .create(res::kServiceAccounts,
                          buildServiceAccount(ghost, n, CredentialType::kServiceAccountToken))
                  .ok());
  ASSERT_TRUE(h.fake.create(res::kRoleBindings, buildRoleBinding(ghost, n)).ok());
  ASSERT_TRUE(h.reconciler->reconcile("team-a/ghost").ok());
  EXPECT_FALSE(h.exists(res::kServiceAccounts, "team-a", n.base));
  EXPECT_FALSE(h.exists(res::kRoleBindings, "team-a", n.base));
}

TEST_F(ReconcilerTest, TheSweepRevokesLeftoversOfGoneAndFinishedTasksOnly) {
  const std::string active = activeTask("active");
  const std::string done = h.createTask("done", OperatorHarness::taskSpec());
  ASSERT_TRUE(h.reconcileUntilStable(done).ok());
  setCompleted(done);
  ASSERT_TRUE(h.reconcileUntilStable(done).ok());
  ASSERT_EQ(h.phase(done), "Succeeded");
  // Someone re-creates a Role for the finished task, and a gone task left a Secret.
  const TaskRef doneRef = taskRefOf(h.task(done));
  ASSERT_TRUE(h.fake.create(res::kRoles, buildRole(doneRef, h.names(done), {})).ok());
  const TaskRef ghost{"team-b", "ghost", "uid-ghost"};
  Json leftover = {{"metadata", issuedObjectMeta(ghost, taskNames("ghost", "uid-ghost").base)}};
  ASSERT_TRUE(h.fake.create(res::kSecrets, leftover).ok());

  auto report = h.sweeper.sweepAll();
  ASSERT_TRUE(report.ok()) << report.status().toString();
  EXPECT_TRUE(report->errors.empty());
  EXPECT_EQ(report->revokedTasks.size(), 2u);
  EXPECT_FALSE(h.exists(res::kRoles, "team-a", h.names(done).base));
  EXPECT_FALSE(h.exists(res::kSecrets, "team-b", taskNames("ghost", "uid-ghost").base));
  expectCredentialObjects(active, true);
}

TEST_F(ReconcilerTest, TheSweepCountsOnlyWhatItDeletedWhenItFinishesAnUnfinishedRevocation) {
  const std::string key = activeTask("t1");
  const std::string name = h.names(key).base;
  const std::string secret = h.names(key).secret();
  const auto hold = [&](Json finalizers) {
    ASSERT_TRUE(h.setFinalizers(res::kSecrets, secret, std::move(finalizers)).ok());
  };
  // A revocation deletes the RoleBinding and the ServiceAccount, the Secret is held by a
  // finalizer, and the API server fails the Roles' deletion.
  hold({"example.com/hold"});
  h.fake.failNext("deletecollection", "roles", unavailable("the API server is away"));
  const auto first =
      h.revoker.revokeAll({targetOf(h, key, CredentialType::kServiceAccountToken)}, h.now());
  ASSERT_FALSE(first[0].ok());
  ASSERT_FALSE(h.exists(res::kRoleBindings, "team-a", name));
  ASSERT_FALSE(h.exists(res::kServiceAccounts, "team-a", name));
  // The Secret goes, and so does the task, before any revocation pass finishes (the garbage
  // collector has not reached the task's Role yet: as here, without owners).
  hold(Json::array());
  ASSERT_TRUE(
      h.fake.patch(res::kRoles, {"team-a", name}, {{"metadata", {{"ownerReferences", nullptr}}}})
          .ok());
  ASSERT_TRUE(h.fake
                  .patch(kAgentTasks, kube::ObjectKey::parse(key),
                         {{"metadata", {{"finalizers", Json::array()}}}})
                  .ok());
  ASSERT_TRUE(h.fake.remove(kAgentTasks, kube::ObjectKey::parse(key), kube::DeleteOptions{}).ok());
  ASSERT_FALSE(h.fake.object(kAgentTasks, kube::ObjectKey::parse(key)).has_value());
  ASSERT_TRUE(h.exists(res::kRoles, "team-a", name));

  auto report = h.sweeper.sweepAll();
  ASSERT_TRUE(report.ok()) << report.status().toString();
  EXPECT_TRUE(report->errors.empty());
  ASSERT_EQ(report->revokedTasks.size(), 1u);
  // Only what the sweep deleted itself: the rest was the first pass's.
  EXPECT_EQ(report->deleted, (std::vector<std::string>{"Role/" + name}));
  EXPECT_FALSE(h.exists(res::kRoles, "team-a", name));
}

TEST_F(ReconcilerTest, EachTransitionIsRecordedOnceInAChainThatVerifies) {
  h.addPolicy("allow-refactor", Json::object());
  const std::string key =
      h.createTask("t1", OperatorHarness::taskSpec(),
                   {{kRequestedByAnnotation, R"({"username":"alice","groups":["dev"]})"}});
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  setCompleted(key);
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  ASSERT_TRUE(h.reconcileUntilStable(key).ok());
  EXPECT_EQ(h.evidenceKinds(), (std::vector<std::string>{"delegated", "authorized", "issued",
                                                         "completed", "revoked"}));
  EXPECT_EQ((*h.evidence)[0]["actor"], "alice");
  EXPECT_EQ((*h.evidence)[2]["details"]["fingerprint"],
            stringAt(h.task(key), {"status", "credential", "fingerprint"}));
  std::stringstream lines;
  for (const auto& r : *h.evidence) lines << r.dump() << "\n";
  const VerifyResult verified = verifyEvidence(lines);
  EXPECT_TRUE(verified.ok()) << verified.message;
  EXPECT_EQ(verified.records, 5u);
  // The stamp carries no signature: the delegation is recorded as unverified.
  EXPECT_EQ(stringAt(h.task(key), {"status", "delegation", "username"}), "alice");
  EXPECT_EQ(h.task(key)["status"]["delegation"]["verified"], false);
}

// The annotations the mutating webhook writes for team-a/name, signed with key now.
Json webhookStamp(const SigningKey& key, const std::string& name, const Json& spec) {
  const std::string who = requestedByValue({"alice", "uid-alice", {"dev"}});
  auto sig = signStamp(key, {"team-a", name, "", spec}, who, std::chrono::system_clock::now());
  if (!sig.ok()) throw std::runtime_error(sig.status().toString());
  return {{kRequestedByAnnotation, who}, {kRequestedBySignatureAnnotation, *sig}};
}

TEST_F(ReconcilerTest, AStampThatVerifiesIsAVerifiedDelegationThatAStrictPolicyAllows) {
  h.addPolicy("strict", {{"requireVerifiedDelegation", true}});
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(h.stamps.keys.add(key->publicPem()).ok());
  const Json spec = OperatorHarness::taskSpec();
  const std::string key1 = h.createTask("t1", spec, webhookStamp(*key, "t1", spec));
  ASSERT_TRUE(h.reconcileUntilStable(key1).ok());
  const Json task = h.task(key1);
  EXPECT_EQ(task["status"]["delegation"]["verified"], true);
  EXPECT_EQ(stringAt(task, {"status", "delegation", "uid"}), "uid-alice");
  EXPECT_EQ(h.phase(key1), "Active");
  EXPECT_EQ((*h.evidence)[0]["kind"], "delegated");
  EXPECT_EQ((*h.evidence)[0]["details"]["verified"], true);
}

TEST_F(ReconcilerTest, AStampFromAnotherKeyIsDeniedByAStrictPolicyWithTheReason) {
  h.addPolicy("strict", {{"requireVerifiedDelegation", true}});
  auto published = SigningKey::generate();
  auto forged = SigningKey::generate();
  ASSERT_TRUE(published.ok() && forged.ok());
  ASSERT_TRUE(h.stamps.keys.add(published->publicPem()).ok());
  const Json spec = OperatorHarness::taskSpec();
  const std::string key1 = h.createTask("t1", spec, webhookStamp(*forged, "t1", spec));
  ASSERT_TRUE(h.reconcileUntilStable(key1).ok());
  const Json task = h.task(key1);
  EXPECT_EQ(h.phase(key1), "Denied");
  EXPECT_EQ(task["status"]["delegation"]["verified"], false);
  const std::string reason = stringAt(task, {"status", "policy", "reason"});
  EXPECT_NE(reason.find("is not verified"), std::string::npos) << reason;
  EXPECT_NE(reason.find("unknown-key"), std::string::npos) << reason;
  EXPECT_EQ((*h.evidence)[0]["details"]["verified"], false);
}

TEST_F(ReconcilerTest, AStampRewrittenToAddSystemMastersToTheSameUsernameIsNotVerified) {
  h.addPolicy("strict", {{"requireVerifiedDelegation", true}});
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(h.stamps.keys.add(key->publicPem()).ok());
  const Json spec = OperatorHarness::taskSpec();
  Json stamp = webhookStamp(*key, "t1", spec);
  // Alice's own stamp, with her name and uid, and a group she was not in when she asked.
  stamp[kRequestedByAnnotation] =
      requestedByValue({"alice", "uid-alice", {"dev", "system:masters"}});
  const std::string key1 = h.createTask("t1", spec, stamp);
  ASSERT_TRUE(h.reconcileUntilStable(key1).ok());
  const Json task = h.task(key1);
  EXPECT_EQ(h.phase(key1), "Denied");
  EXPECT_EQ(task["status"]["delegation"]["verified"], false);
  const std::string reason = stringAt(task, {"status", "policy", "reason"});
  EXPECT_NE(reason.find("bad-signature"), std::string::npos) << reason;
  EXPECT_EQ((*h.evidence)[0]["kind"], "delegated");
  EXPECT_EQ((*h.evidence)[0]["details"]["verified"], false);
  EXPECT_EQ((*h.evidence)[0]["details"]["reason"].get<std::string>().rfind("bad-signature", 0), 0u)
      << (*h.evidence)[0].dump();
  EXPECT_TRUE(h.api.tokens().empty());
}

TEST_F(ReconcilerTest, UnreadableStampKeysLeaveTheTaskUndecidedUntilTheyCanBeRead) {
  h.addPolicy("strict", {{"requireVerifiedDelegation", true}});
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(h.stamps.keys.add(key->publicPem()).ok());
  h.stamps.failure = unavailable("configmaps \"tasklease-delegation-keys\" is forbidden");
  const Json spec = OperatorHarness::taskSpec();
  const std::string key1 = h.createTask("t1", spec, webhookStamp(*key, "t1", spec));
  auto stuck = h.reconcileUntilStable(key1);
  EXPECT_FALSE(stuck.ok());
  EXPECT_FALSE(h.reconcileUntilStable(key1).ok());
  EXPECT_FALSE(h.task(key1).contains("status") && h.task(key1)["status"].contains("policy"));
  h.stamps.failure.reset();
  ASSERT_TRUE(h.reconcileUntilStable(key1).ok());
  EXPECT_EQ(h.phase(key1), "Active");
}

}  // namespace
}  // namespace tasklease::op

namespace tasklease::op {
namespace {

// An EventRecorder whose writes block until `open`, as a stuck API server's would.
class BlockingRecorder final : public kube::EventRecorder {
 public:
  Status record(const Json&, kube::EventType, const std::string& reason,
                const std::string&) override {
    std::unique_lock lock(mu);
    ++entered;
    cv.notify_all();
    cv.wait(lock, [&] { return open; });
    reasons.push_back(reason);
    return {};
  }
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  int entered = 0;
  std::vector<std::string> reasons;
};

TEST(AsyncEventRecorderTest, EventsAreWrittenInOrderOffTheCallersThreadAndDroppedWhenFull) {
  BlockingRecorder inner;
  {
    AsyncEventRecorder events(inner, 2);
    ASSERT_TRUE(events.record(Json::object(), kube::EventType::kNormal, "A", "").ok());
    {
      std::unique_lock lock(inner.mu);
      inner.cv.wait(lock, [&] { return inner.entered == 1; });  // A is being written
    }
    EXPECT_TRUE(events.record(Json::object(), kube::EventType::kNormal, "B", "").ok());
    EXPECT_TRUE(events.record(Json::object(), kube::EventType::kNormal, "C", "").ok());
    const Status full = events.record(Json::object(), kube::EventType::kNormal, "D", "");
    EXPECT_EQ(full.code(), StatusCode::kResourceExhausted);
    EXPECT_EQ(events.dropped(), 1u);
    {
      std::lock_guard lock(inner.mu);
      inner.open = true;
    }
    inner.cv.notify_all();
  }  // the destructor writes what is queued
  EXPECT_EQ(inner.reasons, (std::vector<std::string>{"A", "B", "C"}));
}

}  // namespace
}  // namespace tasklease::op
