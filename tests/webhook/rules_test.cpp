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
                            const RuleConfig& config = {},
                            const std::optional<Requester>& requester = std::nullopt) {
  auto w = workloadOf(object, object["kind"].get<std::string>(), "team-a");
  EXPECT_TRUE(w.ok()) << w.status().toString();
  if (!w.ok()) return {};
  for (PodUnderReview& pod : w->pods) {
    if (requester) pod.requester = RequestUser{requester->username, requester->uid};
  }
  return evaluateWorkload(*w, state, config, testNow());
}

// As the webhook judges it: created by `requester`.
WorkloadEvaluation evaluateAs(const Requester& requester, const Json& object,
                              const ClusterState& state, const RuleConfig& config = {}) {
  return evaluate(object, state, config, requester);
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

// ---- TL003: every volume type that reads a Secret ----

TEST_F(RulesTest, TL003SecretReferencesOfEveryOtherVolumeType) {
  Json spec = cleanSpec();
  spec["volumes"] = {
      {{"name", "store"},
       {"csi",
        {{"driver", "secrets-store.csi.k8s.io"},
         {"nodePublishSecretRef", {{"name", "vault-creds"}}}}}},
      {{"name", "ceph"}, {"cephfs", {{"monitors", {"m"}}, {"secretRef", {{"name", "ceph"}}}}}},
      {{"name", "rbd"}, {"rbd", {{"image", "i"}, {"secretRef", {{"name", "rbd"}}}}}},
      {{"name", "iscsi"}, {"iscsi", {{"iqn", "q"}, {"secretRef", {{"name", "chap"}}}}}},
      {{"name", "flex"}, {"flexVolume", {{"driver", "d"}, {"secretRef", {{"name", "flex"}}}}}},
      {{"name", "azure"}, {"azureFile", {{"secretName", "azure"}, {"shareName", "s"}}}},
      {{"name", "cinder"}, {"cinder", {{"volumeID", "v"}, {"secretRef", {{"name", "os"}}}}}},
      {{"name", "sio"}, {"scaleIO", {{"system", "s"}, {"secretRef", {{"name", "sio"}}}}}},
      {{"name", "sos"}, {"storageos", {{"volumeName", "v"}, {"secretRef", {{"name", "sos"}}}}}},
      // The same sources without a Secret are no concern of TL003.
      {{"name", "csi-plain"}, {"csi", {{"driver", "ebs.csi.aws.com"}}}},
      {{"name", "ceph-file"}, {"cephfs", {{"monitors", {"m"}}, {"secretFile", "/etc/ceph/s"}}}}};
  const auto e = evaluate(pod(spec), state_);
  ASSERT_THAT(
      found(e),
      ElementsAre(
          "TL003@spec.volumes[0].csi.nodePublishSecretRef",
          "TL003@spec.volumes[1].cephfs.secretRef", "TL003@spec.volumes[2].rbd.secretRef",
          "TL003@spec.volumes[3].iscsi.secretRef", "TL003@spec.volumes[4].flexVolume.secretRef",
          "TL003@spec.volumes[5].azureFile.secretName", "TL003@spec.volumes[6].cinder.secretRef",
          "TL003@spec.volumes[7].scaleIO.secretRef", "TL003@spec.volumes[8].storageos.secretRef"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("Secret \"vault-creds\""));
  EXPECT_THAT(e.violations[5].message, HasSubstr("Secret \"azure\" (azureFile.secretName)"));
}

TEST_F(RulesTest, TL003ProjectedSecretInAWorkloadTemplate) {
  // A second, independent test of projected sources: in a template, among other sources.
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "deploy-sa";
  state_.add(serviceAccount("deploy-sa", "StatefulSet/web"));
  spec["volumes"] = {
      {{"name", "mixed"},
       {"projected",
        {{"sources",
          {{{"downwardAPI", {{"items", Json::array()}}}},
           {{"serviceAccountToken", {{"path", "t"}, {"expirationSeconds", 600}}}},
           {{"secret", {{"name", "db"}, {"items", {{{"key", "password"}, {"path", "p"}}}}}}}}}}}}};
  const auto e = evaluate(workload("StatefulSet", spec), state_);
  ASSERT_THAT(found(e), ElementsAre("TL003@spec.template.spec.volumes[0].projected.sources[2]"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("Secret \"db\""));
}

// ---- TL004 after the kubelet's $(VAR) expansion, and in command and args ----

const std::string kToken = std::string("ghp_") + "8f3KzQ1vLw9XbT2mN7pR4sY6uA0cE5dGhJ2k";

TEST_F(RulesTest, TL004ATokenSplitOverTwoVariablesIsJoinedByExpansion) {
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {envValue("PART_A", kToken.substr(0, 14)),
                                  envValue("PART_B", kToken.substr(14)),
                                  envValue("GH", "$(PART_A)$(PART_B)")};
  const auto e = evaluate(pod(spec), state_);
  ASSERT_THAT(found(e), ElementsAre("TL004@spec.containers[0].env[2]"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("github-token"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("expands"));
  EXPECT_THAT(e.violations[0].message, Not(HasSubstr(kToken.substr(4, 8))));
  EXPECT_THAT(e.violations[0].message, Not(HasSubstr(kToken.substr(18, 8))));
}

TEST_F(RulesTest, TL004ATokenPaddedWithAnEmptyVariableIsWholeAgain) {
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {
      envValue("NOTHING", ""),
      envValue("GH", kToken.substr(0, 10) + "$(NOTHING)" + kToken.substr(10))};
  EXPECT_THAT(found(evaluate(pod(spec), state_)), ElementsAre("TL004@spec.containers[0].env[1]"));
}

TEST_F(RulesTest, TL004ExpansionFollowsTheKubeletsRules) {
  // A reference to a variable declared later, an undefined one, one from a Secret (unknown
  // here), and an escaped one all stay as written, as the kubelet leaves them: no token.
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {envValue("EARLY", kToken.substr(0, 14) + "$(LATE)"),
                                  envValue("LATE", kToken.substr(14)),
                                  envValue("UNDEFINED", kToken.substr(0, 14) + "$(NOPE)"),
                                  envSecretRef("FROM_SECRET", "s"),
                                  envValue("ESCAPED", kToken.substr(0, 14) + "$$(LATE)"),
                                  envValue("SECRETLY", kToken.substr(0, 14) + "$(FROM_SECRET)")};
  EXPECT_THAT(found(evaluate(pod(spec), state_)), ElementsAre("TL001@spec.containers[0].env[3]"));
  // A value is expanded once, where it is declared: EARLY keeps "$(LATE)" for whoever reads it.
  spec["containers"][0]["args"] = {"--repo", "$(EARLY)"};
  EXPECT_THAT(found(evaluate(pod(spec), state_)), ElementsAre("TL001@spec.containers[0].env[3]"));
  // Args see every variable, those declared after the ones they name included.
  spec["containers"][0]["args"] = {"--repo", kToken.substr(0, 14) + "$(LATE)"};
  EXPECT_THAT(found(evaluate(pod(spec), state_)),
              ElementsAre("TL001@spec.containers[0].env[3]", "TL004@spec.containers[0].args[1]"));
}

TEST_F(RulesTest, TL004ReadsArgsAndCommandWithTheSameDetectorsAndNoEcho) {
  Json spec = cleanSpec();
  spec["containers"][0]["command"] = {
      "sh", "-c", "curl -H 'Authorization: token " + kToken + "' https://api.github.com"};
  spec["containers"][0]["args"] = {"--verbose",
                                   "--token",
                                   kToken,
                                   "--db-password=Xk9#mQ2vL8@pR4!wT6z",
                                   "--password-file=/etc/db/password",
                                   "--name=plain"};
  Json init = container("init");
  init["args"] = {"API_KEY=Zk9xQ2pLr8TmW4vNs7YbHc3"};
  spec["initContainers"] = {init};
  const auto e = evaluate(pod(spec), state_);
  ASSERT_THAT(
      found(e),
      ElementsAre("TL004@spec.containers[0].command[2]", "TL004@spec.containers[0].args[2]",
                  "TL004@spec.containers[0].args[3]", "TL004@spec.initContainers[0].args[0]"));
  for (const auto& v : e.violations) {
    EXPECT_THAT(v.message, Not(HasSubstr(kToken.substr(4, 8))));
    EXPECT_THAT(v.message, Not(HasSubstr("Xk9#mQ2")));
    EXPECT_THAT(v.message, Not(HasSubstr("Zk9xQ2p")));
  }
  EXPECT_THAT(e.violations[1].message, HasSubstr("args[2]"));
}

TEST_F(RulesTest, TL004ArgsSeeTheTokenTheEnvironmentBuilds) {
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {envValue("A", kToken.substr(0, 20))};
  spec["containers"][0]["args"] = {"--token=$(A)" + kToken.substr(20)};
  EXPECT_THAT(found(evaluate(pod(spec), state_)), ElementsAre("TL004@spec.containers[0].args[0]"));
}

TEST_F(RulesTest, TL004ExpansionBeyondItsBoundIsRefusedNotSkipped) {
  // Each level doubles what the one before expands to, so the last would be 2^40 x 16 bytes. What
  // lies past the bound cannot be judged, so it must not pass unjudged: the pod is refused, once.
  Json env = Json::array({envValue("V0", "0123456789abcdef")});
  for (int i = 1; i <= 40; ++i) {
    const std::string prev = "$(V" + std::to_string(i - 1) + ")";
    env.push_back(envValue("V" + std::to_string(i), prev + prev));
  }
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = env;
  spec["containers"][0]["args"] = {"$(V40)"};
  // V15 brings the pod's expansions to 1 MiB less 32 bytes; V16 would pass the bound.
  const auto e = evaluate(pod(spec), state_);
  ASSERT_THAT(found(e), ElementsAre("TL004@spec.containers[0].env[16]"));
  EXPECT_THAT(e.violations[0].message, HasSubstr("more than 1 MiB"));
}

// ---- TL007: the API server's token volume is left alone, exactly ----

TEST_F(RulesTest, TL007AVolumeNamedLikeTheApiServersWithALongerTokenIsStillRefused) {
  state_.add(serviceAccount("deploy-sa", "Deployment/web"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "deploy-sa";
  spec["volumes"] = {
      {{"name", "kube-api-access-mine"},
       {"projected",
        {{"sources",
          {{{"serviceAccountToken", {{"path", "t"}, {"expirationSeconds", 86400}}}},
           {{"serviceAccountToken", {{"path", "u"}, {"expirationSeconds", 3608}}}},
           {{"serviceAccountToken", {{"path", "v"}, {"expirationSeconds", 3607}}}}}}}}}};
  const std::string at = "TL007@spec.template.spec.volumes[0].projected.sources[";
  EXPECT_THAT(found(evaluate(workload("Deployment", spec), state_)),
              ElementsAre(at + "0].serviceAccountToken.expirationSeconds",
                          at + "1].serviceAccountToken.expirationSeconds"));
}

// ---- TL008: only what is made for the task may run under its ServiceAccount ----

Requester user(const std::string& name, const std::string& uid = "") {
  return {name, uid, {"system:authenticated"}};
}

Json taskPod(const Json& owner = Json()) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  spec["volumes"] = {{{"name", "cred"}, {"secret", {{"secretName", "tl-build-credential"}}}}};
  Json p = pod(spec, {{"tasklease.io/task", "build"}}, "tl-build-x7k2p");
  if (!owner.is_null()) p["metadata"]["ownerReferences"] = {owner};
  return p;
}

Json jobOwner(const std::string& name) {
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"name", name},
          {"uid", "job-uid"},
          {"controller", true}};
}

TEST_F(RulesTest, TL008APodUnderATaskIsAdmittedFromItsDelegator) {
  EXPECT_THAT(found(evaluateAs(alice(), taskPod(), state_)), IsEmpty());
}

TEST_F(RulesTest, TL008AnotherUserCannotBorrowTheTasksCredential) {
  auto e = evaluateAs(user("bob", "u-2"), taskPod(), state_);
  // Refused, and the credential Secret is no longer the pod's to mount.
  ASSERT_THAT(found(e), ElementsAre("TL003@spec.volumes[0]", "TL008@spec.serviceAccountName"));
  EXPECT_THAT(e.violations[1].message, HasSubstr("delegated by \"alice\", by \"bob\""));
  // The delegator's name with another uid is another user.
  EXPECT_THAT(found(evaluateAs(user("alice", "u-9"), taskPod(), state_)),
              Contains("TL008@spec.serviceAccountName"));
  // Claiming to be a pod of the task's Job does not help a user.
  EXPECT_THAT(found(evaluateAs(user("bob"), taskPod(jobOwner("tl-build")), state_)),
              Contains("TL008@spec.serviceAccountName"));
}

TEST_F(RulesTest, TL008PodsOfTheTasksJobAreAdmittedFromTheJobController) {
  for (const std::string controller :
       {"system:serviceaccount:kube-system:job-controller", "system:kube-controller-manager"}) {
    EXPECT_THAT(found(evaluateAs(user(controller), taskPod(jobOwner("tl-build")), state_)),
                IsEmpty())
        << controller;
  }
  // Another Job's pods, or pods without the Job as controller, are not the task's.
  EXPECT_THAT(found(evaluateAs(user(std::string(kJobControllerServiceAccountUser)),
                               taskPod(jobOwner("other")), state_)),
              Contains("TL008@spec.serviceAccountName"));
  Json notController = jobOwner("tl-build");
  notController["controller"] = false;
  EXPECT_THAT(found(evaluateAs(user(std::string(kJobControllerServiceAccountUser)),
                               taskPod(notController), state_)),
              Contains("TL008@spec.serviceAccountName"));
  // The Job controller's identities are a setting.
  RuleConfig config;
  config.jobControllerUsernames = {"system:serviceaccount:kube-system:custom-jobs"};
  EXPECT_THAT(found(evaluateAs(user("system:serviceaccount:kube-system:custom-jobs"),
                               taskPod(jobOwner("tl-build")), state_, config)),
              IsEmpty());
  EXPECT_THAT(found(evaluateAs(user(std::string(kJobControllerServiceAccountUser)),
                               taskPod(jobOwner("tl-build")), state_, config)),
              Contains("TL008@spec.serviceAccountName"));
}

TEST_F(RulesTest, TL008TheJobRecordedInTheTasksStatusIsTheTasksJob) {
  Json task = agentTask("build", "Active");
  task["status"]["workload"] = {{"jobName", "build-runner"}};
  state_.add(task);
  const Requester jobs = user(std::string(kJobControllerServiceAccountUser));
  EXPECT_THAT(found(evaluateAs(jobs, taskPod(jobOwner("build-runner")), state_)), IsEmpty());
  EXPECT_THAT(found(evaluateAs(jobs, taskPod(jobOwner("tl-build")), state_)),
              Contains("TL008@spec.serviceAccountName"));
}

TEST_F(RulesTest, TL008TheTasksJobIsAdmittedFromTheOperatorOnly) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  Json job = workload("Job", spec, {{"tasklease.io/task", "build"}});
  job["metadata"]["name"] = "tl-build";
  job["metadata"]["ownerReferences"] = {{{"apiVersion", "tasklease.io/v1alpha1"},
                                         {"kind", "AgentTask"},
                                         {"name", "build"},
                                         {"uid", "uid-build"},
                                         {"controller", true}}};
  RuleConfig config;
  config.operatorUsernames = {"system:serviceaccount:tasklease:tasklease-operator"};
  const Requester op = user("system:serviceaccount:tasklease:tasklease-operator");
  EXPECT_THAT(found(evaluateAs(op, job, state_, config)), IsEmpty());
  EXPECT_THAT(found(evaluateAs(user("bob"), job, state_, config)),
              ElementsAre("TL008@spec.template.spec.serviceAccountName"));
  // Without the flag nobody is the operator; an earlier task of the same name is not this one.
  EXPECT_THAT(found(evaluateAs(op, job, state_)),
              ElementsAre("TL008@spec.template.spec.serviceAccountName"));
  job["metadata"]["ownerReferences"][0]["uid"] = "uid-earlier";
  EXPECT_THAT(found(evaluateAs(op, job, state_, config)),
              ElementsAre("TL008@spec.template.spec.serviceAccountName"));
  // The delegator may make workloads under the task's ServiceAccount.
  EXPECT_THAT(found(evaluateAs(
                  alice(), workload("Deployment", spec, {{"tasklease.io/task", "build"}}), state_)),
              IsEmpty());
}

TEST_F(RulesTest, TL008OfflineWhoCreatesAPodIsNotKnownSoItIsANote) {
  const auto e = evaluate(taskPod(), state_);
  EXPECT_THAT(found(e), IsEmpty());
  ASSERT_EQ(e.notes.size(), 1U);
  EXPECT_EQ(e.notes[0].rule, RuleId::kTL008);
  EXPECT_THAT(e.notes[0].message, HasSubstr("who creates it is not known here"));
}

// ---- a task's workload template, judged as the operator will render it ----

PodFindings checkTemplate(const Json& spec) {
  PodUnderReview pod;
  pod.ns = "team-a";
  pod.specPath = "spec.workload.template.spec";
  pod.labelsPath = "spec.workload.template.metadata.labels";
  pod.spec = JsonView(spec);
  pod.taskWorkloadTemplate = true;
  const ObjectSetClusterState none(LookupState::kUnknown);
  return checkPod(pod, none, RuleConfig{}, testNow());
}

std::vector<std::string> codes(const PodFindings& f) {
  std::vector<std::string> out;
  for (const auto& v : f.violations) out.push_back(std::string(ruleCode(v.rule)) + "@" + v.path);
  return out;
}

TEST(TaskWorkloadTemplateTest, TheRulesTheOperatorMakesTrueAreLeftToIt) {
  // No ServiceAccount, no task label: the operator sets both. The credential volume is its own.
  const Json spec = {
      {"containers", {container()}},
      {"volumes", {{{"name", "tasklease-credential"}, {"secret", {{"secretName", "any"}}}}}}};
  const PodFindings f = checkTemplate(spec);
  EXPECT_THAT(codes(f), IsEmpty());
  EXPECT_THAT(f.notes, IsEmpty());
}

TEST(TaskWorkloadTemplateTest, EveryOtherRuleApplies) {
  Json c = container();
  c["env"] = {envSecretRef("A", "s"), envValue("GH", kToken)};
  c["envFrom"] = {{{"secretRef", {{"name", "all"}}}}};
  const Json spec = {
      {"serviceAccountName", "default"},
      {"containers", {c}},
      {"volumes",
       {{{"name", "db"}, {"secret", {{"secretName", "db"}}}},
        {{"name", "tok"},
         {"projected",
          {{"sources", {{{"serviceAccountToken", {{"expirationSeconds", 86400}}}}}}}}}}}};
  EXPECT_THAT(codes(checkTemplate(spec)),
              ElementsAre("TL001@spec.workload.template.spec.containers[0].env[0]",
                          "TL002@spec.workload.template.spec.containers[0].envFrom[0]",
                          "TL003@spec.workload.template.spec.volumes[0]",
                          "TL004@spec.workload.template.spec.containers[0].env[1]",
                          "TL007@spec.workload.template.spec.volumes[1].projected.sources[0]."
                          "serviceAccountToken.expirationSeconds"));
  EXPECT_THAT(
      taskWorkloadTemplateRules(),
      ElementsAre(RuleId::kTL001, RuleId::kTL002, RuleId::kTL003, RuleId::kTL004, RuleId::kTL007));
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
