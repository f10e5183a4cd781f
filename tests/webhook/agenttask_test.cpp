#include "webhook/agenttask.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "common/base64.h"
#include "common/metrics.h"
#include "tests/mocks/fake_api_client.h"
#include "tests/mocks/fake_stamp_verifier.h"
#include "tests/webhook/fixtures.h"
#include "webhook/agenttask_review.h"
#include "webhook/endpoint.h"

namespace tasklease::webhook {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // NOLINT: the fixtures

Json rule(const Json& groups, const Json& resources, const Json& verbs,
          const Json& names = Json()) {
  Json r = {{"apiGroups", groups}, {"resources", resources}, {"verbs", verbs}};
  if (!names.is_null()) r["resourceNames"] = names;
  return r;
}

Json taskSpec(const Json& rules = Json::array({rule({""}, {"configmaps"}, {"get"})}),
              const std::string& ttl = "30m") {
  return {{"agent", "refactor-bot"},
          {"purpose", "Refactor billing"},
          {"context", {{"tool", "git"}, {"dataSensitivity", "internal"}, {"environment", "dev"}}},
          {"ttl", ttl},
          {"scope", {{"rules", rules}}},
          {"completed", false}};
}

Json task(const Json& spec, const Json& annotations = Json()) {
  Json t = {{"apiVersion", "tasklease.io/v1alpha1"},
            {"kind", "AgentTask"},
            {"metadata", {{"name", "t1"}, {"namespace", "team-a"}}},
            {"spec", spec}};
  if (!annotations.is_null()) t["metadata"]["annotations"] = annotations;
  return t;
}

AdmissionRequest request(const Json& object, const std::string& operation = "CREATE",
                         const Json& oldObject = Json()) {
  AdmissionRequest r;
  r.uid = "req-1";
  r.group = "tasklease.io";
  r.version = "v1alpha1";
  r.kind = "AgentTask";
  r.resource = "agenttasks";
  r.name = "t1";
  r.ns = "team-a";
  r.operation = operation;
  r.userInfo = {"alice", "uid-alice", {"dev", "system:authenticated"}, {}};
  r.object = object;
  r.oldObject = oldObject;
  return r;
}

bool mentions(const std::vector<std::string>& problems, const std::string& text) {
  for (const auto& p : problems) {
    if (p.find(text) != std::string::npos) return true;
  }
  return false;
}

// ---- spec checks ----

TEST(AgentTaskSpecTest, AWellFormedSpecHasNoProblems) {
  EXPECT_TRUE(agentTaskSpecProblems(taskSpec()).empty());
}

TEST(AgentTaskSpecTest, WildcardVerbsResourcesAndApiGroupsAreRefused) {
  auto problems = agentTaskSpecProblems(
      taskSpec(Json::array({rule({"*"}, {"*"}, {"*"}), rule({""}, {"pods/*"}, {"get"})})));
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[0].verbs[0]: \"*\" is not allowed"))
      << problems[0];
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[0].resources[0]: \"*\" is a wildcard"));
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[0].apiGroups[0]: \"*\" is not allowed"));
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[1].resources[0]: \"pods/*\" is a wildcard"));
}

TEST(AgentTaskSpecTest, EscalateBindAndImpersonateAreRefused) {
  auto problems = agentTaskSpecProblems(taskSpec(
      Json::array({rule({"rbac.authorization.k8s.io"}, {"roles"}, {"get", "escalate", "bind"}),
                   rule({""}, {"users"}, {"impersonate"})})));
  EXPECT_EQ(problems.size(), 3u);
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[0].verbs[1]: \"escalate\""));
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[0].verbs[2]: \"bind\""));
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[1].verbs[0]: \"impersonate\""));
}

TEST(AgentTaskSpecTest, UnparsableOrMissingTtlIsRefused) {
  EXPECT_TRUE(mentions(agentTaskSpecProblems(taskSpec(Json::array(), "soon")), "spec.ttl"));
  Json noTtl = taskSpec();
  noTtl.erase("ttl");
  EXPECT_TRUE(mentions(agentTaskSpecProblems(noTtl), "spec.ttl: required"));
}

TEST(AgentTaskSpecTest, ServiceAccountTokenTtlBelowTenMinutesIsRefusedButX509SvidMayBeShorter) {
  auto problems = agentTaskSpecProblems(taskSpec(Json::array(), "9m"));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0], HasSubstr("below 10m"));
  Json svid = taskSpec(Json::array(), "5m");
  svid["credential"] = {{"type", "X509SVID"}};
  EXPECT_TRUE(agentTaskSpecProblems(svid).empty());
  EXPECT_TRUE(agentTaskSpecProblems(taskSpec(Json::array(), "10m")).empty());
  EXPECT_TRUE(mentions(agentTaskSpecProblems(taskSpec(Json::array(), "25h")), "outside 1m to 24h"));
}

TEST(AgentTaskSpecTest, ListsOfTheWrongTypeAreNamed) {
  Json spec = taskSpec(Json::array({{{"resources", "configmaps"}, {"verbs", {"get", 3}}}}));
  auto problems = agentTaskSpecProblems(spec);
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[0].resources: must be a list of strings"));
  EXPECT_TRUE(mentions(problems, "spec.scope.rules[0].verbs[1]: must be a string"));
  spec["credential"] = {{"type", "Password"}};
  EXPECT_TRUE(mentions(agentTaskSpecProblems(spec), "spec.credential.type"));
}

// ---- update checks ----

TEST(AgentTaskUpdateTest, CompletingTheTaskIsTheOnlySpecChangeAllowed) {
  const Json before = task(taskSpec());
  Json done = before;
  done["spec"]["completed"] = true;
  EXPECT_TRUE(agentTaskUpdateProblems(before, done).empty());
  EXPECT_TRUE(mentions(agentTaskUpdateProblems(done, before), "from true back to false"));
  Json longer = before;
  longer["spec"]["ttl"] = "1h";
  EXPECT_TRUE(
      mentions(agentTaskUpdateProblems(before, longer), "spec.ttl: the spec cannot change"));
  Json more = before;
  more["spec"]["scope"]["rules"][0]["verbs"].push_back("update");
  EXPECT_TRUE(mentions(agentTaskUpdateProblems(before, more), "spec.scope"));
}

TEST(AgentTaskUpdateTest, MetadataChangesOtherThanTheStampAreAllowed) {
  const Json before = task(taskSpec(), {{kRequestedByAnnotation, "x"}});
  Json after = before;
  after["metadata"]["finalizers"] = {"tasklease.io/revoke"};
  after["metadata"]["labels"] = {{"team", "billing"}};
  EXPECT_TRUE(agentTaskUpdateProblems(before, after).empty());
}

TEST(AgentTaskUpdateTest, TheStampCanBeNeitherAddedChangedNorRemoved) {
  const Json stamped = task(taskSpec(), {{kRequestedByAnnotation, R"({"username":"alice"})"},
                                         {kRequestedBySignatureAnnotation, "sig"}});
  Json changed = stamped;
  changed["metadata"]["annotations"][kRequestedByAnnotation] = R"({"username":"root"})";
  EXPECT_TRUE(mentions(agentTaskUpdateProblems(stamped, changed),
                       std::string("metadata.annotations[") + kRequestedByAnnotation + "]"));
  Json removed = stamped;
  removed["metadata"].erase("annotations");
  EXPECT_EQ(agentTaskUpdateProblems(stamped, removed).size(), 2u);
  const Json bare = task(taskSpec());
  EXPECT_EQ(agentTaskUpdateProblems(bare, stamped).size(), 2u);
}

// ---- permission planning ----

TEST(PermissionPlanTest, OneCheckPerGroupResourceVerbAndName) {
  const auto checks = planPermissionChecks(taskSpec(
      Json::array({rule({""}, {"configmaps", "pods/log"}, {"get", "update"}, {"a", "b"})})));
  ASSERT_EQ(checks.size(), 8u);
  EXPECT_EQ(checks[0], (PermissionCheck{"get", "", "configmaps", "", "a"}));
  EXPECT_EQ(checks[1], (PermissionCheck{"get", "", "configmaps", "", "b"}));
  EXPECT_EQ(checks[2], (PermissionCheck{"update", "", "configmaps", "", "a"}));
  EXPECT_EQ(checks[4], (PermissionCheck{"get", "", "pods", "log", "a"}));
}

TEST(PermissionPlanTest, ARuleWithoutApiGroupsOrNamesIsTheCoreGroupAndEveryName) {
  const auto checks = planPermissionChecks(
      taskSpec(Json::array({{{"resources", {"secrets"}}, {"verbs", {"list"}}}})));
  ASSERT_EQ(checks.size(), 1u);
  EXPECT_EQ(checks[0], (PermissionCheck{"list", "", "secrets", "", ""}));
  EXPECT_EQ(describePermission(checks[0]), "list on secrets (apiGroup \"\")");
}

TEST(PermissionPlanTest, DuplicatesAreDroppedAndRefusedEntriesLeftOut) {
  const auto checks = planPermissionChecks(
      taskSpec(Json::array({rule({""}, {"configmaps"}, {"get", "*", "bind"}),
                            rule({"", "*"}, {"configmaps", "*"}, {"get"}),
                            rule({"apps"}, {"deployments"}, {"patch"}, {"web"})})));
  ASSERT_EQ(checks.size(), 2u);
  EXPECT_EQ(checks[0], (PermissionCheck{"get", "", "configmaps", "", ""}));
  EXPECT_EQ(checks[1], (PermissionCheck{"patch", "apps", "deployments", "", "web"}));
  EXPECT_EQ(describePermission(checks[1]),
            "patch on deployments (apiGroup \"apps\", resourceName \"web\")");
}

// ---- stamping ----

class StampTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto k = SigningKey::generate();
    ASSERT_TRUE(k.ok());
    key_ = std::make_unique<SigningKey>(std::move(*k));
    ASSERT_TRUE(stamps_.keys.add(key_->publicPem()).ok());
  }

  // The object as the API server stores it after applying the response's patch.
  Json applied(const AdmissionRequest& req, const AdmissionResponse& resp) {
    Json object = req.object.patch(Json::parse(resp.patch));
    object["metadata"]["creationTimestamp"] = formatRfc3339(testNow());
    return object;
  }

  std::unique_ptr<SigningKey> key_;
  kube::FakeStampVerifier stamps_;
};

TEST_F(StampTest, CreateIsPatchedWithTheRequesterAndASignatureThatVerifies) {
  const AdmissionRequest req = request(task(taskSpec()));
  const AdmissionResponse resp = stampAgentTask(req, *key_, testNow());
  ASSERT_TRUE(resp.allowed) << resp.message;
  const Json patch = Json::parse(resp.patch);
  ASSERT_EQ(patch.size(), 1u);
  EXPECT_EQ(patch[0]["path"], "/metadata/annotations");
  const Json object = applied(req, resp);
  auto who = parseRequestedBy(
      object["metadata"]["annotations"][kRequestedByAnnotation].get<std::string>());
  ASSERT_TRUE(who.ok());
  EXPECT_EQ(*who, (Requester{"alice", "uid-alice", {"dev", "system:authenticated"}}));
  const StampCheck check = verifyStamp(object, stamps_.keys);
  EXPECT_TRUE(check.verified()) << check.message;
}

TEST_F(StampTest, ExistingAnnotationsAreKeptAndTheKeysEscapedInThePointer) {
  const AdmissionRequest req = request(task(taskSpec(), {{"team", "billing"}}));
  const AdmissionResponse resp = stampAgentTask(req, *key_, testNow());
  ASSERT_TRUE(resp.allowed);
  const Json patch = Json::parse(resp.patch);
  ASSERT_EQ(patch.size(), 2u);
  EXPECT_EQ(patch[0]["path"], "/metadata/annotations/tasklease.io~1requested-by");
  const Json object = applied(req, resp);
  EXPECT_EQ(object["metadata"]["annotations"]["team"], "billing");
  EXPECT_TRUE(verifyStamp(object, stamps_.keys).verified());
}

TEST_F(StampTest, AClientSuppliedStampOrSignatureIsRefused) {
  for (const char* k : {kRequestedByAnnotation, kRequestedBySignatureAnnotation}) {
    const AdmissionResponse resp = stampAgentTask(
        request(task(taskSpec(), {{k, R"({"username":"root"})"}})), *key_, testNow());
    EXPECT_FALSE(resp.allowed);
    EXPECT_EQ(resp.code, 403);
    EXPECT_THAT(resp.message, HasSubstr(k));
    EXPECT_TRUE(resp.patch.empty());
  }
}

TEST_F(StampTest, ARequestWithoutAUserIsRefused) {
  AdmissionRequest req = request(task(taskSpec()));
  req.userInfo = {};
  const AdmissionResponse resp = stampAgentTask(req, *key_, testNow());
  EXPECT_FALSE(resp.allowed);
  EXPECT_THAT(resp.message, HasSubstr("userInfo.username"));
}

// ---- the reviewer ----

// Answers from a table of what the user holds: "verb resource" (every name) or
// "verb resource/name"; checks in `unanswered` ("verb resource") get no answer.
class FakeAccessReviewer final : public AccessReviewer {
 public:
  std::vector<AccessAnswer> review(const UserInfo& user, const std::string& ns,
                                   const std::vector<PermissionCheck>& checks,
                                   std::chrono::milliseconds) override {
    lastUser = user.username;
    lastNs = ns;
    asked += checks.size();
    std::vector<AccessAnswer> out;
    for (const auto& c : checks) {
      if (truncateAfter && out.size() == *truncateAfter) break;
      const std::string key = c.verb + " " + c.resource;
      if (unanswered.count(key) > 0) {
        out.push_back({false, false, "context deadline exceeded"});
      } else {
        const bool named = !c.resourceName.empty() && held.count(key + "/" + c.resourceName) > 0;
        out.push_back({true, held.count(key) > 0 || named, ""});
        checked.push_back(c);
      }
    }
    return out;
  }
  std::set<std::string> held;
  std::set<std::string> unanswered;
  std::optional<size_t> truncateAfter;
  size_t asked = 0;
  std::vector<PermissionCheck> checked;
  std::string lastUser, lastNs;
};

class AgentTaskReviewerTest : public StampTest {
 protected:
  void SetUp() override {
    StampTest::SetUp();
    reviewer_ = std::make_unique<AgentTaskReviewer>(*key_, stamps_, access_);
  }

  // A CREATE as the validating webhook sees it: stamped by the mutating one.
  AdmissionRequest stampedCreate(const Json& spec) {
    AdmissionRequest req = request(task(spec));
    const ReviewOutcome m = reviewer_->mutate(req, testNow());
    EXPECT_TRUE(m.response.allowed) << m.response.message;
    req.object = applied(req, m.response);
    return req;
  }

  FakeAccessReviewer access_;
  std::unique_ptr<AgentTaskReviewer> reviewer_;
};

const Json kUpdateConfigMaps = Json::array({rule({""}, {"configmaps"}, {"get", "update"})});

TEST_F(AgentTaskReviewerTest, ATaskWithinTheRequestersPermissionsIsAdmittedAndRecorded) {
  access_.held = {"get configmaps", "update configmaps"};
  const ReviewOutcome v =
      reviewer_->validate(stampedCreate(taskSpec(kUpdateConfigMaps)), testNow());
  EXPECT_TRUE(v.response.allowed) << v.response.message;
  EXPECT_EQ(v.decision, Decision::kAllowed);
  EXPECT_EQ(access_.asked, 2u);
  EXPECT_EQ(access_.lastUser, "alice");
  EXPECT_EQ(access_.lastNs, "team-a");
  ASSERT_EQ(v.evidence.size(), 1u);
  EXPECT_EQ(v.evidence[0].kind, EvidenceKind::kDelegated);
  EXPECT_EQ(v.evidence[0].actor, "alice");
}

TEST_F(AgentTaskReviewerTest, EachPermissionTheRequesterLacksIsNamedInTheDenial) {
  access_.held = {"get configmaps"};
  const ReviewOutcome v =
      reviewer_->validate(stampedCreate(taskSpec(kUpdateConfigMaps)), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 403);
  EXPECT_THAT(v.response.message, HasSubstr("update on configmaps"));
  EXPECT_THAT(v.response.message, Not(HasSubstr("get on configmaps")));
  EXPECT_THAT(v.response.message, HasSubstr("\"alice\" does not hold in namespace team-a"));
  ASSERT_EQ(v.evidence.size(), 1u);
  EXPECT_EQ(v.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(v.evidence[0].details["reason"], "permissions");
}

TEST_F(AgentTaskReviewerTest, AnUnansweredReviewRefusesTheTask) {
  access_.held = {"get configmaps", "update configmaps"};
  access_.unanswered = {"update configmaps"};
  const ReviewOutcome v =
      reviewer_->validate(stampedCreate(taskSpec(kUpdateConfigMaps)), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 503);
  EXPECT_THAT(v.response.message, HasSubstr("1 of 2 SubjectAccessReviews unanswered"));
}

TEST_F(AgentTaskReviewerTest, FewerAnswersThanChecksRefusesTheTask) {
  access_.held = {"get configmaps", "update configmaps"};
  access_.truncateAfter = 1;
  const ReviewOutcome v =
      reviewer_->validate(stampedCreate(taskSpec(kUpdateConfigMaps)), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 503);
}

TEST_F(AgentTaskReviewerTest, AnInvalidSpecIsRefusedBeforeAnyAccessReview) {
  const ReviewOutcome v = reviewer_->validate(
      stampedCreate(taskSpec(Json::array({rule({""}, {"configmaps"}, {"get", "escalate"})}))),
      testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 422);
  EXPECT_THAT(v.response.message, HasSubstr("\"escalate\" is not allowed"));
  EXPECT_EQ(access_.asked, 0u);
  ASSERT_EQ(v.evidence.size(), 1u);
  EXPECT_EQ(v.evidence[0].kind, EvidenceKind::kRejected);
}

TEST_F(AgentTaskReviewerTest, ATaskTheMutatingWebhookDidNotStampIsRefused) {
  access_.held = {"get configmaps"};
  const ReviewOutcome v = reviewer_->validate(request(task(taskSpec())), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 403);
  EXPECT_THAT(v.response.message, HasSubstr(kRequestedByAnnotation));
  EXPECT_EQ(access_.asked, 0u);
}

TEST_F(AgentTaskReviewerTest, AStampNamingSomeoneElseIsRefused) {
  access_.held = {"get configmaps"};
  AdmissionRequest req = stampedCreate(taskSpec());
  req.userInfo.username = "bob";
  const ReviewOutcome v = reviewer_->validate(req, testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_THAT(v.response.message, HasSubstr("the stamp names \"alice\""));
}

TEST_F(AgentTaskReviewerTest, UnreadableKeysRefuseTheTask) {
  access_.held = {"get configmaps"};
  AdmissionRequest req = stampedCreate(taskSpec());
  stamps_.failure = unavailable("configmaps is forbidden");
  const ReviewOutcome v = reviewer_->validate(req, testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 503);
  EXPECT_THAT(v.response.message, HasSubstr("cannot verify the delegation stamp"));
}

TEST_F(AgentTaskReviewerTest, UpdatesThatRewriteTheStampOrTheSpecAreRefusedCompletionIsNot) {
  const Json before = stampedCreate(taskSpec()).object;
  Json done = before;
  done["spec"]["completed"] = true;
  EXPECT_TRUE(reviewer_->validate(request(done, "UPDATE", before), testNow()).response.allowed);
  Json rewritten = before;
  rewritten["metadata"]["annotations"][kRequestedByAnnotation] =
      requestedByValue({"root", "", {"system:masters"}});
  ReviewOutcome v = reviewer_->validate(request(rewritten, "UPDATE", before), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_THAT(v.response.message, HasSubstr("can never be added, changed or removed"));
  ASSERT_EQ(v.evidence.size(), 1u);
  EXPECT_EQ(v.evidence[0].kind, EvidenceKind::kRejected);
  Json longer = before;
  longer["spec"]["ttl"] = "2h";
  v = reviewer_->validate(request(longer, "UPDATE", before), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_THAT(v.response.message, HasSubstr("spec.ttl"));
}

TEST_F(AgentTaskReviewerTest, DryRunDenialsLeaveNoEvidence) {
  AdmissionRequest req = stampedCreate(taskSpec(kUpdateConfigMaps));
  req.dryRun = true;
  const ReviewOutcome v = reviewer_->validate(req, testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_TRUE(v.evidence.empty());
}

TEST_F(AgentTaskReviewerTest, OtherKindsAndTheStatusSubresourceAreNotItsBusiness) {
  AdmissionRequest status = request(task(taskSpec()), "UPDATE", task(taskSpec()));
  status.subResource = "status";
  EXPECT_EQ(reviewer_->validate(status, testNow()).decision, Decision::kSkipped);
  AdmissionRequest p = request(pod(cleanSpec()));
  p.group = "";
  p.kind = "Pod";
  EXPECT_EQ(reviewer_->mutate(p, testNow()).decision, Decision::kSkipped);
  EXPECT_TRUE(reviewer_->mutate(p, testNow()).response.patch.empty());
}

// ---- the workload: what the requester must hold, and the rules its template meets ----

Json agentContainer() {
  return {{"name", "agent"}, {"image", "registry.example/agent:1"}};
}

Json workloadSpec(const Json& podSpec, const Json& rules = kUpdateConfigMaps) {
  Json spec = taskSpec(rules);
  spec["workload"] = {{"template", {{"spec", podSpec}}}};
  return spec;
}

const Json kAgentPod = {{"containers", {agentContainer()}}};

TEST_F(AgentTaskReviewerTest, AWorkloadNeedsARequesterWhoMayCreateJobs) {
  access_.held = {"get configmaps", "update configmaps"};
  const AdmissionRequest req = stampedCreate(workloadSpec(kAgentPod));
  ReviewOutcome v = reviewer_->validate(req, testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 403);
  EXPECT_THAT(v.response.message,
              HasSubstr("create on jobs (apiGroup \"batch\") (the Job that runs spec.workload)"));
  ASSERT_EQ(v.evidence.size(), 1u);
  EXPECT_EQ(v.evidence[0].details["reason"], "permissions");
  access_.held.insert("create jobs");
  v = reviewer_->validate(req, testNow());
  EXPECT_TRUE(v.response.allowed) << v.response.message;
}

TEST_F(AgentTaskReviewerTest, APrivilegedHostTemplateFromAUserWhoMayNotCreateJobsIsRefused) {
  // The attack: a user who may create AgentTasks, not pods or Jobs, asked for a privileged pod
  // in the host's namespaces with the node's root filesystem mounted.
  Json container = agentContainer();
  container["securityContext"] = {{"privileged", true}};
  container["volumeMounts"] = {{{"name", "host"}, {"mountPath", "/host"}}};
  const Json podSpec = {{"hostPID", true},
                        {"hostNetwork", true},
                        {"containers", {container}},
                        {"volumes", {{{"name", "host"}, {"hostPath", {{"path", "/"}}}}}}};
  access_.held = {"get configmaps", "update configmaps"};
  const ReviewOutcome v = reviewer_->validate(stampedCreate(workloadSpec(podSpec)), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_THAT(v.response.message, HasSubstr("create on jobs"));
}

TEST_F(AgentTaskReviewerTest, EverySecretAndConfigMapTheTemplateReadsMustBeReadable) {
  Json container = agentContainer();
  container["env"] = {
      {{"name", "FLAGS"}, {"valueFrom", {{"configMapKeyRef", {{"name", "flags"}, {"key", "k"}}}}}}};
  container["envFrom"] = {{{"configMapRef", {{"name", "settings"}}}}};
  const Json podSpec = {
      {"containers", {container}},
      {"imagePullSecrets", {{{"name", "regcred"}}}},
      {"volumes",
       {{{"name", "billing"}, {"configMap", {{"name", "billing"}}}},
        {{"name", "bundle"},
         {"projected", {{"sources", {{{"configMap", {{"name", "bundle"}}}}}}}}}}}};
  access_.held = {"get configmaps/billing", "update configmaps", "create jobs",
                  "get configmaps/flags", "get configmaps/bundle"};
  const ReviewOutcome v = reviewer_->validate(
      stampedCreate(workloadSpec(podSpec, Json::array({rule({""}, {"configmaps"}, {"update"})}))),
      testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_THAT(v.response.message, HasSubstr("asks for 2 permissions"));
  EXPECT_THAT(v.response.message,
              HasSubstr("get on configmaps (apiGroup \"\", resourceName \"settings\") (read by "
                        "spec.workload.template.spec.containers[0].envFrom[0])"));
  EXPECT_THAT(v.response.message,
              HasSubstr("get on secrets (apiGroup \"\", resourceName \"regcred\") (read by "
                        "spec.workload.template.spec.imagePullSecrets[0])"));
  // One review each, as the requester.
  std::vector<std::string> asked;
  for (const auto& c : access_.checked) asked.push_back(describePermission(c));
  EXPECT_THAT(asked,
              ::testing::UnorderedElementsAre(
                  "update on configmaps (apiGroup \"\")", "create on jobs (apiGroup \"batch\")",
                  "get on configmaps (apiGroup \"\", resourceName \"billing\")",
                  "get on configmaps (apiGroup \"\", resourceName \"bundle\")",
                  "get on configmaps (apiGroup \"\", resourceName \"flags\")",
                  "get on configmaps (apiGroup \"\", resourceName \"settings\")",
                  "get on secrets (apiGroup \"\", resourceName \"regcred\")"));
}

TEST_F(AgentTaskReviewerTest, TheTemplateIsJudgedByThePodRulesWhateverTheNamespacesMode) {
  // The reviewer is never told a namespace's mode: a template is refused as in enforce.
  Json container = agentContainer();
  container["env"] = {envSecretRef("DB_PASSWORD", "db"),
                      envValue("GH", std::string("ghp_") + "8f3KzQ1vLw9XbT2mN7pR4sY6uA0cE5dGhJ2k")};
  const Json podSpec = {{"containers", {container}},
                        {"volumes", {{{"name", "cm"}, {"secret", {{"secretName", "db"}}}}}}};
  access_.held = {"get configmaps", "update configmaps", "create jobs", "get secrets"};
  const ReviewOutcome v = reviewer_->validate(stampedCreate(workloadSpec(podSpec)), testNow());
  EXPECT_FALSE(v.response.allowed);
  EXPECT_EQ(v.response.code, 403);
  EXPECT_THAT(v.response.message, HasSubstr("its workload template violates 3 rules"));
  EXPECT_THAT(v.response.message,
              HasSubstr("[TL001] spec.workload.template.spec.containers[0].env[0]"));
  EXPECT_THAT(v.response.message, HasSubstr("[TL003] spec.workload.template.spec.volumes[0]"));
  EXPECT_THAT(v.response.message,
              HasSubstr("[TL004] spec.workload.template.spec.containers[0].env[1]"));
  EXPECT_THAT(v.response.message, Not(HasSubstr("8f3KzQ1v")));
  EXPECT_EQ(access_.asked, 0u);
  ASSERT_EQ(v.evidence.size(), 1u);
  EXPECT_EQ(v.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(v.evidence[0].details["reason"], "workload");
}

TEST_F(AgentTaskReviewerTest, TheDelegatedRecordSaysWhatWasCheckedForTheWorkload) {
  Json podSpec = kAgentPod;
  podSpec["volumes"] = {{{"name", "cfg"}, {"configMap", {{"name", "billing-config"}}}}};
  access_.held = {"get configmaps", "update configmaps", "create jobs"};
  const ReviewOutcome v = reviewer_->validate(stampedCreate(workloadSpec(podSpec)), testNow());
  ASSERT_TRUE(v.response.allowed) << v.response.message;
  ASSERT_EQ(v.evidence.size(), 1u);
  const Json& w = v.evidence[0].details["workload"];
  EXPECT_EQ(w["rules"], Json({"TL001", "TL002", "TL003", "TL004", "TL007"}));
  EXPECT_EQ(w["rulesSetByTheOperator"], Json({"TL005", "TL006", "TL008"}));
  EXPECT_EQ(
      w["permissions"],
      Json({{{"permission", "create on jobs (apiGroup \"batch\")"},
             {"why", "the Job that runs spec.workload"}},
            {{"permission", "get on configmaps (apiGroup \"\", resourceName \"billing-config\")"},
             {"why", "read by spec.workload.template.spec.volumes[0]"}}}));
  EXPECT_EQ(v.evidence[0].details["permissionsChecked"], 4);
  // A task without a workload says nothing about one.
  const ReviewOutcome plain =
      reviewer_->validate(stampedCreate(taskSpec(kUpdateConfigMaps)), testNow());
  ASSERT_EQ(plain.evidence.size(), 1u);
  EXPECT_FALSE(plain.evidence[0].details.contains("workload"));
}

TEST_F(AgentTaskReviewerTest, TheCredentialVolumeTheOperatorReplacesIsNeitherJudgedNorChecked) {
  Json podSpec = kAgentPod;
  podSpec["volumes"] = {{{"name", "tasklease-credential"}, {"secret", {{"secretName", "other"}}}}};
  access_.held = {"get configmaps", "update configmaps", "create jobs"};
  const ReviewOutcome v = reviewer_->validate(stampedCreate(workloadSpec(podSpec)), testNow());
  EXPECT_TRUE(v.response.allowed) << v.response.message;
  for (const auto& c : access_.checked) EXPECT_NE(c.resource, "secrets");
}

TEST(AgentTaskSpecTest, AWorkloadTheOperatorCannotRenderIsRefused) {
  Json spec = taskSpec();
  spec["workload"] = {{"template", {{"spec", {{"containers", Json::array()}}}}}};
  EXPECT_TRUE(mentions(agentTaskSpecProblems(spec),
                       "spec.workload.template.spec.containers: required, at least one"));
  spec["workload"] = {{"template", "pod"}};
  EXPECT_TRUE(mentions(agentTaskSpecProblems(spec), "spec.workload.template: required"));
  spec["workload"] = {{"template", {{"spec", {{"containers", {{{"name", "a"}}}}}}}}};
  EXPECT_TRUE(agentTaskSpecProblems(spec).empty());
}

TEST(PermissionPlanTest, AWorkloadAddsCreateJobsAndAGetForEachObjectItReads) {
  Json spec = taskSpec(Json::array({rule({""}, {"secrets"}, {"get"}, {"token"})}));
  Json container = {{"name", "a"},
                    {"env",
                     {{{"name", "T"}, {"valueFrom", {{"secretKeyRef", {{"name", "token"}}}}}},
                      {{"name", "C"}, {"valueFrom", {{"configMapKeyRef", {{"name", "c"}}}}}}}}};
  spec["workload"] = {
      {"template",
       {{"spec",
         {{"containers", {container}},
          {"volumes",
           {{{"name", "s"},
             {"csi", {{"driver", "d"}, {"nodePublishSecretRef", {{"name", "vault"}}}}}},
            {{"name", "again"}, {"configMap", {{"name", "c"}}}}}}}}}}};
  const auto checks = planPermissionChecks(spec);
  ASSERT_EQ(checks.size(), 4u);
  EXPECT_EQ(checks[0], (PermissionCheck{"get", "", "secrets", "", "token"}));  // scope and env
  EXPECT_EQ(checks[1], (PermissionCheck{"create", "batch", "jobs", "", ""}));
  EXPECT_EQ(checks[2], (PermissionCheck{"get", "", "secrets", "", "vault"}));
  EXPECT_EQ(checks[3], (PermissionCheck{"get", "", "configmaps", "", "c"}));
}

// ---- SubjectAccessReviews ----

TEST(SarAccessReviewerTest, OneReviewPerCheckAsTheRequesterAnsweredInOrder) {
  kube::FakeApiClient fake;
  std::mutex mu;
  std::vector<Json> specs;  // guarded by mu
  fake.prependReactor("create", "subjectaccessreviews", [&](const kube::FakeApiClient::Action& a) {
    std::lock_guard lock(mu);
    specs.push_back(a.body["spec"]);
    const std::string verb = a.body["spec"]["resourceAttributes"]["verb"];
    if (verb == "delete") return std::optional<StatusOr<Json>>(unavailable("etcd is down"));
    return std::optional<StatusOr<Json>>(Json{{"status", {{"allowed", verb == "get"}}}});
  });
  SarAccessReviewer reviewer(fake, 2);
  UserInfo alice{"alice", "uid-alice", {"dev"}, {{"scopes", {"a"}}}};
  const std::vector<PermissionCheck> checks = {{"get", "", "configmaps", "", "cfg"},
                                               {"update", "apps", "deployments", "scale", ""},
                                               {"delete", "", "pods", "", ""}};
  const auto answers = reviewer.review(alice, "team-a", checks, std::chrono::seconds(5));
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_TRUE(answers[0].answered && answers[0].allowed);
  EXPECT_TRUE(answers[1].answered && !answers[1].allowed);
  EXPECT_FALSE(answers[2].answered);
  EXPECT_THAT(answers[2].error, HasSubstr("etcd is down"));
  ASSERT_EQ(specs.size(), 3u);
  for (const Json& spec : specs) {
    EXPECT_EQ(spec["user"], "alice");
    EXPECT_EQ(spec["uid"], "uid-alice");
    EXPECT_EQ(spec["groups"], Json({"dev"}));
    EXPECT_EQ(spec["extra"], Json({{"scopes", {"a"}}}));
    EXPECT_EQ(spec["resourceAttributes"]["namespace"], "team-a");
    if (spec["resourceAttributes"]["verb"] == "update") {
      EXPECT_EQ(spec["resourceAttributes"]["group"], "apps");
      EXPECT_EQ(spec["resourceAttributes"]["subresource"], "scale");
    }
    if (spec["resourceAttributes"]["verb"] == "get") {
      EXPECT_EQ(spec["resourceAttributes"]["name"], "cfg");
    }
  }
}

TEST(SarAccessReviewerTest, ChecksLeftWhenTheDeadlineHasPassedAreNotAnswered) {
  kube::FakeApiClient fake;
  fake.prependReactor("create", "subjectaccessreviews", [](const kube::FakeApiClient::Action&) {
    return std::optional<StatusOr<Json>>(Json{{"status", {{"allowed", true}}}});
  });
  SarAccessReviewer reviewer(fake);
  const auto answers =
      reviewer.review({"alice", "", {}, {}}, "team-a", {{"get", "", "configmaps", "", ""}},
                      std::chrono::milliseconds(0));
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_FALSE(answers[0].answered);
  EXPECT_THAT(answers[0].error, HasSubstr("deadline"));
}

// ---- the endpoint ----

Json reviewBody(const Json& object, const std::string& group, const std::string& kind) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "req-9"},
            {"kind", {{"group", group}, {"version", "v1"}, {"kind", kind}}},
            {"resource", {{"group", group}, {"version", "v1"}, {"resource", "x"}}},
            {"name", "t1"},
            {"namespace", "team-a"},
            {"operation", "CREATE"},
            {"userInfo",
             {{"username", "alice"},
              {"uid", "uid-alice"},
              {"groups", {"dev"}},
              {"extra", {{"scopes", {"a"}}}}}},
            {"object", object}}}};
}

HttpRequest post(const std::string& path, const Json& body) {
  HttpRequest r;
  r.method = "POST";
  r.path = path;
  r.body = body.dump();
  return r;
}

class EndpointMutateTest : public AgentTaskReviewerTest {
 protected:
  ObjectSetClusterState state_{standardState()};
  MetricsRegistry registry_;
};

TEST_F(EndpointMutateTest, AnAgentTaskCreateGetsABase64JsonPatch) {
  AdmissionEndpoint endpoint(
      state_, ReviewConfig{}, nullptr, registry_, [] { return testNow(); }, reviewer_.get());
  const HttpResponse http =
      endpoint.mutate(post("/mutate", reviewBody(task(taskSpec()), "tasklease.io", "AgentTask")));
  ASSERT_EQ(http.status, 200);
  const Json resp = Json::parse(http.body)["response"];
  EXPECT_EQ(resp["uid"], "req-9");
  EXPECT_EQ(resp["allowed"], true);
  EXPECT_EQ(resp["patchType"], "JSONPatch");
  auto decoded = base64Decode(resp["patch"].get<std::string>());
  ASSERT_TRUE(decoded.has_value());
  const Json patched = task(taskSpec()).patch(Json::parse(*decoded));
  EXPECT_THAT(patched["metadata"]["annotations"][kRequestedByAnnotation].get<std::string>(),
              HasSubstr("\"username\":\"alice\""));
}

TEST_F(EndpointMutateTest, OtherKindsPassMutateUnpatched) {
  AdmissionEndpoint endpoint(
      state_, ReviewConfig{}, nullptr, registry_, [] { return testNow(); }, reviewer_.get());
  const HttpResponse http =
      endpoint.mutate(post("/mutate", reviewBody(pod(cleanSpec()), "", "Pod")));
  ASSERT_EQ(http.status, 200);
  const Json resp = Json::parse(http.body)["response"];
  EXPECT_EQ(resp["allowed"], true);
  EXPECT_FALSE(resp.contains("patch"));
  EXPECT_FALSE(resp.contains("patchType"));
}

// Keeps each evidence record written.
class RecordingSink final : public EvidenceSink {
 public:
  Status write(std::string_view line) override {
    records.push_back(Json::parse(line));
    return {};
  }
  std::vector<Json> records;
};

TEST_F(EndpointMutateTest, WithoutAReviewerAgentTasksAreRefusedAndRecorded) {
  auto sink = std::make_unique<RecordingSink>();
  RecordingSink* recorded = sink.get();
  std::vector<EvidenceSinkPtr> sinks;
  sinks.push_back(std::move(sink));
  auto chain = EvidenceChain::open(std::move(sinks), nullptr);
  ASSERT_TRUE(chain.ok());
  AdmissionEndpoint endpoint(state_, ReviewConfig{}, chain->get(), registry_,
                             [] { return testNow(); });
  for (const char* path : {"/mutate", "/validate"}) {
    const Json body = reviewBody(task(taskSpec()), "tasklease.io", "AgentTask");
    const HttpResponse http = std::string(path) == "/mutate" ? endpoint.mutate(post(path, body))
                                                             : endpoint.validate(post(path, body));
    const Json resp = Json::parse(http.body)["response"];
    EXPECT_EQ(resp["allowed"], false) << path;
    EXPECT_EQ(resp["status"]["code"], 503) << path;
  }
  // Each refusal is in the evidence.
  ASSERT_EQ(recorded->records.size(), 2u);
  for (const Json& r : recorded->records) {
    EXPECT_EQ(r["kind"], "rejected");
    EXPECT_EQ(r["details"]["reason"], "no-signing-key");
    EXPECT_EQ(r["task"]["namespace"], "team-a");
  }
}

TEST_F(EndpointMutateTest, UserExtraIsDecodedForTheAccessReviews) {
  auto decoded =
      decodeAdmissionReview(reviewBody(task(taskSpec()), "tasklease.io", "AgentTask").dump());
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->userInfo.extra.at("scopes"), (std::vector<std::string>{"a"}));
  Json bad = reviewBody(task(taskSpec()), "tasklease.io", "AgentTask");
  bad["request"]["userInfo"]["extra"] = {{"scopes", "a"}};
  EXPECT_FALSE(decodeAdmissionReview(bad.dump()).ok());
}

}  // namespace
}  // namespace tasklease::webhook
