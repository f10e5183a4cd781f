#include "webhook/env_expansion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

namespace tasklease::webhook {
namespace {

// Expands input with `vars` as the defined variables (the kubelet's expansion.Expand).
std::string expanded(std::string_view input, const std::map<std::string, std::string>& vars,
                     size_t budgetBytes = kMaxExpandedBytesPerPod) {
  std::map<std::string, std::string_view, std::less<>> views(vars.begin(), vars.end());
  ExpansionBudget budget(budgetBytes);
  std::string out;
  const bool ok = expandVariables(
      input,
      [&](std::string_view name) -> const std::string_view* {
        auto it = views.find(name);
        return it == views.end() ? nullptr : &it->second;
      },
      budget, &out);
  return ok ? out : "<over budget>";
}

// What the kubelet's expansion (k8s.io/kubernetes third_party/forked/golang/expansion) makes of
// each input: escapes, undefined and unclosed references, empty values, one pass only.
TEST(EnvExpansionTest, FollowsTheKubeletsExpansionCases) {
  const std::map<std::string, std::string> vars = {
      {"VAR_A", "A"}, {"VAR_B", "B"}, {"VAR_C", "C"}, {"VAR_REF", "$(VAR_A)"}, {"VAR_EMPTY", ""}};
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"$(VAR_A)", "A"},
      {"___$(VAR_B)___", "___B___"},
      {"$(VAR_A)-$(VAR_A)", "A-A"},
      {"f000-$$VAR_A", "f000-$VAR_A"},
      {"foo\\$(VAR_C)bar", "foo\\Cbar"},
      {"foo\\\\$(VAR_C)bar", "foo\\\\Cbar"},
      {"$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"},
      {"$(VAR_REF)", "$(VAR_A)"},  // one pass: a value is not expanded again
      {"foo$(VAR_EMPTY)bar", "foobar"},
      {"$(VAR_EMPTY)", ""},
      {"$$(VAR_B)", "$(VAR_B)"},
      {"$$$(VAR_B)", "$B"},
      {"$$$$(VAR_A)", "$$(VAR_A)"},
      {"$(UNKNOWN)", "$(UNKNOWN)"},
      {"foo$(UNKNOWN)bar", "foo$(UNKNOWN)bar"},
      {"$(VAR_A", "$(VAR_A"},                  // unclosed
      {"$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"},  // the name is "VAR_A$(VAR_B"
      {"$(VAR_A)$(VAR_B", "A$(VAR_B"},
      {"$)", "$)"},
      {"$", "$"},
      {"$$", "$"},
      {"$$$", "$$"},
      {"foo$", "foo$"},
      {"$VAR_A", "$VAR_A"},
      {"$()", "$()"},
      {"$(", "$("},
      {"", ""},
      {"aaa$(VAR_A)bbb$(VAR_B)ccc", "aaaAbbbBccc"},
  };
  for (const auto& [in, want] : cases) EXPECT_EQ(expanded(in, vars), want) << in;
}

TEST(EnvExpansionTest, AByteOfEightBitsAfterTheOperatorComesOutAsGoConvertsIt) {
  // Go's string(byte) makes a rune of the byte: 0xE9 becomes U+00E9, two bytes in UTF-8.
  EXPECT_EQ(expanded("a$\xE9z", {}), "a$\xC3\xA9z");
}

TEST(EnvExpansionTest, TheBudgetBoundsTheOutputAndStaysSpent) {
  ExpansionBudget budget(10);
  std::string out;
  const std::string_view ten = "0123456789";
  auto lookup = [&](std::string_view) -> const std::string_view* { return &ten; };
  EXPECT_TRUE(expandVariables("$(A)", lookup, budget, &out));
  EXPECT_EQ(out, "0123456789");
  EXPECT_FALSE(budget.exhausted());
  out.clear();
  EXPECT_FALSE(expandVariables("$(A)x", lookup, budget, &out));
  EXPECT_TRUE(budget.exhausted());
  EXPECT_FALSE(expandVariables("$$", lookup, budget, &out));
}

TEST(EnvExpansionTest, AContainerSeesEarlierVariablesInEnvAndAllInArgs) {
  ExpansionBudget budget;
  ContainerEnvironment env(budget);
  EXPECT_EQ(env.declare("A", "a"), "a");
  EXPECT_EQ(env.declare("B", "$(A)$(C)"), "a$(C)");
  env.declareUnknown("S");  // valueFrom: unknown
  EXPECT_EQ(env.declare("C", "c$(S)"), "c$(S)");
  EXPECT_EQ(env.declare("A", "z"), "z");  // a later declaration replaces the earlier
  EXPECT_EQ(env.expand("$(A)$(B)$(C)"), "za$(C)c$(S)");
  env.declareUnknown("A");
  EXPECT_EQ(env.expand("$(A)"), "$(A)");
}

TEST(EnvExpansionTest, AValueOfUnclosedReferencesIsReadOnce) {
  // The kubelet searches for ")" from each "$(", quadratic in such a value; this is not. Its
  // cost is not timed here (tests never assert wall-clock time): the result is what matters,
  // and bench/ and the fuzzer keep the cost in sight.
  std::string input;
  for (int i = 0; i < 100000; ++i) input += "$(";
  EXPECT_EQ(expanded(input, {}), input);
  input += ")";
  EXPECT_EQ(expanded(input, {}), input);
}

}  // namespace
}  // namespace tasklease::webhook
