#include "kube/selector.h"

#include <gtest/gtest.h>

#include "common/base64.h"
#include "kube/resource.h"

namespace tasklease::kube {
namespace {

const Json kLabels = {{"app", "web"}, {"tier", "front"}, {"env", "prod"}};

bool matches(const std::string& text, const Json& labels = kLabels) {
  auto sel = LabelSelector::parse(text);
  EXPECT_TRUE(sel.ok()) << sel.status().toString();
  return sel.ok() && sel->matches(labels);
}

TEST(LabelSelectorTest, EmptyMatchesEverything) {
  EXPECT_TRUE(matches(""));
  EXPECT_TRUE(matches("", Json()));
}

TEST(LabelSelectorTest, EqualityAndInequality) {
  EXPECT_TRUE(matches("app=web"));
  EXPECT_TRUE(matches("app==web"));
  EXPECT_FALSE(matches("app=api"));
  EXPECT_TRUE(matches("app!=api"));
  EXPECT_FALSE(matches("app!=web"));
  EXPECT_TRUE(matches("missing!=x"));  // absent keys satisfy !=
}

TEST(LabelSelectorTest, SetsAndExistence) {
  EXPECT_TRUE(matches("env in (dev, prod)"));
  EXPECT_FALSE(matches("env notin (dev,prod)"));
  EXPECT_TRUE(matches("missing notin (a)"));
  EXPECT_TRUE(matches("tier"));
  EXPECT_FALSE(matches("!tier"));
  EXPECT_TRUE(matches("!missing"));
  EXPECT_TRUE(matches("app=web, tier in (front), !missing"));
  EXPECT_FALSE(matches("app=web,tier=back"));
}

TEST(LabelSelectorTest, MalformedSelectorsNameThePosition) {
  for (const char* bad : {"app=web,", "in (a)", "env in a", "env in (a", "app > 3", "=x"}) {
    auto sel = LabelSelector::parse(bad);
    ASSERT_FALSE(sel.ok()) << bad;
    EXPECT_NE(sel.status().message().find("position"), std::string::npos) << bad;
  }
}

TEST(LabelSelectorTest, ToStringRoundTrips) {
  auto sel = LabelSelector::parse("app=web,env in (prod,dev),!x,tier,a!=b");
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(sel->toString(), "app=web,env in (dev,prod),!x,tier,a!=b");
  auto again = LabelSelector::parse(sel->toString());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->toString(), sel->toString());
}

TEST(LabelSelectorTest, FromJsonMatchLabelsAndExpressions) {
  auto sel = LabelSelector::fromJson(Json::parse(R"({
    "matchLabels": {"app": "web"},
    "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "staging"]},
                         {"key": "legacy", "operator": "DoesNotExist"}]})"));
  ASSERT_TRUE(sel.ok()) << sel.status().toString();
  EXPECT_TRUE(sel->matches(kLabels));
  EXPECT_FALSE(sel->matches(Json{{"app", "web"}, {"env", "dev"}}));
  EXPECT_TRUE(LabelSelector::fromJson(Json::object())->matches(kLabels));
}

TEST(LabelSelectorTest, FromJsonErrorsNameTheField) {
  auto bad = LabelSelector::fromJson(
      Json::parse(R"({"matchExpressions": [{"key": "a", "operator": "Exists"},
                                           {"key": "b", "operator": "Near"}]})"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("matchExpressions[1].operator"), std::string::npos);
  auto noValues = LabelSelector::fromJson(
      Json::parse(R"({"matchExpressions": [{"key": "a", "operator": "In"}]})"));
  ASSERT_FALSE(noValues.ok());
  EXPECT_NE(noValues.status().message().find("values"), std::string::npos);
}

TEST(FieldSelectorTest, MatchesNameAndNamespace) {
  const Json obj = {{"metadata", {{"name", "a"}, {"namespace", "ns1"}}}};
  EXPECT_TRUE(*matchesFieldSelector("metadata.name=a", obj));
  EXPECT_TRUE(*matchesFieldSelector("metadata.name==a,metadata.namespace=ns1", obj));
  EXPECT_FALSE(*matchesFieldSelector("metadata.name!=a", obj));
  EXPECT_FALSE(*matchesFieldSelector("metadata.namespace=ns2", obj));
  EXPECT_FALSE(matchesFieldSelector("spec.nodeName=n", obj).ok());
  EXPECT_FALSE(matchesFieldSelector("metadata.name", obj).ok());
}

TEST(ResourceTest, BuildsCorePathsAndGroupPaths) {
  EXPECT_EQ(resources::kConfigMaps.collectionPath("team-a"),
            "/api/v1/namespaces/team-a/configmaps");
  EXPECT_EQ(resources::kConfigMaps.collectionPath(""), "/api/v1/configmaps");
  EXPECT_EQ(resources::kLeases.objectPath("ns", "lock"),
            "/apis/coordination.k8s.io/v1/namespaces/ns/leases/lock");
  EXPECT_EQ(resources::kServiceAccounts.objectPath("ns", "sa", "token"),
            "/api/v1/namespaces/ns/serviceaccounts/sa/token");
  EXPECT_EQ(resources::kClusterRoles.objectPath("ignored", "admin"),
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin");
  const ResourceRef tasks{"tasklease.io", "v1alpha1", "agenttasks", "AgentTask", true};
  EXPECT_EQ(tasks.apiVersion(), "tasklease.io/v1alpha1");
  EXPECT_EQ(tasks.groupResource(), "agenttasks.tasklease.io");
  EXPECT_EQ(tasks.objectPath("a", "b", "status"),
            "/apis/tasklease.io/v1alpha1/namespaces/a/agenttasks/b/status");
}

TEST(ResourceTest, EncodesNamesInPaths) {
  EXPECT_EQ(resources::kConfigMaps.objectPath("ns", "a/../b"),
            "/api/v1/namespaces/ns/configmaps/a%2F..%2Fb");
  EXPECT_EQ(urlEncode("app in (a,b)"), "app%20in%20%28a%2Cb%29");
}

TEST(ResourceTest, FindsBuiltinByKindAndKeysRoundTrip) {
  auto dep = resources::findByKind("apps/v1", "Deployment");
  ASSERT_TRUE(dep.has_value());
  EXPECT_EQ(dep->resource, "deployments");
  EXPECT_FALSE(resources::findByKind("v1", "Deployment").has_value());
  EXPECT_EQ(ObjectKey::parse("ns/name"), (ObjectKey{"ns", "name"}));
  EXPECT_EQ(ObjectKey::parse("cluster-wide"), (ObjectKey{"", "cluster-wide"}));
  EXPECT_EQ((ObjectKey{"ns", "n"}).toString(), "ns/n");
  EXPECT_EQ(objectKeyOf(Json{{"metadata", {{"name", "x"}}}}).toString(), "x");
}

TEST(Base64Test, RoundTripsAndRejectsMalformed) {
  for (const std::string& s : {std::string(), std::string("f"), std::string("foobar"),
                               std::string("fooba"), std::string("\x00\xff", 2)}) {
    EXPECT_EQ(base64Decode(base64Encode(s)), s);
  }
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(base64Decode("Zm9v YmFy").has_value());
  EXPECT_FALSE(base64Decode("Zg=").has_value());
  EXPECT_FALSE(base64Decode("Zg=a").has_value());
  EXPECT_FALSE(base64Decode("=Zg=").has_value());
}

}  // namespace
}  // namespace tasklease::kube
