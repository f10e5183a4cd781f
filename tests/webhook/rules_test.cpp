#include "webhook/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/webhook/fixtures.h"
#include "webhook/policy.h"
#include "webhook/workload.h"

namespace tasklease::webhook {
namespace {

using namespace testing;  // NOLINT: the fixtures
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

WorkloadEvaluation evaluate(const Json& object, const ClusterState& state,
                            const RuleConfig& config = {}) {
  auto w = workloadOf(object, object["kind"].get<std::string>(), "team-a");
  EXPECT_TRUE(w.ok()) << w.status().toString();
  if (!w.ok()) return {};
  return evaluateWorkload(*w, state, config, testNow());
}

// "TL001@spec.containers[0].env[0]" for each violation.
std::vector<std::string> found(const WorkloadEvaluation& e) {
  std::vector<std::string> out;
  for (const auto& v : e.violations) out.push_back(std::string(ruleCode(v.rule)) + "@" + v.path);
  return out;
}

class RulesTest : public ::testing::Test {
 protected:
  ObjectSetClusterState state_ = standardState();
};

TEST_F(RulesTest, CompliantPodHasNoViolations) {
  EXPECT_THAT(found(evaluate(pod(cleanSpec()), state_)), IsEmpty());
}

TEST_F(RulesTest, TL001SecretKeyRefInAContainer) {
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {envValue("A", "1"), envSecretRef("DB_PASSWORD", "db")};
  auto e = evaluate(pod(spec), state_);
  EXPECT_THAT(found(e), ElementsAre("TL001@spec.containers[0].env[1]"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("\"db\""));
  EXPECT_THAT(e.violations[0].message, HasSubstr("AgentTask"));
}

TEST_F(RulesTest, TL001SecretKeyRefInAnInitContainer) {
  Json spec = cleanSpec();
  Json init = container("init");
  init["env"] = {envValue("A", "1"), envValue("B", "2"), envSecretRef("TOKEN", "t")};
  spec["initContainers"] = {init};
  EXPECT_THAT(found(evaluate(workload("Deployment", spec), state_)),
              Contains("TL001@spec.template.spec.initContainers[0].env[2]"));
  EXPECT_THAT(found(evaluate(pod(spec), state_)),
              ElementsAre("TL001@spec.initContainers[0].env[2]"));
}

TEST_F(RulesTest, TL001SecretKeyRefInAnEphemeralContainer) {
  Json spec = cleanSpec();
  Json debug = container("debug");
  debug["env"] = {envSecretRef("TOKEN", "t")};
  spec["ephemeralContainers"] = {debug};
  EXPECT_THAT(found(evaluate(pod(spec), state_)),
              ElementsAre("TL001@spec.ephemeralContainers[0].env[0]"));
}

TEST_F(RulesTest, TL002EnvFromSecretRef) {
  Json spec = cleanSpec();
  spec["containers"][0]["envFrom"] = {{{"configMapRef", {{"name", "cfg"}}}},
                                      {{"secretRef", {{"name", "all-the-keys"}}}}};
  auto e = evaluate(pod(spec), state_);
  EXPECT_THAT(found(e), ElementsAre("TL002@spec.containers[0].envFrom[1]"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("all-the-keys"));
}

TEST_F(RulesTest, TL003SecretVolumeAndProjectedSecret) {
  Json spec = cleanSpec();
  spec["volumes"] = {
      {{"name", "cfg"}, {"configMap", {{"name", "cfg"}}}},
      {{"name", "creds"}, {"secret", {{"secretName", "db"}}}},
      {{"name", "bundle"},
       {"projected",
        {{"sources", {{{"configMap", {{"name", "c"}}}}, {{"secret", {{"name", "s"}}}}}}}}}};
  EXPECT_THAT(found(evaluate(pod(spec), state_)),
              ElementsAre("TL003@spec.volumes[1]", "TL003@spec.volumes[2].projected.sources[1]"));
}

TEST_F(RulesTest, TL003AllowsTheActiveTaskCredential) {
  Json spec = {
      {"serviceAccountName", "tl-build"},
      {"containers", {container()}},
      {"volumes", {{{"name", "cred"}, {"secret", {{"secretName", "tl-build-credential"}}}}}}};
  EXPECT_THAT(found(evaluate(pod(spec, {{"tasklease.io/task", "build"}}), state_)), IsEmpty());
}

TEST_F(RulesTest, TL003RefusesAnotherSecretEvenUnderATask) {
  Json spec = {{"serviceAccountName", "tl-build"},
               {"containers", {container()}},
               {"volumes", {{{"name", "cred"}, {"secret", {{"secretName", "someone-else"}}}}}}};
  EXPECT_THAT(found(evaluate(pod(spec, {{"tasklease.io/task", "build"}}), state_)),
              ElementsAre("TL003@spec.volumes[0]"));
}

TEST_F(RulesTest, TL003RefusesTheCredentialOfATaskThatIsNotActive) {
  Json spec = {
      {"serviceAccountName", "tl-old"},
      {"containers", {container()}},
      {"volumes", {{{"name", "cred"}, {"secret", {{"secretName", "tl-old-credential"}}}}}}};
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "old"}}), state_);
  EXPECT_THAT(found(e), ElementsAre("TL003@spec.volumes[0]", "TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("Expired"));
}

TEST_F(RulesTest, TL004LiteralSecretNamesTheDetectorButNotTheValue) {
  const std::string token = std::string("ghp_") + "8f3KzQ1vLw9XbT2mN7pR4sY6uA0cE5dGhJ2k";
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {envValue("LOG_LEVEL", "debug"), envValue("GH", token)};
  auto e = evaluate(pod(spec), state_);
  ASSERT_THAT(found(e), ElementsAre("TL004@spec.containers[0].env[1]"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("github-token"));
  EXPECT_THAT(e.violations[0].message, Not(HasSubstr(token.substr(4, 8))));
}

TEST_F(RulesTest, TL005NoServiceAccount) {
  Json spec = cleanSpec();
  spec.erase("serviceAccountName");
  auto e = evaluate(pod(spec), state_);
  EXPECT_THAT(found(e), ElementsAre("TL005@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("tasklease.io/dedicated-to: Pod/web"));
}

TEST_F(RulesTest, TL005DefaultServiceAccountAlsoThroughTheDeprecatedField) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "default";
  EXPECT_THAT(found(evaluate(pod(spec), state_)), ElementsAre("TL005@spec.serviceAccountName"));
  spec.erase("serviceAccountName");
  spec["serviceAccount"] = "default";
  EXPECT_THAT(found(evaluate(pod(spec), state_)), ElementsAre("TL005@spec.serviceAccount"));
}

TEST_F(RulesTest, TL006SharedServiceAccount) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "shared";
  auto e = evaluate(pod(spec), state_);
  EXPECT_THAT(found(e), ElementsAre("TL006@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("tasklease.io/dedicated-to: Pod/web"));
}

TEST_F(RulesTest, TL006ServiceAccountDedicatedToAnotherWorkload) {
  auto e = evaluate(pod(cleanSpec(), {}, "other"), state_);
  EXPECT_THAT(found(e), ElementsAre("TL006@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("dedicated to Pod/web"));
}

TEST_F(RulesTest, TL006MissingServiceAccount) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "nobody";
  EXPECT_THAT(found(evaluate(pod(spec), state_)), ElementsAre("TL006@spec.serviceAccountName"));
}

TEST_F(RulesTest, TL006DedicatedToTheWorkloadKindIgnoringCase) {
  state_.add(serviceAccount("deploy-sa", "deployment/web"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "deploy-sa";
  EXPECT_THAT(found(evaluate(workload("Deployment", spec), state_)), IsEmpty());
  EXPECT_THAT(found(evaluate(workload("StatefulSet", spec), state_)),
              ElementsAre("TL006@spec.template.spec.serviceAccountName"));
}

TEST_F(RulesTest, TL006PodOfADeploymentMayUseTheDeploymentsServiceAccount) {
  state_.add(serviceAccount("deploy-sa", "Deployment/web"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "deploy-sa";
  Json p = pod(spec, {{"pod-template-hash", "5d8f7c"}}, "");
  p["metadata"].erase("name");
  p["metadata"]["generateName"] = "web-5d8f7c-";
  p["metadata"]["ownerReferences"] = {{{"apiVersion", "apps/v1"},
                                       {"kind", "ReplicaSet"},
                                       {"name", "web-5d8f7c"},
                                       {"controller", true}}};
  EXPECT_THAT(found(evaluate(p, state_)), IsEmpty());
  // A ReplicaSet whose hash does not match the pod's label is not the Deployment's.
  p["metadata"]["labels"]["pod-template-hash"] = "other";
  EXPECT_THAT(found(evaluate(p, state_)), ElementsAre("TL006@spec.serviceAccountName"));
}

TEST_F(RulesTest, TL006PodOfACronJobsJobMayUseTheCronJobsServiceAccount) {
  state_.add(serviceAccount("nightly-sa", "CronJob/nightly"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "nightly-sa";
  Json p = pod(spec, {}, "nightly-29384756-abcde");
  p["metadata"]["ownerReferences"] = {{{"apiVersion", "batch/v1"},
                                       {"kind", "Job"},
                                       {"name", "nightly-29384756"},
                                       {"controller", true}}};
  EXPECT_THAT(found(evaluate(p, state_)), IsEmpty());
}

TEST_F(RulesTest, TL007LongLivedProjectedToken) {
  Json spec = cleanSpec();
  spec["volumes"] = {
      {{"name", "tok"},
       {"projected",
        {{"sources",
          {{{"serviceAccountToken", {{"path", "t"}, {"expirationSeconds", 86400}}}},
           {{"serviceAccountToken", {{"path", "u"}, {"expirationSeconds", 600}}}}}}}}}};
  auto e = evaluate(pod(spec), state_);
  EXPECT_THAT(
      found(e),
      ElementsAre(
          "TL007@spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("86400"));
}

TEST_F(RulesTest, TL007UnsetExpirationIsTheOneHourDefault) {
  Json spec = cleanSpec();
  spec["volumes"] = {{{"name", "tok"},
                      {"projected", {{"sources", {{{"serviceAccountToken", {{"path", "t"}}}}}}}}}};
  EXPECT_THAT(found(evaluate(pod(spec), state_)), IsEmpty());
  RuleConfig strict;
  strict.maxTokenExpirationSeconds = 1800;
  EXPECT_THAT(
      found(evaluate(pod(spec), state_, strict)),
      ElementsAre(
          "TL007@spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"));
}

TEST_F(RulesTest, TL007LeavesTheApiServersInjectedTokenVolumeAlone) {
  // What the ServiceAccount admission plugin adds to every pod that automounts a token.
  Json injected = {{"name", "kube-api-access-x7k2p"},
                   {"projected",
                    {{"defaultMode", 420},
                     {"sources",
                      {{{"serviceAccountToken", {{"expirationSeconds", 3607}, {"path", "token"}}}},
                       {{"configMap", {{"name", "kube-root-ca.crt"}}}},
                       {{"downwardAPI", {{"items", Json::array()}}}}}}}}};
  Json spec = cleanSpec();
  spec["volumes"] = {injected};
  EXPECT_THAT(found(evaluate(pod(spec), state_)), IsEmpty());
  // The same lifetime in a volume of the workload's own is its choice, and flagged.
  spec["volumes"][0]["name"] = "my-token";
  EXPECT_THAT(
      found(evaluate(pod(spec), state_)),
      ElementsAre(
          "TL007@spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"));
}

TEST_F(RulesTest, TL008PodUnderAnActiveTaskWithItsLabelIsAdmitted) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "build"}}), state_);
  EXPECT_THAT(found(e), IsEmpty());
  ASSERT_TRUE(e.task.has_value());
  EXPECT_EQ(e.task->name, "build");
  EXPECT_EQ(e.task->uid, "uid-build");
}

TEST_F(RulesTest, TL008TaskNotActive) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-old";
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "old"}}), state_);
  EXPECT_THAT(found(e), ElementsAre("TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("Expired"));
}

// A task whose ending was seen is Revoking until every object is verified gone, which a
// finalizer can hold up indefinitely: meanwhile no pod may run under it or mount its credential.
TEST_F(RulesTest, TL008TaskRevokingRefusesAPodAndItsCredentialMount) {
  state_.add(agentTask("build", "Revoking"));
  Json spec = {
      {"serviceAccountName", "tl-build"},
      {"containers", {container()}},
      {"volumes", {{{"name", "cred"}, {"secret", {{"secretName", "tl-build-credential"}}}}}}};
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "build"}}), state_);
  EXPECT_THAT(found(e), ElementsAre("TL003@spec.volumes[0]", "TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[1].message, HasSubstr("is Revoking, not Active"));
}

TEST_F(RulesTest, TL008PodWithoutTheTaskLabel) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  EXPECT_THAT(found(evaluate(pod(spec), state_)),
              ElementsAre("TL008@metadata.labels[tasklease.io/task]"));
  EXPECT_THAT(found(evaluate(workload("Job", spec), state_)),
              ElementsAre("TL008@spec.template.metadata.labels[tasklease.io/task]"));
}

TEST_F(RulesTest, TL008TaskGone) {
  state_.add(taskServiceAccount("tl-gone", "gone"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-gone";
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "gone"}}), state_);
  EXPECT_THAT(found(e), ElementsAre("TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("no longer exists"));
}

TEST_F(RulesTest, TL008CredentialPastItsExpiry) {
  state_.add(agentTask("build", "Active", "2026-03-01T11:59:00Z"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "build"}}), state_);
  EXPECT_THAT(found(e), ElementsAre("TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("expired"));
}

TEST_F(RulesTest, TL008ServiceAccountOfAnEarlierTaskWithTheSameName) {
  Json task = agentTask("build", "Active");
  task["metadata"]["uid"] = "uid-recreated";
  state_.add(task);
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "build"}}), state_);
  EXPECT_THAT(found(e), ElementsAre("TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("earlier AgentTask"));
}

TEST_F(RulesTest, TL008ForgedTaskLabelsOnAnotherServiceAccount) {
  state_.add(taskServiceAccount("forged", "build"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "forged";
  auto e = evaluate(pod(spec, {{"tasklease.io/task", "build"}}), state_);
  EXPECT_THAT(found(e), ElementsAre("TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("run under \"tl-build\""));
}

TEST_F(RulesTest, EveryWorkloadKindIsCheckedAtItsTemplatePath) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "shared";
  spec["containers"][0]["env"] = {envSecretRef("A", "s")};
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"Pod", "spec"},
      {"Deployment", "spec.template.spec"},
      {"ReplicaSet", "spec.template.spec"},
      {"StatefulSet", "spec.template.spec"},
      {"DaemonSet", "spec.template.spec"},
      {"Job", "spec.template.spec"},
      {"ReplicationController", "spec.template.spec"},
      {"CronJob", "spec.jobTemplate.spec.template.spec"},
  };
  for (const auto& [kind, path] : kinds) {
    EXPECT_THAT(found(evaluate(workload(kind, spec), state_)),
                ElementsAre("TL001@" + path + ".containers[0].env[0]",
                            "TL006@" + path + ".serviceAccountName"))
        << kind;
  }
}

TEST_F(RulesTest, EveryViolationInAPodIsReported) {
  Json spec = {{"containers", {container()}}, {"initContainers", {container("init")}}};
  spec["containers"][0]["env"] = {envSecretRef("A", "s")};
  spec["containers"][0]["envFrom"] = {{{"secretRef", {{"name", "s"}}}}};
  spec["initContainers"][0]["env"] = {envValue("PEM", "-----BEGIN PRIVATE KEY-----\nMIIB\n")};
  spec["volumes"] = {{{"name", "v"}, {"secret", {{"secretName", "s"}}}}};
  EXPECT_THAT(found(evaluate(pod(spec), state_)),
              ElementsAre("TL001@spec.containers[0].env[0]", "TL002@spec.containers[0].envFrom[0]",
                          "TL003@spec.volumes[0]", "TL004@spec.initContainers[0].env[0]",
                          "TL005@spec.serviceAccountName"));
}

TEST_F(RulesTest, WrongTypesInTheSpecAreIgnoredNotFatal) {
  Json spec = {{"serviceAccountName", 42},
               {"containers", "not-a-list"},
               {"initContainers", {{{"env", {1, "x", {{"valueFrom", 3}}}}}}},
               {"volumes",
                {{{"projected",
                   {{"sources", {{{"serviceAccountToken", {{"expirationSeconds", "1h"}}}}}}}}}}}};
  auto e = evaluate(pod(spec), state_);
  EXPECT_THAT(
      found(e),
      ElementsAre(
          "TL005@spec.serviceAccountName",
          "TL007@spec.volumes[0].projected.sources[0].serviceAccountToken.expirationSeconds"));
}

TEST_F(RulesTest, WorkloadWithoutAPodTemplateIsAnError) {
  Json d = {{"kind", "Deployment"}, {"metadata", {{"name", "x"}}}, {"spec", {{"replicas", 1}}}};
  auto w = workloadOf(d, "Deployment", "team-a");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(w.status().message(), HasSubstr("spec.template"));
}

TEST_F(RulesTest, UnknownClusterStateGivesNotesNotViolations) {
  ObjectSetClusterState offline(LookupState::kUnknown);
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "whoever";
  auto e = evaluate(pod(spec), offline);
  EXPECT_THAT(found(e), IsEmpty());
  ASSERT_EQ(e.notes.size(), 1U);
  EXPECT_EQ(e.notes[0].rule, RuleId::kTL006);
}

TEST_F(RulesTest, RuleCatalogueIsComplete) {
  ASSERT_EQ(allRules().size(), 8U);
  for (size_t i = 0; i < allRules().size(); ++i) {
    const auto& r = allRules()[i];
    EXPECT_EQ(parseRuleId(r.code), r.id);
    EXPECT_EQ(r.code, "TL00" + std::to_string(i + 1));
  }
  EXPECT_FALSE(parseRuleId("TL009").has_value());
}

}  // namespace
}  // namespace tasklease::webhook
