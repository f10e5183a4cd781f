#include "webhook/review.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/base64.h"
#include "tests/webhook/fixtures.h"
#include "webhook/admission.h"
#include "webhook/decoded_document.h"

namespace tasklease::webhook {
namespace {

using namespace testing;  // NOLINT: the fixtures
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

Json reviewJson(const Json& object, const std::string& operation = "CREATE",
                const Json& oldObject = nullptr) {
  std::string kind = object["kind"];
  std::string apiVersion = object["apiVersion"];
  std::string group =
      apiVersion.find('/') == std::string::npos ? "" : apiVersion.substr(0, apiVersion.find('/'));
  Json req = {{"uid", "705ab4f5-6393-11e8-b7cc-42010a800002"},
              {"kind", {{"group", group}, {"version", "v1"}, {"kind", kind}}},
              {"resource", {{"group", group}, {"version", "v1"}, {"resource", "x"}}},
              {"name", object["metadata"].value("name", "")},
              {"namespace", "team-a"},
              {"operation", operation},
              {"userInfo", {{"username", "alice"}, {"uid", "u-1"}, {"groups", {"devs"}}}},
              {"object", object},
              {"oldObject", oldObject},
              {"dryRun", false}};
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", req}};
}

AdmissionRequest request(const Json& object, const std::string& operation = "CREATE",
                         const Json& oldObject = nullptr) {
  auto r = decodeAdmissionReview(reviewJson(object, operation, oldObject).dump());
  EXPECT_TRUE(r.ok()) << r.status().toString();
  return r.ok() ? *r : AdmissionRequest{};
}

Json badPodSpec() {
  Json spec = cleanSpec();
  Json init = container("init");
  init["env"] = {envSecretRef("DB_PASSWORD", "db")};
  spec["initContainers"] = {init};
  spec["serviceAccountName"] = "shared";
  return spec;
}

class ReviewTest : public ::testing::Test {
 protected:
  ReviewOutcome review(const AdmissionRequest& r) {
    return reviewAdmission(r, state_, ReviewConfig{}, testNow());
  }
  ObjectSetClusterState state_ = standardState("enforce");
};

TEST_F(ReviewTest, DecodesTheRequestFields) {
  auto r = request(pod(cleanSpec()));
  EXPECT_EQ(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_EQ(r.kind, "Pod");
  EXPECT_EQ(r.ns, "team-a");
  EXPECT_EQ(r.operation, "CREATE");
  EXPECT_EQ(r.userInfo.username, "alice");
  EXPECT_THAT(r.userInfo.groups, ElementsAre("devs"));
  EXPECT_FALSE(r.oldObjectView().present());
  EXPECT_EQ(r.objectView().member("metadata").member("name").string(), "web");
}

TEST_F(ReviewTest, MalformedReviewsAreClearErrors) {
  struct Case {
    std::string body;
    std::string says;
  };
  Json noUid = reviewJson(pod(cleanSpec()));
  noUid["request"].erase("uid");
  Json numericUid = reviewJson(pod(cleanSpec()));
  numericUid["request"]["uid"] = 7;
  Json v1beta1 = reviewJson(pod(cleanSpec()));
  v1beta1["apiVersion"] = "admission.k8s.io/v1beta1";
  Json badOp = reviewJson(pod(cleanSpec()));
  badOp["request"]["operation"] = "PATCH";
  Json noObject = reviewJson(pod(cleanSpec()));
  noObject["request"].erase("object");
  Json objectString = reviewJson(pod(cleanSpec()));
  objectString["request"]["object"] = "pod";
  std::vector<Case> cases = {
      {"", "not valid JSON"},
      {"{\"apiVersion\": \"admission.k8s.io/v1\", \"kind\": \"Admissi", "not valid JSON"},
      {"[]", "JSON object"},
      {std::string(200, '[') + std::string(200, ']'), "nested deeper"},
      {noUid.dump(), "request.uid"},
      {numericUid.dump(), "request.uid: must be a string"},
      {v1beta1.dump(), "admission.k8s.io/v1"},
      {badOp.dump(), "request.operation"},
      {noObject.dump(), "request.object"},
      {objectString.dump(), "request.object: must be an object"},
  };
  for (const auto& c : cases) {
    auto r = decodeAdmissionReview(c.body);
    ASSERT_FALSE(r.ok()) << c.body.substr(0, 80);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.says)) << c.body.substr(0, 80);
  }
}

TEST_F(ReviewTest, EncodedResponseEchoesTheUidAndCarriesStatusAndWarnings) {
  AdmissionResponse resp;
  resp.uid = "abc";
  resp.allowed = false;
  resp.code = 403;
  resp.reason = "Forbidden";
  resp.message = "no";
  resp.warnings = {"w1"};
  Json j = Json::parse(encodeAdmissionReview(resp));
  EXPECT_EQ(j["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ(j["kind"], "AdmissionReview");
  EXPECT_EQ(j["response"]["uid"], "abc");
  EXPECT_EQ(j["response"]["allowed"], false);
  EXPECT_EQ(j["response"]["status"]["code"], 403);
  EXPECT_EQ(j["response"]["status"]["reason"], "Forbidden");
  EXPECT_EQ(j["response"]["warnings"], Json({"w1"}));
}

// The encoder writes the answer directly; these are the bytes nlohmann's dump of the same
// document gives (sorted keys, escapes, invalid UTF-8 replaced), which it must reproduce.
std::string referenceEncoding(const AdmissionResponse& response) {
  Json resp = {{"uid", response.uid}, {"allowed", response.allowed}};
  if (!response.allowed || !response.message.empty()) {
    Json status = {{"code", response.code}, {"message", response.message}};
    if (!response.allowed) status["status"] = "Failure";
    if (!response.reason.empty()) status["reason"] = response.reason;
    resp["status"] = std::move(status);
  }
  if (!response.patch.empty()) {
    resp["patchType"] = "JSONPatch";
    resp["patch"] = base64Encode(response.patch);
  }
  if (!response.warnings.empty()) resp["warnings"] = response.warnings;
  if (!response.auditAnnotations.empty()) resp["auditAnnotations"] = response.auditAnnotations;
  Json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"response", std::move(resp)}};
  return review.dump(-1, ' ', false, Json::error_handler_t::replace);
}

TEST_F(ReviewTest, EncodedResponseIsByteForByteWhatAJsonDumpGives) {
  std::vector<AdmissionResponse> cases(5);
  cases[0].uid = "705ab4f5-6393-11e8-b7cc-42010a800002";
  cases[1].uid = "u\"quoted\\back";
  cases[1].allowed = false;
  cases[1].code = 403;
  cases[1].reason = "Forbidden";
  cases[1].message = "tasklease: [TL001] spec.containers[0].env[0]: \"x\"\n\ttab \x01 ctrl";
  cases[1].warnings = {"w1", "caf\xc3\xa9 ok", "bad \xff\xfe utf-8"};
  cases[2].uid = "w";
  cases[2].message = "allowed with a message";
  cases[2].auditAnnotations = {{"violations", "TL001@spec"}, {"b", "\xe2\x82"}, {"a", ""}};
  cases[3].uid = "p";
  cases[3].patch = R"([{"op":"add","path":"/metadata/annotations","value":{}}])";
  cases[3].warnings = {"one"};
  cases[4].uid = "";
  cases[4].allowed = false;
  cases[4].code = 503;
  for (const auto& c : cases) EXPECT_EQ(encodeAdmissionReview(c), referenceEncoding(c)) << c.uid;
}

TEST_F(ReviewTest, EnforceDeniesWith403ListingEveryViolation) {
  auto out = review(request(pod(badPodSpec())));
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_FALSE(out.response.allowed);
  EXPECT_EQ(out.response.code, 403);
  EXPECT_EQ(out.response.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
  EXPECT_THAT(out.response.message, HasSubstr("[TL001] spec.initContainers[0].env[0]"));
  EXPECT_THAT(out.response.message, HasSubstr("[TL006] spec.serviceAccountName"));
  EXPECT_THAT(out.violatedRules, ElementsAre(RuleId::kTL001, RuleId::kTL006));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(out.evidence[0].actor, "alice");
  EXPECT_EQ(out.evidence[0].details["violations"][0]["rule"], "TL001");
  EXPECT_EQ(out.evidence[0].details["object"], "Pod/web");
}

TEST_F(ReviewTest, CompliantPodIsAllowedWithoutEvidence) {
  auto out = review(request(pod(cleanSpec())));
  EXPECT_EQ(out.decision, Decision::kAllowed);
  EXPECT_TRUE(out.response.allowed);
  EXPECT_THAT(out.response.warnings, IsEmpty());
  EXPECT_THAT(out.evidence, IsEmpty());
}

TEST_F(ReviewTest, WarnModeAllowsWithAWarningPerViolation) {
  state_ = standardState("warn");
  auto out = review(request(pod(badPodSpec())));
  EXPECT_EQ(out.decision, Decision::kWarned);
  EXPECT_TRUE(out.response.allowed);
  ASSERT_THAT(out.response.warnings, SizeIs(2));
  EXPECT_THAT(out.response.warnings[0], HasSubstr("[TL001] spec.initContainers[0].env[0]"));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kAdmitted);
  EXPECT_EQ(out.evidence[0].details["mode"], "warn");
}

TEST_F(ReviewTest, AuditModeAllowsSilentlyWithEvidence) {
  state_ = standardState("audit");
  auto out = review(request(pod(badPodSpec())));
  EXPECT_EQ(out.decision, Decision::kAudited);
  EXPECT_TRUE(out.response.allowed);
  EXPECT_THAT(out.response.warnings, IsEmpty());
  EXPECT_THAT(out.response.auditAnnotations.at("violations"), HasSubstr("TL001@"));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].details["mode"], "audit");
}

TEST_F(ReviewTest, NamespaceWithoutTheLabelIsNotEvaluated) {
  Json p = pod(badPodSpec());
  auto r = request(p);
  r.ns = "plain";
  auto out = review(r);
  EXPECT_EQ(out.decision, Decision::kSkipped);
  EXPECT_TRUE(out.response.allowed);
  EXPECT_THAT(out.evidence, IsEmpty());
}

TEST_F(ReviewTest, UnknownEnforcementValueIsEnforcedWithAWarning) {
  state_.add(namespaceObject("team-a", "enforced"));
  auto out = review(request(pod(badPodSpec())));
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.response.warnings, ElementsAre(HasSubstr("treated as enforce")));
}

TEST_F(ReviewTest, ExemptNamespaceIsNeverEvaluated) {
  auto r = request(pod(badPodSpec()));
  r.ns = "kube-system";
  r.object["metadata"]["namespace"] = "kube-system";
  EXPECT_EQ(review(r).decision, Decision::kSkipped);
}

TEST_F(ReviewTest, DryRunGivesTheSameAnswerAndNoEvidence) {
  auto r = request(pod(badPodSpec()));
  r.dryRun = true;
  auto out = review(r);
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_EQ(out.response.code, 403);
  EXPECT_THAT(out.evidence, IsEmpty());
}

TEST_F(ReviewTest, IdentityExceptionAllowsWithAWarningAndEvidence) {
  state_.add({{"apiVersion", "tasklease.io/v1alpha1"},
              {"kind", "IdentityException"},
              {"metadata", {{"name", "legacy"}, {"namespace", "team-a"}}},
              {"spec",
               {{"reason", "migration"},
                {"approvedBy", "bob"},
                {"expiresAt", "2026-03-05T00:00:00Z"},
                {"rules", {"TL001", "TL006"}},
                {"serviceAccountNames", {"shared"}}}}});
  auto out = review(request(pod(badPodSpec())));
  EXPECT_EQ(out.decision, Decision::kExcepted);
  EXPECT_TRUE(out.response.allowed);
  ASSERT_THAT(out.response.warnings, SizeIs(2));
  EXPECT_THAT(out.response.warnings[0], HasSubstr("IdentityException \"legacy\" (approved by bob"));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kExceptionUsed);
  EXPECT_EQ(out.evidence[0].details["exception"], "legacy");
  EXPECT_THAT(out.evidence[0].details["allowed"], SizeIs(2));

  // After expiry it allows nothing.
  auto later = reviewAdmission(request(pod(badPodSpec())), state_, ReviewConfig{},
                               *parseRfc3339("2026-03-05T00:00:01Z"));
  EXPECT_EQ(later.decision, Decision::kDenied);
}

TEST_F(ReviewTest, ExceptionCoversOnlyItsRules) {
  state_.add({{"apiVersion", "tasklease.io/v1alpha1"},
              {"kind", "IdentityException"},
              {"metadata", {{"name", "partial"}, {"namespace", "team-a"}}},
              {"spec",
               {{"reason", "r"},
                {"approvedBy", "bob"},
                {"expiresAt", "2026-03-05T00:00:00Z"},
                {"rules", {"TL006"}},
                {"serviceAccountNames", {"shared"}}}}});
  auto out = review(request(pod(badPodSpec())));
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.violatedRules, ElementsAre(RuleId::kTL001));
  EXPECT_THAT(out.exceptedRules, ElementsAre(RuleId::kTL006));
  EXPECT_THAT(out.response.message, Not(HasSubstr("TL006")));
  ASSERT_THAT(out.evidence, SizeIs(2));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(out.evidence[1].kind, EvidenceKind::kExceptionUsed);
}

TEST_F(ReviewTest, PodUnderAnActiveTaskIsAdmittedWithEvidenceNamingTheTask) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  auto out = review(request(pod(spec, {{"tasklease.io/task", "build"}})));
  EXPECT_EQ(out.decision, Decision::kAllowed);
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kAdmitted);
  EXPECT_EQ(out.evidence[0].task.name, "build");
  EXPECT_EQ(out.evidence[0].task.uid, "uid-build");
  EXPECT_EQ(out.evidence[0].task.ns, "team-a");
}

TEST_F(ReviewTest, EphemeralContainersUpdateJudgesOnlyTheNewContainers) {
  Json old = pod(badPodSpec());
  Json updated = old;
  Json debug = container("debug");
  debug["env"] = {envSecretRef("T", "t")};
  updated["spec"]["ephemeralContainers"] = {debug};
  auto r = request(updated, "UPDATE", old);
  r.subResource = "ephemeralcontainers";
  auto out = review(r);
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.violatedRules, ElementsAre(RuleId::kTL001));
  EXPECT_THAT(out.response.message, HasSubstr("spec.ephemeralContainers[0].env[0]"));
  // A clean debug container is admitted even though the pod itself predates the rules.
  updated["spec"]["ephemeralContainers"][0].erase("env");
  r = request(updated, "UPDATE", old);
  r.subResource = "ephemeralcontainers";
  EXPECT_EQ(review(r).decision, Decision::kAllowed);
}

TEST_F(ReviewTest, PodUpdatesAndOtherSubresourcesAreNotJudgedAgain) {
  Json p = pod(badPodSpec());
  EXPECT_EQ(review(request(p, "UPDATE", p)).decision, Decision::kSkipped);
  auto r = request(p, "UPDATE", p);
  r.subResource = "status";
  EXPECT_EQ(review(r).decision, Decision::kSkipped);
  EXPECT_EQ(review(request(p, "DELETE", p)).decision, Decision::kSkipped);
}

TEST_F(ReviewTest, WorkloadUpdateIsJudgedOnlyWhenWhatTheRulesReadChanges) {
  Json d = workload("Deployment", badPodSpec());
  Json scaled = d;
  scaled["spec"]["replicas"] = 3;
  EXPECT_EQ(review(request(scaled, "UPDATE", d)).decision, Decision::kSkipped);
  // A new image changes nothing the rules read: the pods it makes are judged on their own.
  Json image = d;
  image["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.example/app:2";
  EXPECT_EQ(review(request(image, "UPDATE", d)).decision, Decision::kSkipped);
  Json env = d;
  env["spec"]["template"]["spec"]["containers"][0]["env"] = {envValue("LOG_LEVEL", "debug")};
  auto out = review(request(env, "UPDATE", d));
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.response.message, HasSubstr("spec.template.spec.initContainers[0].env[0]"));
}

TEST_F(ReviewTest, DecoderLeavesWorkloadsInTheParsedBody) {
  Json d = workload("Deployment", badPodSpec());
  d["spec"]["template"]["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", "1"}}}};
  d["metadata"]["annotations"] = {{"a", "b"}};
  d["spec"]["template"]["spec"]["initContainers"][0]["image"] = "x";
  auto r = request(d);
  // Nothing is converted: the rules read the object in place ...
  EXPECT_TRUE(r.object.is_null());
  ASSERT_NE(r.document, nullptr);
  ASSERT_TRUE(r.document->object.has_value());
  EXPECT_EQ(r.objectView().toJson(), d);
  EXPECT_EQ(r.objectView().member("metadata").member("name").string(), "web");
  EXPECT_EQ(review(r).decision, Decision::kDenied);
  // ... and what they read of a pod spec, the part an UPDATE is compared on, is its service
  // account, volumes and the containers' names, env and envFrom.
  Json read = podSpecAsRulesRead(r.objectView().member("spec").member("template").member("spec"));
  const Json& c = read["containers"][0];
  EXPECT_EQ(c["name"], "app");
  EXPECT_FALSE(c.contains("image"));
  EXPECT_FALSE(c.contains("resources"));
  EXPECT_EQ(read["initContainers"],
            Json::array({{{"name", "init"}, {"env", badPodSpec()["initContainers"][0]["env"]}}}));
  // Other kinds are converted whole.
  Json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "c"}}},
             {"data", {{"k", "v"}}}};
  EXPECT_EQ(request(cm).object, cm);
  EXPECT_EQ(request(cm).document, nullptr);
}

// The rules read the parsed body in place; on the same input they must find what they find in
// the converted Json (the path manifests and hand-built requests take), including for odd
// shapes and repeated keys (the last one counts in both).
TEST_F(ReviewTest, RulesReadTheBodyInPlaceAsTheyReadJson) {
  const std::string spec = R"({"serviceAccountName":"web","containers":[
      {"name":"a","env":[{"name":"A","value":"x","value":"ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"},
                         {"name":"B","valueFrom":{"secretKeyRef":null}},
                         {"name":"C","valueFrom":"secretKeyRef"},
                         "not-an-object",
                         {"name":"API_TOKEN","value":"Zk9xQ2pLr8TmW4vNs7YbHc3"},
                         {"name":"U","value":"https://bob:hunter2@db.internal/x"}],
       "envFrom":[{"secretRef":{"name":"s"}},{"configMapRef":{"name":"c"}},{"secretRef":1}]},
      "not-a-container",
      {"name":"b","env":{"name":"NOT","value":"a list"}},
      {"name":"c","name":"renamed","env":[{"name":"K","value":"AKIAIOSFODNN7EXAMPLE"}]}],
    "initContainers":{"name":"not-a-list"},
    "ephemeralContainers":[{"name":"e","envFrom":[{"secretRef":{"name":"t"}}]}],
    "volumes":[{"name":"v","secret":{"secretName":"s"}},"not-a-volume",
               {"name":"p","projected":{"sources":[{"secret":{"name":"q"}},
                   {"serviceAccountToken":{"expirationSeconds":86400}},
                   {"serviceAccountToken":{"expirationSeconds":"1h"}},
                   {"serviceAccountToken":{"expirationSeconds":18446744073709551615}},
                   {"serviceAccountToken":{}}]}},
               {"name":"kube-api-access-x","projected":{"sources":[
                   {"serviceAccountToken":{"expirationSeconds":3607}}]}},
               {"name":"w","secret":{"secretName":"a","secretName":"b"}}],
    "serviceAccountName":"default",
    "containers":[{"name":"last","env":[{"name":"X","valueFrom":{"secretKeyRef":{"name":"z"}}}]},
                  {"name":"a","env":[{"name":"A","value":"x","value":"ghp_aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3xY5"},
                                     {"name":"PASSWORD","value":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl"}]}]})";
  for (const std::string kind : {"Pod", "Deployment", "CronJob"}) {
    Json object = workload(kind, Json::object());
    std::string body = reviewJson(object).dump();
    const std::string placeholder = "\"spec\":{}";
    size_t at = body.rfind(placeholder);
    ASSERT_NE(at, std::string::npos);
    body.replace(at, placeholder.size(), "\"spec\":" + spec);
    auto inPlace = decodeAdmissionReview(body);
    ASSERT_TRUE(inPlace.ok()) << inPlace.status().toString();
    ASSERT_NE(inPlace->document, nullptr);
    ASSERT_TRUE(inPlace->document->object.has_value()) << kind;

    // The same request converted into object, and no document.
    AdmissionRequest converted = *inPlace;
    converted.document = nullptr;
    converted.object = inPlace->objectView().toJson();
    EXPECT_EQ(converted.object["spec"].is_object(), true);

    ReviewOutcome a = review(*inPlace);
    ReviewOutcome b = review(converted);
    EXPECT_EQ(a.decision, Decision::kDenied) << kind;
    EXPECT_EQ(a.response.message, b.response.message) << kind;
    EXPECT_THAT(a.response.message, HasSubstr("containers[1].env[0]")) << kind;  // repeated value
    EXPECT_THAT(a.response.message, HasSubstr("[TL001]")) << kind;
    EXPECT_THAT(a.response.message, HasSubstr("[TL002] ")) << kind;
    EXPECT_THAT(a.response.message, HasSubstr("[TL003] ")) << kind;
    EXPECT_THAT(a.response.message, HasSubstr("Secret \"b\"")) << kind;  // repeated secretName
    EXPECT_THAT(a.response.message, HasSubstr("[TL005] ")) << kind;  // the last serviceAccountName
    EXPECT_THAT(a.response.message, HasSubstr("lives 86400 s")) << kind;
    EXPECT_THAT(a.response.message, HasSubstr("lives 9223372036854775807 s")) << kind;
    EXPECT_THAT(a.response.message, HasSubstr("expirationSeconds is not an integer")) << kind;
    EXPECT_THAT(a.response.message, Not(HasSubstr("lives 3607 s"))) << kind;
    EXPECT_EQ(a.violatedRules, b.violatedRules) << kind;
  }
}

TEST_F(ReviewTest, ObjectBeingDeletedIsNotJudged) {
  Json d = workload("Deployment", badPodSpec());
  Json deleting = d;
  deleting["metadata"]["deletionTimestamp"] = "2026-03-01T11:00:00Z";
  deleting["spec"]["template"]["metadata"]["labels"]["x"] = "y";
  EXPECT_EQ(review(request(deleting, "UPDATE", d)).decision, Decision::kSkipped);
}

TEST_F(ReviewTest, OtherKindsAndSameNamedKindsOfOtherGroupsAreSkipped) {
  Json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}};
  EXPECT_EQ(review(request(cm)).decision, Decision::kSkipped);
  Json crd = workload("Deployment", badPodSpec());
  crd["apiVersion"] = "example.com/v1";
  EXPECT_EQ(review(request(crd)).decision, Decision::kSkipped);
}

TEST_F(ReviewTest, UnreadableWorkloadIsRefusedWith400) {
  Json d = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "web"}}},
            {"spec", {{"template", "nope"}}}};
  auto out = review(request(d));
  EXPECT_EQ(out.decision, Decision::kInvalid);
  EXPECT_FALSE(out.response.allowed);
  EXPECT_EQ(out.response.code, 400);
  EXPECT_THAT(out.response.message, HasSubstr("spec.template"));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(out.evidence[0].details["reason"], "unreadable");
}

Json exceptionObj(const std::string& expiresAt) {
  return {{"apiVersion", "tasklease.io/v1alpha1"},
          {"kind", "IdentityException"},
          {"metadata", {{"name", "legacy"}, {"namespace", "team-a"}}},
          {"spec",
           {{"reason", "r"},
            {"approvedBy", "bob"},
            {"expiresAt", expiresAt},
            {"rules", {"TL001"}},
            {"serviceAccountNames", {"shared"}}}}};
}

TEST_F(ReviewTest, IdentityExceptionObjectsAreValidatedInAnyNamespace) {
  auto r = request(exceptionObj("2026-06-01T00:00:00Z"));
  r.ns = "plain";
  auto out = review(r);
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_EQ(out.response.code, 422);
  EXPECT_EQ(out.response.reason, "Invalid");
  EXPECT_THAT(out.response.message, HasSubstr("spec.expiresAt"));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(out.evidence[0].details["object"], "IdentityException/legacy");
  EXPECT_EQ(out.evidence[0].task.ns, "plain");
  EXPECT_EQ(review(request(exceptionObj("2026-03-10T00:00:00Z"))).decision, Decision::kAllowed);
}

TEST_F(ReviewTest, IdentityExceptionMetadataOnlyUpdateIsAllowedAfterExpiry) {
  Json old = exceptionObj("2026-02-20T00:00:00Z");
  old["metadata"]["creationTimestamp"] = "2026-02-10T00:00:00Z";
  Json updated = old;
  updated["metadata"]["labels"] = {{"team", "a"}};
  EXPECT_EQ(review(request(updated, "UPDATE", old)).decision, Decision::kSkipped);
  updated["spec"]["expiresAt"] = "2026-03-20T00:00:00Z";  // 38 days after creation
  EXPECT_EQ(review(request(updated, "UPDATE", old)).decision, Decision::kDenied);
}

TEST_F(ReviewTest, AWorkloadUpdateOfOnlyTheDeprecatedServiceAccountFieldIsJudgedAgain) {
  state_.add(serviceAccount("deploy-sa", "Deployment/web"));
  Json spec = cleanSpec();
  spec.erase("serviceAccountName");
  spec["serviceAccount"] = "deploy-sa";
  const Json before = workload("Deployment", spec);
  ASSERT_EQ(review(request(before)).decision, Decision::kAllowed);
  Json after = before;
  after["spec"]["template"]["spec"]["serviceAccount"] = "default";
  const auto out = review(request(after, "UPDATE", before));
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.response.message, HasSubstr("[TL005] spec.template.spec.serviceAccount:"));
}

TEST_F(ReviewTest, WarnModeAdmitsAWorkloadAndRecordsWhatItViolates) {
  // A second, independent test of warn mode: another kind, another rule.
  state_ = standardState("warn");
  state_.add(serviceAccount("deploy-sa", "Deployment/web"));
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "deploy-sa";
  spec["volumes"] = {{{"name", "db"}, {"secret", {{"secretName", "db"}}}}};
  const auto out = review(request(workload("Deployment", spec)));
  EXPECT_EQ(out.decision, Decision::kWarned);
  EXPECT_TRUE(out.response.allowed);
  EXPECT_EQ(out.response.code, 200);
  ASSERT_THAT(out.response.warnings, SizeIs(1));
  EXPECT_THAT(out.response.warnings[0], HasSubstr("[TL003] spec.template.spec.volumes[0]"));
  EXPECT_TRUE(out.response.auditAnnotations.empty());
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kAdmitted);
  EXPECT_EQ(out.evidence[0].details["mode"], "warn");
  EXPECT_EQ(out.evidence[0].details["violations"][0]["rule"], "TL003");
}

TEST_F(ReviewTest, AuditModeAdmitsAWorkloadWithOnlyAnAuditAnnotation) {
  // A second, independent test of audit mode: a CronJob with no ServiceAccount.
  state_ = standardState("audit");
  Json spec = cleanSpec();
  spec.erase("serviceAccountName");
  const auto out = review(request(workload("CronJob", spec)));
  EXPECT_EQ(out.decision, Decision::kAudited);
  EXPECT_TRUE(out.response.allowed);
  EXPECT_TRUE(out.response.message.empty());
  EXPECT_THAT(out.response.warnings, IsEmpty());
  EXPECT_EQ(out.response.auditAnnotations.at("violations"),
            "TL005@spec.jobTemplate.spec.template.spec.serviceAccountName");
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kAdmitted);
  EXPECT_EQ(out.evidence[0].details["mode"], "audit");
}

TEST_F(ReviewTest, AnExceptionMayLastThirtyDaysFromItsCreationAndNotOneSecondMore) {
  // A second, independent test of the 30-day limit, through the admission of a CREATE.
  const std::string limit = formatRfc3339(testNow() + std::chrono::hours(24 * 30));
  EXPECT_EQ(review(request(exceptionObj(limit))).decision, Decision::kAllowed);
  const auto out = review(request(exceptionObj(
      formatRfc3339(testNow() + std::chrono::hours(24 * 30) + std::chrono::seconds(1)))));
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_EQ(out.response.code, 422);
  EXPECT_THAT(out.response.message, HasSubstr("more than 30 days after the exception's creation"));
}

TEST_F(ReviewTest, AStoredExceptionCoveringAWholeNamespaceAllowsNothingAndSaysSo) {
  Json broad = exceptionObj("2026-03-05T00:00:00Z");
  broad["metadata"]["name"] = "everything";
  broad["spec"].erase("serviceAccountNames");
  broad["spec"]["rules"] = {"TL001", "TL006"};
  broad["spec"]["podSelector"] = {
      {"matchExpressions", {{{"key", "no-such-label"}, {"operator", "DoesNotExist"}}}}};
  state_.add(broad);
  const auto out = review(request(pod(badPodSpec())));
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.exceptedRules, IsEmpty());
  ASSERT_THAT(out.response.warnings, SizeIs(1));
  EXPECT_THAT(out.response.warnings[0], HasSubstr("IdentityException team-a/everything"));
  EXPECT_THAT(out.response.warnings[0], HasSubstr("allows nothing"));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(out.evidence[0].details["ignoredExceptions"][0]["exception"], "everything");
}

Json taskPodAs(const std::string& name) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "tl-build";
  spec["volumes"] = {{{"name", "cred"}, {"secret", {{"secretName", "tl-build-credential"}}}}};
  return pod(spec, {{"tasklease.io/task", "build"}}, name);
}

TEST_F(ReviewTest, APodUnderAnotherUsersTaskIsRefusedThePodsOfItsJobAreNot) {
  auto r = request(taskPodAs("borrowed"));
  r.userInfo = {"bob", "u-2", {"devs"}, {}};
  auto out = review(r);
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.response.message, HasSubstr("[TL008] spec.serviceAccountName"));
  EXPECT_THAT(out.response.message, HasSubstr("by \"bob\""));
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kRejected);
  EXPECT_EQ(out.evidence[0].task.name, "build");

  Json fromJob = taskPodAs("tl-build-x7k2p");
  fromJob["metadata"]["ownerReferences"] = {{{"apiVersion", "batch/v1"},
                                             {"kind", "Job"},
                                             {"name", "tl-build"},
                                             {"uid", "job-uid"},
                                             {"controller", true}}};
  r = request(fromJob);
  r.userInfo = {
      "system:serviceaccount:kube-system:job-controller",
      "jc-uid",
      {"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
      {}};
  out = review(r);
  EXPECT_EQ(out.decision, Decision::kAllowed) << out.response.message;
  ASSERT_THAT(out.evidence, SizeIs(1));
  EXPECT_EQ(out.evidence[0].kind, EvidenceKind::kAdmitted);
}

TEST_F(ReviewTest, OnlyTheDelegatorMayAddEphemeralContainersToATasksPod) {
  Json old = taskPodAs("agent");
  Json updated = old;
  updated["spec"]["ephemeralContainers"] = {container("debug")};
  auto r = request(updated, "UPDATE", old);
  r.subResource = "ephemeralcontainers";
  r.userInfo = {"bob", "u-2", {"devs"}, {}};
  const auto out = review(r);
  EXPECT_EQ(out.decision, Decision::kDenied);
  EXPECT_THAT(out.response.message, HasSubstr("[TL008] spec.ephemeralContainers"));
  r.userInfo = {"alice", "u-1", {"devs"}, {}};
  EXPECT_EQ(review(r).decision, Decision::kAllowed);
}

}  // namespace
}  // namespace tasklease::webhook
