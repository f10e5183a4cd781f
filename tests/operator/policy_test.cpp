#include "operator/policy.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "common/delegation_stamp.h"
#include "operator/delegation.h"
#include "tests/mocks/fake_stamp_verifier.h"

namespace tasklease::op {
namespace {

TaskSpec spec(std::chrono::seconds ttl = std::chrono::minutes(30)) {
  TaskSpec s;
  s.agent = "refactor-bot";
  s.purpose = "Refactor billing";
  s.tool = "git";
  s.dataSensitivity = "internal";
  s.environment = "staging";
  s.ttl = ttl;
  s.rules = {PolicyRule{{""}, {"configmaps"}, {"billing-config"}, {"get", "update"}}};
  return s;
}

Json policy(const std::string& name, const Json& patch = Json::object()) {
  Json p = {{"metadata", {{"name", name}}},
            {"spec",
             {{"match", {{"agents", {"refactor-*"}}, {"namespaces", {"team-a"}}}},
              {"allow",
               {{"maxTTL", "1h"},
                {"credentialTypes", {"ServiceAccountToken"}},
                {"rules", Json::array({{{"apiGroups", {""}},
                                        {"resources", {"configmaps"}},
                                        {"verbs", {"get", "update"}}}})}}},
              {"requireVerifiedDelegation", false}}}};
  p["spec"].merge_patch(patch);
  return p;
}

PolicyRequest request(TaskSpec s = spec()) {
  return {"team-a", std::move(s), Delegation{}};
}

TEST(GlobTest, StarMatchesAnyRunAndQuestionMarkOneCharacter) {
  EXPECT_TRUE(globMatch("refactor-*", "refactor-bot"));
  EXPECT_TRUE(globMatch("refactor-*", "refactor-"));
  EXPECT_TRUE(globMatch("*", ""));
  EXPECT_TRUE(globMatch("a?c", "abc"));
  EXPECT_TRUE(globMatch("*-bot", "refactor-bot"));
  EXPECT_TRUE(globMatch("r*a*t", "refactor-bot-at"));
  EXPECT_FALSE(globMatch("a?c", "ac"));
  EXPECT_FALSE(globMatch("refactor-*", "deploy-bot"));
  EXPECT_FALSE(globMatch("team-a", "team-ab"));
}

TEST(PolicyTest, WithoutAnyPolicyEveryTaskIsDenied) {
  const PolicyDecision d = evaluatePolicies(request(), {});
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.reason, "denied by default: no AgentPolicy exists");
}

TEST(PolicyTest, AMatchingPolicyThatCoversEverythingAllowsAndIsNamed) {
  const PolicyDecision d = evaluatePolicies(request(), {policy("refactoring")});
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.policy, "refactoring");
  EXPECT_NE(d.reason.find("allowed by AgentPolicy \"refactoring\""), std::string::npos) << d.reason;
}

TEST(PolicyTest, TtlOverMaxTtlIsDeniedSayingBoth) {
  const PolicyDecision d = evaluatePolicies(request(spec(std::chrono::hours(2))), {policy("p")});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("ttl 2h0m0s exceeds maxTTL 1h0m0s"), std::string::npos) << d.reason;
}

TEST(PolicyTest, CredentialTypeMustBeAllowedAndDefaultsToServiceAccountTokenOnly) {
  TaskSpec s = spec();
  s.credentialType = CredentialType::kX509Svid;
  Json p = policy("p");
  p["spec"]["allow"].erase("credentialTypes");
  PolicyDecision d = evaluatePolicies(request(s), {p});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("credential type X509SVID is not allowed (allowed: ServiceAccountToken)"),
            std::string::npos)
      << d.reason;
  d = evaluatePolicies(request(s), {policy("p", {{"allow", {{"credentialTypes", {"X509SVID"}}}}})});
  EXPECT_TRUE(d.allowed) << d.reason;
}

TEST(PolicyTest, ResourceNamesOfTheCeilingBoundTheRequestedNames) {
  const Json named = policy("named", {{"allow",
                                       {{"rules", Json::array({{{"apiGroups", {""}},
                                                                {"resources", {"configmaps"}},
                                                                {"resourceNames", {"a", "b"}},
                                                                {"verbs", {"get"}}}})}}}});
  TaskSpec s = spec();
  s.rules = {PolicyRule{{""}, {"configmaps"}, {"a"}, {"get"}}};
  EXPECT_TRUE(evaluatePolicies(request(s), {named}).allowed);
  s.rules = {PolicyRule{{""}, {"configmaps"}, {"c"}, {"get"}}};
  PolicyDecision d = evaluatePolicies(request(s), {named});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("verb \"get\" on configmaps \"c\" is not within the policy's rules"),
            std::string::npos)
      << d.reason;
  s.rules = {PolicyRule{{""}, {"configmaps"}, {}, {"get"}}};
  d = evaluatePolicies(request(s), {named});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("verb \"get\" on configmaps (every name)"), std::string::npos)
      << d.reason;
}

TEST(PolicyTest, ACeilingWithoutNamesCoversEveryName) {
  TaskSpec s = spec();
  s.rules = {PolicyRule{{""}, {"configmaps"}, {}, {"get"}}};
  EXPECT_TRUE(evaluatePolicies(request(s), {policy("p")}).allowed);
}

TEST(PolicyTest, AVerbOrResourceOutsideTheCeilingIsDenied) {
  TaskSpec s = spec();
  s.rules = {PolicyRule{{""}, {"configmaps"}, {"billing-config"}, {"delete"}}};
  EXPECT_FALSE(evaluatePolicies(request(s), {policy("p")}).allowed);
  s.rules = {PolicyRule{{""}, {"secrets"}, {}, {"get"}}};
  EXPECT_FALSE(evaluatePolicies(request(s), {policy("p")}).allowed);
  s.rules = {PolicyRule{{"apps"}, {"configmaps"}, {}, {"get"}}};
  EXPECT_FALSE(evaluatePolicies(request(s), {policy("p")}).allowed);
}

TEST(FirstUncoveredPermissionTest, WildcardsInTheCeilingCoverAsInRbac) {
  const std::vector<PolicyRule> ceiling = {{{"*"}, {"*/scale"}, {}, {"*"}},
                                           {{"apps"}, {"deployments"}, {}, {"get"}}};
  EXPECT_EQ(firstUncoveredPermission({{{"apps"}, {"deployments/scale"}, {}, {"patch"}}}, ceiling),
            std::nullopt);
  EXPECT_EQ(firstUncoveredPermission({{{"apps"}, {"deployments"}, {"web"}, {"get"}}}, ceiling),
            std::nullopt);
  EXPECT_EQ(firstUncoveredPermission({{{"apps"}, {"deployments"}, {}, {"list"}}}, ceiling),
            "verb \"list\" on apps/deployments (every name)");
}

TEST(PolicyTest, EveryNonMatchingPolicySaysWhyNot) {
  const PolicyDecision d =
      evaluatePolicies(request(), {policy("deploy-only", {{"match", {{"agents", {"deploy-*"}}}}}),
                                   policy("prod-only", {{"match", {{"environments", {"prod"}}}}})});
  EXPECT_FALSE(d.allowed);
  ASSERT_EQ(d.verdicts.size(), 2u);
  EXPECT_NE(d.reason.find("AgentPolicy \"deploy-only\": does not match: agent \"refactor-bot\" is "
                          "not in [deploy-*]"),
            std::string::npos)
      << d.reason;
  EXPECT_NE(d.reason.find("AgentPolicy \"prod-only\": does not match: environment \"staging\" is "
                          "not in [prod]"),
            std::string::npos)
      << d.reason;
  EXPECT_EQ(d.reason.rfind("denied by default: no AgentPolicy matches", 0), 0u) << d.reason;
}

TEST(PolicyTest, AMatchingPolicyListsEveryShortfallAtOnce) {
  TaskSpec s = spec(std::chrono::hours(3));
  s.rules = {PolicyRule{{""}, {"secrets"}, {}, {"get"}}};
  const PolicyDecision d = evaluatePolicies(request(s), {policy("p")});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("ttl 3h0m0s exceeds maxTTL"), std::string::npos) << d.reason;
  EXPECT_NE(d.reason.find("verb \"get\" on secrets (every name)"), std::string::npos) << d.reason;
}

TEST(PolicyTest, TheFirstAllowingPolicyByNameDecides) {
  const PolicyDecision d = evaluatePolicies(request(), {policy("zeta"), policy("alpha")});
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.policy, "alpha");
}

TEST(PolicyTest, RequireVerifiedDelegationDeniesWhatIsNotVerified) {
  const Json strict = policy("strict", {{"requireVerifiedDelegation", true}});
  PolicyRequest r = request();
  r.delegation = parseRequestedBy(R"({"username":"alice","groups":["dev"]})");
  PolicyDecision d = evaluatePolicies(r, {strict});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("the delegation by \"alice\" is not verified"), std::string::npos)
      << d.reason;
  r.delegation.verified = true;  // what VerifyingDelegationSource sets for a good stamp
  EXPECT_TRUE(evaluatePolicies(r, {strict}).allowed);
  // The schema's default is true: a policy without the field requires verification.
  Json defaulted = policy("defaulted");
  defaulted["spec"].erase("requireVerifiedDelegation");
  EXPECT_FALSE(evaluatePolicies(request(), {defaulted}).allowed);
}

TEST(PolicyTest, AnInvalidPolicyIsReportedAndAllowsNothing) {
  Json broken = policy("broken");
  broken["spec"]["allow"]["maxTTL"] = "soon";
  const PolicyDecision d = evaluatePolicies(request(), {broken});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("AgentPolicy \"broken\": invalid: spec.allow.maxTTL"), std::string::npos)
      << d.reason;
}

TEST(DelegationTest, TheStampIsReadAsJsonOrAsABareUsername) {
  Delegation d = parseRequestedBy(R"({"username":"alice","uid":"u1","groups":["dev","ops"]})");
  EXPECT_TRUE(d.present);
  EXPECT_EQ(d.username, "alice");
  EXPECT_EQ(d.uid, "u1");
  EXPECT_EQ(d.groups, (std::vector<std::string>{"dev", "ops"}));
  EXPECT_FALSE(d.verified);
  d = parseRequestedBy("bob");
  EXPECT_EQ(d.username, "bob");
  EXPECT_FALSE(parseRequestedBy("").present);
}

// A task as the webhook leaves it: stamped and signed with `key` for team-a/name.
Json stampedTask(const SigningKey& key, const std::string& name, const std::string& user) {
  const TimePoint now = std::chrono::system_clock::now();
  Json task = {
      {"metadata",
       {{"name", name}, {"namespace", "team-a"}, {"creationTimestamp", formatRfc3339(now)}}},
      {"spec", {{"agent", "refactor-bot"}, {"ttl", "30m"}}}};
  const std::string who = requestedByValue({user, "uid-" + user, {"dev"}});
  auto sig = signStamp(key, {"team-a", name, "", task["spec"]}, who, now);
  if (!sig.ok()) throw std::runtime_error(sig.status().toString());
  task["metadata"]["annotations"] = {{kRequestedByAnnotation, who},
                                     {kRequestedBySignatureAnnotation, *sig}};
  return task;
}

TEST(DelegationTest, AStampSignedWithAPublishedKeyIsVerified) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  kube::FakeStampVerifier stamps;
  ASSERT_TRUE(stamps.keys.add(key->publicPem()).ok());
  auto d = VerifyingDelegationSource(stamps).delegationOf(stampedTask(*key, "t1", "alice"));
  ASSERT_TRUE(d.ok()) << d.status().toString();
  EXPECT_TRUE(d->present);
  EXPECT_TRUE(d->verified);
  EXPECT_EQ(d->username, "alice");
  EXPECT_EQ(d->uid, "uid-alice");
  EXPECT_EQ(d->groups, (std::vector<std::string>{"dev"}));
  EXPECT_TRUE(d->unverifiedReason.empty());
}

TEST(DelegationTest, AStampFromAnUnpublishedKeyOrAlteredIsNotVerifiedAndSaysWhy) {
  auto key = SigningKey::generate();
  auto other = SigningKey::generate();
  ASSERT_TRUE(key.ok() && other.ok());
  kube::FakeStampVerifier stamps;
  ASSERT_TRUE(stamps.keys.add(key->publicPem()).ok());
  const VerifyingDelegationSource source(stamps);

  auto d = source.delegationOf(stampedTask(*other, "t1", "mallory"));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->present);
  EXPECT_FALSE(d->verified);
  EXPECT_EQ(d->username, "mallory");
  EXPECT_NE(d->unverifiedReason.find("unknown-key"), std::string::npos) << d->unverifiedReason;

  Json altered = stampedTask(*key, "t1", "alice");
  altered["spec"]["ttl"] = "1h";
  d = source.delegationOf(altered);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->verified);
  EXPECT_NE(d->unverifiedReason.find("bad-signature"), std::string::npos) << d->unverifiedReason;

  // A client-written stamp without a signature.
  const Json unsigned_ = {
      {"metadata", {{"annotations", {{kRequestedByAnnotation, R"({"username":"carol"})"}}}}}};
  d = source.delegationOf(unsigned_);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->username, "carol");
  EXPECT_FALSE(d->verified);
  EXPECT_NE(d->unverifiedReason.find("unsigned"), std::string::npos) << d->unverifiedReason;
}

TEST(DelegationTest, ATaskWithoutAStampHasNoDelegationAndNeedsNoKeys) {
  kube::FakeStampVerifier stamps;
  stamps.failure = unavailable("configmaps \"tasklease-delegation-keys\" is forbidden");
  auto d = VerifyingDelegationSource(stamps).delegationOf({{"metadata", {{"name", "t1"}}}});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->present);
  EXPECT_EQ(stamps.calls, 0);
}

TEST(DelegationTest, UnreadableKeysAreAnErrorNotAnUnverifiedDelegation) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  kube::FakeStampVerifier stamps;
  stamps.failure = unavailable("configmaps \"tasklease-delegation-keys\" is forbidden");
  auto d = VerifyingDelegationSource(stamps).delegationOf(stampedTask(*key, "t1", "alice"));
  EXPECT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("forbidden"), std::string::npos);
}

TEST(PolicyTest, TheDenialSaysWhyTheDelegationIsNotVerified) {
  const Json strict = policy("strict", {{"requireVerifiedDelegation", true}});
  PolicyRequest r = request();
  r.delegation = parseRequestedBy(R"({"username":"alice"})");
  r.delegation.unverifiedReason = "unknown-key: signed with key 0123";
  const PolicyDecision d = evaluatePolicies(r, {strict});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("(unknown-key: signed with key 0123)"), std::string::npos) << d.reason;
}

}  // namespace
}  // namespace tasklease::op
