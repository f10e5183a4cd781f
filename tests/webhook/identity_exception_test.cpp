#include "webhook/identity_exception.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/webhook/fixtures.h"

namespace tasklease::webhook {
namespace {

using ::testing::HasSubstr;
using testing::testNow;

Json exceptionObject(const Json& spec) {
  return {{"apiVersion", "tasklease.io/v1alpha1"},
          {"kind", "IdentityException"},
          {"metadata", {{"name", "legacy"}, {"namespace", "team-a"}}},
          {"spec", spec}};
}

Json validSpec() {
  return {{"reason", "legacy billing job until migration"},
          {"approvedBy", "security@example.com"},
          {"expiresAt", "2026-03-08T12:00:00Z"},
          {"rules", {"TL001", "TL006"}},
          {"serviceAccountNames", {"billing"}}};
}

std::vector<std::string> fields(const std::vector<FieldProblem>& problems) {
  std::vector<std::string> out;
  for (const auto& p : problems) out.push_back(p.field);
  return out;
}

TEST(IdentityExceptionTest, ValidExceptionHasNoProblems) {
  EXPECT_TRUE(
      validateIdentityException(exceptionObject(validSpec()), testNow(), testNow()).empty());
}

TEST(IdentityExceptionTest, ExpiryIsRequired) {
  Json spec = validSpec();
  spec.erase("expiresAt");
  auto p = validateIdentityException(exceptionObject(spec), testNow(), testNow());
  EXPECT_THAT(fields(p), ::testing::ElementsAre("spec.expiresAt"));
}

TEST(IdentityExceptionTest, ExpiryAtMostThirtyDaysAfterCreation) {
  Json spec = validSpec();
  spec["expiresAt"] = "2026-03-31T12:00:00Z";  // exactly 30 days
  EXPECT_TRUE(validateIdentityException(exceptionObject(spec), testNow(), testNow()).empty());
  spec["expiresAt"] = "2026-03-31T12:00:01Z";
  auto p = validateIdentityException(exceptionObject(spec), testNow(), testNow());
  ASSERT_THAT(fields(p), ::testing::ElementsAre("spec.expiresAt"));
  EXPECT_THAT(p[0].message, HasSubstr("2026-03-31T12:00:00Z"));
}

TEST(IdentityExceptionTest, UpdateCannotPushExpiryPastThirtyDaysFromCreation) {
  Json spec = validSpec();
  spec["expiresAt"] = "2026-03-20T12:00:00Z";
  TimePoint created = *parseRfc3339("2026-02-15T12:00:00Z");
  auto p = validateIdentityException(exceptionObject(spec), testNow(), created);
  EXPECT_THAT(fields(p), ::testing::ElementsAre("spec.expiresAt"));
}

TEST(IdentityExceptionTest, ExpiryInThePastOrUnparsable) {
  Json spec = validSpec();
  spec["expiresAt"] = "2026-02-01T00:00:00Z";
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec.expiresAt"));
  spec["expiresAt"] = "next week";
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec.expiresAt"));
}

TEST(IdentityExceptionTest, ApproverReasonAndKnownRulesRequired) {
  Json spec = validSpec();
  spec["approvedBy"] = " ";
  spec.erase("reason");
  spec["rules"] = {"TL001", "TL042"};
  auto p = validateIdentityException(exceptionObject(spec), testNow(), testNow());
  EXPECT_THAT(fields(p), ::testing::ElementsAre("spec.reason", "spec.approvedBy", "spec.rules[1]"));
  spec = validSpec();
  spec["rules"] = Json::array();
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec.rules"));
}

TEST(IdentityExceptionTest, MustNameThePodsItCovers) {
  Json spec = validSpec();
  spec.erase("serviceAccountNames");
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec"));
  spec["podSelector"] = Json::object();
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec"));
  spec["podSelector"] = {{"matchLabels", {{"app", "billing"}}}};
  EXPECT_TRUE(validateIdentityException(exceptionObject(spec), testNow(), testNow()).empty());
}

TEST(IdentityExceptionTest, MalformedSelectorIsReportedByPath) {
  Json spec = validSpec();
  spec["podSelector"] = {{"matchExpressions", {{{"key", "app"}, {"operator", "Like"}}}}};
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec.podSelector.matchExpressions[0].operator"));
}

TEST(IdentityExceptionTest, CoversOnlyItsRulesPodsAndTime) {
  Json spec = validSpec();
  spec["podSelector"] = {{"matchLabels", {{"app", "billing"}}}};
  auto e = parseIdentityException(exceptionObject(spec));
  ASSERT_TRUE(e.ok()) << e.status().toString();
  Json labels = {{"app", "billing"}};
  EXPECT_TRUE(e->covers(RuleId::kTL001, "billing", labels, testNow()));
  EXPECT_FALSE(e->covers(RuleId::kTL004, "billing", labels, testNow()));          // other rule
  EXPECT_FALSE(e->covers(RuleId::kTL001, "other", labels, testNow()));            // other SA
  EXPECT_FALSE(e->covers(RuleId::kTL001, "billing", {{"app", "x"}}, testNow()));  // labels
  EXPECT_FALSE(e->covers(RuleId::kTL001, "billing", labels,
                         *parseRfc3339("2026-03-08T12:00:00Z")));  // expired at expiresAt
}

TEST(IdentityExceptionTest, ParseRefusesAnExceptionCreatedWithTooLongALife) {
  Json obj = exceptionObject(validSpec());
  obj["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
  auto e = parseIdentityException(obj);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("30 days"));
}

TEST(IdentityExceptionTest, PodSelectorExpressionsDecideWhichPodsAreCovered) {
  Json spec = validSpec();
  spec.erase("serviceAccountNames");
  spec["podSelector"] = {{"matchExpressions",
                          {{{"key", "app"}, {"operator", "In"}, {"values", {"web", "api"}}},
                           {{"key", "canary"}, {"operator", "DoesNotExist"}}}}};
  auto e = parseIdentityException(exceptionObject(spec));
  ASSERT_TRUE(e.ok()) << e.status().toString();
  EXPECT_TRUE(e->covers(RuleId::kTL001, "any", {{"app", "api"}}, testNow()));
  EXPECT_FALSE(e->covers(RuleId::kTL001, "any", {{"app", "db"}}, testNow()));
  EXPECT_FALSE(e->covers(RuleId::kTL001, "any", {{"app", "web"}, {"canary", "1"}}, testNow()));
  EXPECT_FALSE(e->covers(RuleId::kTL001, "any", Json::object(), testNow()));
}

// ---- what an exception may select ----

TEST(IdentityExceptionTest, SelectorsThatOnlySayWhatPodsLackAreRefused) {
  const std::vector<Json> overBroad = {
      Json::object(),
      {{"matchExpressions", {{{"key", "canary"}, {"operator", "DoesNotExist"}}}}},
      {{"matchExpressions", {{{"key", "app"}, {"operator", "NotIn"}, {"values", {"db"}}}}}},
      {{"matchExpressions", {{{"key", "app"}, {"operator", "Exists"}}}}},
      {{"matchExpressions",
        {{{"key", "a"}, {"operator", "DoesNotExist"}},
         {{"key", "b"}, {"operator", "NotIn"}, {"values", {"x"}}}}}}};
  for (const Json& selector : overBroad) {
    Json spec = validSpec();
    spec.erase("serviceAccountNames");
    spec["podSelector"] = selector;
    const auto p = validateIdentityException(exceptionObject(spec), testNow(), testNow());
    ASSERT_THAT(fields(p), ::testing::ElementsAre("spec")) << selector.dump();
    EXPECT_THAT(p[0].message, HasSubstr("name the workloads it covers")) << selector.dump();
  }
}

TEST(IdentityExceptionTest, ALabelValueOrTheNamesOfServiceAccountsNameTheWorkloads) {
  const std::vector<Json> naming = {
      {{"matchLabels", {{"app", "billing"}}}},
      {{"matchExpressions",
        {{{"key", "app"}, {"operator", "In"}, {"values", {"billing"}}},
         {{"key", "canary"}, {"operator", "DoesNotExist"}}}}}};
  for (const Json& selector : naming) {
    Json spec = validSpec();
    spec.erase("serviceAccountNames");
    spec["podSelector"] = selector;
    EXPECT_TRUE(validateIdentityException(exceptionObject(spec), testNow(), testNow()).empty())
        << selector.dump();
  }
  // "default" is every pod that names no ServiceAccount: it names nothing on its own ...
  Json spec = validSpec();
  spec["serviceAccountNames"] = {"default"};
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec"));
  // ... but may be narrowed by labels.
  spec["podSelector"] = {{"matchLabels", {{"app", "billing"}}}};
  EXPECT_TRUE(validateIdentityException(exceptionObject(spec), testNow(), testNow()).empty());
  // A ServiceAccount name with a wildcard is not a name.
  spec = validSpec();
  spec["serviceAccountNames"] = {"billing", "team-*"};
  EXPECT_THAT(fields(validateIdentityException(exceptionObject(spec), testNow(), testNow())),
              ::testing::ElementsAre("spec.serviceAccountNames[1]"));
}

TEST(IdentityExceptionTest, AStoredExceptionThatNamesNoWorkloadsCoversNothing) {
  // Created before the webhook refused such selectors: reading it for matching refuses it.
  Json spec = validSpec();
  spec.erase("serviceAccountNames");
  spec["podSelector"] = {{"matchExpressions", {{{"key", "nope"}, {"operator", "DoesNotExist"}}}}};
  auto e = parseIdentityException(exceptionObject(spec));
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), HasSubstr("name the workloads it covers"));
  spec = validSpec();
  spec["serviceAccountNames"] = {"default"};
  EXPECT_FALSE(parseIdentityException(exceptionObject(spec)).ok());
}

}  // namespace
}  // namespace tasklease::webhook
