#include "operator/objects.h"

#include <gtest/gtest.h>

#include "operator/conditions.h"
#include "operator/naming.h"
#include "operator/task.h"
#include "tests/operator/operator_fixture.h"

namespace tasklease::op {
namespace {

const TaskRef kTask{"team-a", "refactor", "uid-1"};

Json taskObject(const Json& spec, const std::string& name = "refactor") {
  return {{"metadata",
           {{"name", name},
            {"namespace", "team-a"},
            {"uid", "uid-1"},
            {"creationTimestamp", "2030-01-01T00:00:00Z"}}},
          {"spec", spec}};
}

Json podTemplate() {
  return {{"metadata", {{"labels", {{"app", "agent"}}}}},
          {"spec",
           {{"serviceAccount", "default"},
            {"restartPolicy", "Always"},
            {"initContainers", Json::array({{{"name", "init"}, {"image", "busybox"}}})},
            {"containers", Json::array({{{"name", "agent"}, {"image", "agent:1"}}})}}}};
}

TEST(NamingTest, NamesAreDeterministicPerTaskAndDifferPerUid) {
  const TaskNames a = taskNames("refactor", "uid-1");
  EXPECT_EQ(a.base, taskNames("refactor", "uid-1").base);
  EXPECT_NE(a.base, taskNames("refactor", "uid-2").base);
  EXPECT_EQ(a.base.rfind("tl-refactor-", 0), 0u) << a.base;
  EXPECT_EQ(a.base.size(), std::string("tl-refactor-").size() + 8);
  EXPECT_EQ(a.serviceAccount(), a.secret());
}

TEST(NamingTest, ALongNameIsCutToADnsLabel) {
  const std::string name = std::string(50, 'a') + "-" + std::string(12, 'b');
  const TaskNames n = taskNames(name, "uid-1");
  EXPECT_LE(n.base.size(), 63u);
  EXPECT_EQ(n.base.find("--"), std::string::npos) << n.base;  // no '-' left at the cut
}

TEST(NamingTest, LabelsOwnerReferenceAndSpiffeId) {
  const Json labels = taskLabels(kTask);
  EXPECT_EQ(labels[kTaskLabel], "refactor");
  EXPECT_EQ(labels[kTaskUidLabel], "uid-1");
  EXPECT_EQ(labels[kManagedByLabel], "tasklease");
  const Json owner = taskOwnerReference(kTask);
  EXPECT_EQ(owner["kind"], "AgentTask");
  EXPECT_EQ(owner["apiVersion"], "tasklease.io/v1alpha1");
  EXPECT_EQ(owner["uid"], "uid-1");
  EXPECT_EQ(owner["controller"], true);
  EXPECT_EQ(spiffeIdOf("example.org", kTask),
            "spiffe://example.org/ns/team-a/task/refactor/uid/uid-1");
}

TEST(TaskSpecTest, ParsesEveryFieldAndDefaultsTheCoreGroup) {
  Json spec = testing::OperatorHarness::taskSpec();
  spec["scope"]["rules"][0].erase("apiGroups");
  spec["credential"] = {{"type", "X509SVID"}, {"audiences", {"vault"}}};
  spec["workload"] = {{"template", podTemplate()}};
  auto parsed = parseTaskSpec(taskObject(spec));
  ASSERT_TRUE(parsed.ok()) << parsed.status().toString();
  EXPECT_EQ(parsed->ttl, std::chrono::minutes(30));
  EXPECT_EQ(parsed->rules.at(0).apiGroups, std::vector<std::string>{""});
  EXPECT_EQ(parsed->credentialType, CredentialType::kX509Svid);
  EXPECT_EQ(parsed->audiences, std::vector<std::string>{"vault"});
  EXPECT_TRUE(parsed->workloadTemplate.has_value());
  EXPECT_EQ(*taskDeadline(taskObject(spec), parsed->ttl), *parseRfc3339("2030-01-01T00:30:00Z"));
}

TEST(TaskSpecTest, ErrorsNameTheField) {
  Json spec = testing::OperatorHarness::taskSpec();
  spec["ttl"] = "soon";
  EXPECT_EQ(parseTaskSpec(taskObject(spec)).status().message().rfind("spec.ttl: ", 0), 0u);
  spec = testing::OperatorHarness::taskSpec();
  spec["context"].erase("tool");
  EXPECT_EQ(parseTaskSpec(taskObject(spec)).status().message(),
            "spec.context.tool: required, a non-empty string");
  spec = testing::OperatorHarness::taskSpec();
  spec["workload"] = {{"template", {{"spec", {{"containers", Json::array()}}}}}};
  EXPECT_NE(parseTaskSpec(taskObject(spec))
                .status()
                .message()
                .find("spec.workload.template.spec.containers"),
            std::string::npos);
  const auto longName =
      parseTaskSpec(taskObject(testing::OperatorHarness::taskSpec(), std::string(64, 'x')));
  EXPECT_EQ(longName.status().message().rfind("metadata.name: ", 0), 0u);
}

TEST(ObjectsTest, TheServiceAccountNeverAutomountsAToken) {
  const Json sa = buildServiceAccount(kTask, taskNames("refactor", "uid-1"),
                                      CredentialType::kServiceAccountToken);
  EXPECT_EQ(sa["automountServiceAccountToken"], false);
  EXPECT_EQ(sa["metadata"]["labels"][kTaskUidLabel], "uid-1");
  EXPECT_EQ(sa["metadata"]["ownerReferences"][0]["uid"], "uid-1");
}

TEST(ObjectsTest, TheRoleGrantsTheRequestedRulesAndTheBindingNamesTheAccount) {
  const TaskNames n = taskNames("refactor", "uid-1");
  const Json role = buildRole(kTask, n, {PolicyRule{{}, {"configmaps"}, {"x"}, {"get"}}});
  EXPECT_EQ(role["rules"][0]["apiGroups"], Json::array({""}));
  EXPECT_EQ(role["rules"][0]["resourceNames"], Json::array({"x"}));
  const Json binding = buildRoleBinding(kTask, n);
  EXPECT_EQ(binding["roleRef"]["name"], n.role());
  EXPECT_EQ(binding["subjects"][0]["name"], n.serviceAccount());
  EXPECT_EQ(binding["subjects"][0]["namespace"], "team-a");
}

TEST(ObjectsTest, TheJobRunsUnderTheTaskAccountWithTheCredentialMountedAndNoToken) {
  const TaskNames n = taskNames("refactor", "uid-1");
  auto job = buildJob(kTask, n, podTemplate(), std::chrono::seconds(600));
  ASSERT_TRUE(job.ok()) << job.status().toString();
  const Json& pod = (*job)["spec"]["template"];
  EXPECT_EQ(pod["metadata"]["labels"][kTaskLabel], "refactor");
  EXPECT_EQ(pod["metadata"]["labels"]["app"], "agent");
  EXPECT_EQ(pod["spec"]["serviceAccountName"], n.serviceAccount());
  EXPECT_FALSE(pod["spec"].contains("serviceAccount"));
  EXPECT_EQ(pod["spec"]["automountServiceAccountToken"], false);
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["volumes"],
            Json::array({{{"name", kCredentialVolume}, {"secret", {{"secretName", n.secret()}}}}}));
  for (const char* list : {"initContainers", "containers"}) {
    EXPECT_EQ(pod["spec"][list][0]["volumeMounts"][0]["mountPath"], kCredentialMountPath) << list;
    EXPECT_EQ(pod["spec"][list][0]["volumeMounts"][0]["readOnly"], true) << list;
  }
  EXPECT_EQ((*job)["spec"]["activeDeadlineSeconds"], 600);
  EXPECT_EQ((*job)["spec"]["backoffLimit"], 0);
  EXPECT_EQ((*job)["metadata"]["ownerReferences"][0]["uid"], "uid-1");

  // Building again from its own template adds nothing twice.
  auto again = buildJob(kTask, n, pod, std::chrono::seconds(600));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)["spec"]["template"], pod);
}

TEST(ObjectsTest, JobOutcomeFollowsItsConditions) {
  EXPECT_EQ(jobOutcome(Json::object()), JobOutcome::kRunning);
  EXPECT_EQ(
      jobOutcome({{"status", {{"conditions", {{{"type", "Complete"}, {"status", "True"}}}}}}}),
      JobOutcome::kSucceeded);
  EXPECT_EQ(jobOutcome({{"status", {{"conditions", {{{"type", "Failed"}, {"status", "True"}}}}}}}),
            JobOutcome::kFailed);
  EXPECT_EQ(jobOutcome({{"status", {{"conditions", {{{"type", "Failed"}, {"status", "False"}}}}}}}),
            JobOutcome::kRunning);
}

TEST(ConditionsTest, LastTransitionTimeMovesOnlyWhenTheStatusChanges) {
  Json status = Json::object();
  const TimePoint t0 = *parseRfc3339("2030-01-01T00:00:00Z");
  setCondition(status, "Ready", false, "Pending", "waiting", 1, t0);
  setCondition(status, "Ready", false, "Pending", "still waiting", 2, t0 + std::chrono::hours(1));
  const Json* ready = findCondition(status, "Ready");
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ((*ready)["lastTransitionTime"], "2030-01-01T00:00:00Z");
  EXPECT_EQ((*ready)["message"], "still waiting");
  EXPECT_EQ((*ready)["observedGeneration"], 2);
  setCondition(status, "Ready", true, "Active", "issued", 2, t0 + std::chrono::hours(2));
  EXPECT_EQ((*findCondition(status, "Ready"))["lastTransitionTime"], "2030-01-01T02:00:00Z");
  EXPECT_EQ(status["conditions"].size(), 1u);
}

}  // namespace
}  // namespace tasklease::op
