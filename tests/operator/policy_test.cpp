#include "operator/policy.h"

#include <gtest/gtest.h>

#include <functional>
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

// ---- the workload's bound: spec.allow.workload and the Pod Security Standards ----

// A pod template that meets restricted: what a careful workload looks like.
Json restrictedTemplate() {
  return Json::parse(R"({
    "metadata": {"labels": {"app": "agent"}},
    "spec": {
      "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
      "containers": [{
        "name": "agent", "image": "registry.example/agent:1",
        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"drop": ["ALL"]}}}],
      "volumes": [{"name": "scratch", "emptyDir": {}}]}})");
}

// What an attacker who may only create AgentTasks asked the operator to run: a privileged pod in
// the node's namespaces with the node's root filesystem mounted.
Json hostTakeoverTemplate() {
  return Json::parse(R"({
    "spec": {
      "hostPID": true, "hostNetwork": true, "hostIPC": true,
      "containers": [{
        "name": "x", "image": "busybox",
        "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}},
        "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
      "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}})");
}

PolicyRequest workloadRequest(const Json& podTemplate) {
  TaskSpec s = spec();
  s.workloadTemplate = podTemplate;
  return request(std::move(s));
}

std::vector<std::string> violationTexts(const Json& podTemplate, const WorkloadBound& bound) {
  std::vector<std::string> out;
  for (const auto& v : checkWorkload(podTemplate, bound)) out.push_back(v.path + " @ " + v.bound);
  return out;
}

TEST(WorkloadPolicyTest, APolicyWithoutAllowWorkloadAllowsNoWorkload) {
  const PolicyDecision d = evaluatePolicies(workloadRequest(restrictedTemplate()), {policy("p")});
  EXPECT_FALSE(d.allowed);
  EXPECT_NE(d.reason.find("spec.workload: the policy allows no workload"), std::string::npos)
      << d.reason;
  // The same task without a workload is allowed by it.
  EXPECT_TRUE(evaluatePolicies(request(), {policy("p")}).allowed);
}

TEST(WorkloadPolicyTest, APrivilegedHostPidHostNetworkHostPathTemplateIsDeniedNamingEachField) {
  for (const char* level : {"baseline", "restricted"}) {
    const Json p = policy("p", {{"allow", {{"workload", {{"podSecurity", level}}}}}});
    const PolicyDecision d = evaluatePolicies(workloadRequest(hostTakeoverTemplate()), {p});
    EXPECT_FALSE(d.allowed) << level;
    for (const std::string field :
         {"spec.workload.template.spec.hostNetwork: true; allowed: unset or false (baseline: Host "
          "Namespaces)",
          "spec.workload.template.spec.hostPID: true", "spec.workload.template.spec.hostIPC: true",
          "spec.workload.template.spec.containers[0].securityContext.privileged: true; allowed: "
          "unset or false (baseline: Privileged Containers)",
          "spec.workload.template.spec.containers[0].securityContext.capabilities.add[0]: "
          "\"SYS_ADMIN\"",
          "spec.workload.template.spec.volumes[0].hostPath: a hostPath volume; allowed: none "
          "(baseline: HostPath Volumes)"}) {
      EXPECT_NE(d.reason.find(field), std::string::npos) << level << ": " << field << "\n"
                                                         << d.reason;
    }
    EXPECT_NE(d.reason.find(std::string("workload bound (Pod Security ") + level + ")"),
              std::string::npos)
        << d.reason;
  }
}

TEST(WorkloadPolicyTest, ATemplateWithinTheBoundIsAllowedAndTheDecisionSaysSo) {
  const Json p = policy("p", {{"allow", {{"workload", {{"podSecurity", "restricted"}}}}}});
  const PolicyDecision d = evaluatePolicies(workloadRequest(restrictedTemplate()), {p});
  ASSERT_TRUE(d.allowed) << d.reason;
  ASSERT_TRUE(d.workload.has_value());
  EXPECT_EQ(d.workload->level, PodSecurityLevel::kRestricted);
  EXPECT_NE(d.reason.find("workload within Pod Security restricted"), std::string::npos);
}

TEST(WorkloadPolicyTest, PodSecurityDefaultsToRestricted) {
  const Json p = policy("p", {{"allow", {{"workload", Json::object()}}}});
  auto parsed = parseAgentPolicy(p);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_TRUE(parsed->workload.has_value());
  EXPECT_EQ(parsed->workload->level, PodSecurityLevel::kRestricted);
  EXPECT_TRUE(parsed->workload->allowedCapabilities.empty());
  // A plain template (root allowed, no seccomp profile) meets baseline, not restricted.
  const Json plain = {{"spec", {{"containers", {{{"name", "a"}, {"image", "a:1"}}}}}}};
  EXPECT_FALSE(evaluatePolicies(workloadRequest(plain), {p}).allowed);
  const Json baseline = policy("b", {{"allow", {{"workload", {{"podSecurity", "baseline"}}}}}});
  EXPECT_TRUE(evaluatePolicies(workloadRequest(plain), {baseline}).allowed);
}

TEST(WorkloadPolicyTest, AddedCapabilitiesAreRefusedUnlessThePolicyListsThem) {
  Json t = restrictedTemplate();
  t["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = {"NET_BIND_SERVICE"};
  // Restricted lets a container add NET_BIND_SERVICE; tasklease only when the policy says so.
  EXPECT_EQ(violationTexts(t, {PodSecurityLevel::kRestricted, {}}),
            std::vector<std::string>{"spec.workload.template.spec.containers[0].securityContext."
                                     "capabilities.add[0] @ policy: allowedCapabilities"});
  EXPECT_TRUE(violationTexts(t, {PodSecurityLevel::kRestricted, {"NET_BIND_SERVICE"}}).empty());
  // Baseline's default set is not the floor either: CHOWN only when listed.
  Json b = {{"spec",
             {{"containers",
               {{{"name", "a"},
                 {"image", "a"},
                 {"securityContext", {{"capabilities", {{"add", {"CHOWN", "NET_ADMIN"}}}}}}}}}}}};
  EXPECT_EQ(violationTexts(b, {PodSecurityLevel::kBaseline, {"CHOWN"}}),
            std::vector<std::string>{"spec.workload.template.spec.containers[0].securityContext."
                                     "capabilities.add[1] @ baseline: Capabilities"});
  EXPECT_EQ(violationTexts(b, {PodSecurityLevel::kBaseline, {}}).size(), 2u);
}

TEST(WorkloadPolicyTest, AllowedCapabilitiesOutsideTheLevelMakeThePolicyInvalid) {
  const Json p = policy(
      "p", {{"allow",
             {{"workload", {{"podSecurity", "restricted"}, {"allowedCapabilities", {"CHOWN"}}}}}}});
  auto parsed = parseAgentPolicy(p);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("spec.allow.workload.allowedCapabilities[0]: \"CHOWN\""),
            std::string::npos)
      << parsed.status().message();
  const Json bad = policy("p", {{"allow", {{"workload", {{"podSecurity", "privileged"}}}}}});
  auto level = parseAgentPolicy(bad);
  ASSERT_FALSE(level.ok());
  EXPECT_NE(level.status().message().find("spec.allow.workload.podSecurity"), std::string::npos);
}

// Baseline's controls, one field each, as the Pod Security Standards list them.
TEST(PodSecurityTest, EveryBaselineControlIsChecked) {
  const auto pod = [](const char* specJson, const char* metaJson = "{}") {
    return Json{{"metadata", Json::parse(metaJson)}, {"spec", Json::parse(specJson)}};
  };
  const WorkloadBound baseline{PodSecurityLevel::kBaseline, {}};
  const std::string c0 = "spec.workload.template.spec.containers[0]";
  const std::vector<std::pair<Json, std::string>> cases = {
      {pod(R"({"securityContext":{"windowsOptions":{"hostProcess":true}},"containers":[{"name":"a"}]})"),
       "spec.workload.template.spec.securityContext.windowsOptions.hostProcess @ baseline: "
       "HostProcess"},
      {pod(R"({"initContainers":[{"name":"i","securityContext":{"windowsOptions":{"hostProcess":true}}}],"containers":[{"name":"a"}]})"),
       "spec.workload.template.spec.initContainers[0].securityContext.windowsOptions.hostProcess "
       "@ baseline: HostProcess"},
      {pod(R"({"hostIPC":true,"containers":[{"name":"a"}]})"),
       "spec.workload.template.spec.hostIPC @ baseline: Host Namespaces"},
      {pod(R"({"containers":[{"name":"a","ports":[{"containerPort":80,"hostPort":80}]}]})"),
       c0 + ".ports[0].hostPort @ baseline: Host Ports"},
      {pod(R"({"containers":[{"name":"a","livenessProbe":{"httpGet":{"host":"10.0.0.1","port":80}}}]})"),
       c0 + ".livenessProbe.httpGet.host @ baseline: Host Probes / Lifecycle Hooks"},
      {pod(R"({"containers":[{"name":"a","lifecycle":{"preStop":{"tcpSocket":{"host":"metadata","port":80}}}}]})"),
       c0 + ".lifecycle.preStop.tcpSocket.host @ baseline: Host Probes / Lifecycle Hooks"},
      {pod(R"({"securityContext":{"appArmorProfile":{"type":"Unconfined"}},"containers":[{"name":"a"}]})"),
       "spec.workload.template.spec.securityContext.appArmorProfile.type @ baseline: AppArmor"},
      {pod(R"({"containers":[{"name":"a"}]})",
           R"({"annotations":{"container.apparmor.security.beta.kubernetes.io/a":"unconfined"}})"),
       "spec.workload.template.metadata.annotations[container.apparmor.security.beta.kubernetes."
       "io/a] @ baseline: AppArmor"},
      {pod(R"({"containers":[{"name":"a","securityContext":{"seLinuxOptions":{"type":"spc_t"}}}]})"),
       c0 + ".securityContext.seLinuxOptions.type @ baseline: SELinux"},
      {pod(R"({"securityContext":{"seLinuxOptions":{"user":"system_u"}},"containers":[{"name":"a"}]})"),
       "spec.workload.template.spec.securityContext.seLinuxOptions.user @ baseline: SELinux"},
      {pod(R"({"containers":[{"name":"a","securityContext":{"procMount":"Unmasked"}}]})"),
       c0 + ".securityContext.procMount @ baseline: /proc Mount Type"},
      {pod(R"({"containers":[{"name":"a","securityContext":{"seccompProfile":{"type":"Unconfined"}}}]})"),
       c0 + ".securityContext.seccompProfile.type @ baseline: Seccomp"},
      {pod(R"({"securityContext":{"sysctls":[{"name":"net.ipv4.tcp_syncookies","value":"1"},{"name":"kernel.msgmax","value":"1"}]},"containers":[{"name":"a"}]})"),
       "spec.workload.template.spec.securityContext.sysctls[1].name @ baseline: Sysctls"},
  };
  for (const auto& [podTemplate, expected] : cases) {
    EXPECT_EQ(violationTexts(podTemplate, baseline), std::vector<std::string>{expected})
        << podTemplate.dump();
  }
  // What baseline allows: the same fields at their allowed values.
  const Json fine = pod(
      R"({"hostNetwork":false,"securityContext":{"seLinuxOptions":{"type":"container_t"},
          "seccompProfile":{"type":"RuntimeDefault"},"sysctls":[{"name":"net.ipv4.ping_group_range","value":"0 1"}]},
          "containers":[{"name":"a","ports":[{"containerPort":80,"hostPort":0}],
            "securityContext":{"privileged":false,"procMount":"Default",
                               "appArmorProfile":{"type":"Localhost","localhostProfile":"p"}},
            "readinessProbe":{"httpGet":{"host":"","port":80}}}]})",
      R"({"annotations":{"container.apparmor.security.beta.kubernetes.io/a":"localhost/p"}})");
  EXPECT_TRUE(violationTexts(fine, baseline).empty())
      << ::testing::PrintToString(violationTexts(fine, baseline));
}

// Restricted's controls on top of Baseline's.
TEST(PodSecurityTest, EveryRestrictedControlIsChecked) {
  const WorkloadBound restricted{PodSecurityLevel::kRestricted, {}};
  const std::string c0 = "spec.workload.template.spec.containers[0]";
  EXPECT_TRUE(violationTexts(restrictedTemplate(), restricted).empty());
  const auto broken = [&](const std::function<void(Json&)>& change) {
    Json t = restrictedTemplate();
    change(t);
    return violationTexts(t, restricted);
  };
  EXPECT_EQ(broken([](Json& t) {
              t["spec"]["volumes"].push_back({{"name", "n"}, {"nfs", {{"server", "s"}}}});
            }),
            std::vector<std::string>{
                "spec.workload.template.spec.volumes[1].nfs @ restricted: Volume Types"});
  EXPECT_EQ(
      broken([](Json& t) {
        t["spec"]["containers"][0]["securityContext"].erase("allowPrivilegeEscalation");
      }),
      std::vector<std::string>{
          c0 + ".securityContext.allowPrivilegeEscalation @ restricted: Privilege Escalation"});
  EXPECT_EQ(broken([](Json& t) { t["spec"]["securityContext"].erase("runAsNonRoot"); }),
            std::vector<std::string>{
                c0 + ".securityContext.runAsNonRoot @ restricted: Running as Non-root"});
  // The container's own true is enough; the pod's false is not allowed even then.
  EXPECT_TRUE(broken([](Json& t) {
                t["spec"]["securityContext"].erase("runAsNonRoot");
                t["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = true;
              }).empty());
  EXPECT_EQ(broken([](Json& t) {
              t["spec"]["securityContext"]["runAsNonRoot"] = false;
              t["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] = true;
            }),
            std::vector<std::string>{"spec.workload.template.spec.securityContext.runAsNonRoot @ "
                                     "restricted: Running as Non-root"});
  EXPECT_EQ(broken([](Json& t) { t["spec"]["containers"][0]["securityContext"]["runAsUser"] = 0; }),
            std::vector<std::string>{
                c0 + ".securityContext.runAsUser @ restricted: Running as Non-root user"});
  EXPECT_EQ(
      broken([](Json& t) { t["spec"]["securityContext"].erase("seccompProfile"); }),
      std::vector<std::string>{c0 + ".securityContext.seccompProfile.type @ restricted: Seccomp"});
  // Set on every container instead of the pod: allowed.
  EXPECT_TRUE(
      broken([](Json& t) {
        t["spec"]["securityContext"].erase("seccompProfile");
        t["spec"]["containers"][0]["securityContext"]["seccompProfile"] = {{"type", "Localhost"}};
      }).empty());
  EXPECT_EQ(broken([](Json& t) {
              t["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"] = {"NET_RAW"};
            }),
            std::vector<std::string>{
                c0 + ".securityContext.capabilities.drop @ restricted: Capabilities"});
  EXPECT_EQ(broken([](Json& t) {
              t["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] = {"CHOWN"};
            }),
            std::vector<std::string>{
                c0 + ".securityContext.capabilities.add[0] @ restricted: Capabilities"});
  // Privilege escalation, seccomp and capabilities are Linux-only controls.
  EXPECT_TRUE(broken([](Json& t) {
                t["spec"]["os"] = {{"name", "windows"}};
                t["spec"]["securityContext"].erase("seccompProfile");
                t["spec"]["containers"][0].erase("securityContext");
              }).empty());
}

}  // namespace
}  // namespace tasklease::op
