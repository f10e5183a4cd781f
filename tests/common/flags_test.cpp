#include "common/flags.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tasklease {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(FlagsTest, ParsesEveryFormAndKeepsPositionals) {
  FlagSet f("prog");
  std::string s = "x";
  int64_t n = 1;
  bool b = false;
  std::chrono::nanoseconds d = std::chrono::seconds(1);
  std::vector<std::string> list = {"default"};
  f.addString("name", &s, "");
  f.addInt("port", &n, "");
  f.addBool("verbose", &b, "");
  f.addDuration("wait", &d, "");
  f.addStrings("file", &list, "");
  f.addShort('f', "file");
  auto rest = f.parse({"check", "--name", "a", "--port=9", "--verbose", "--wait", "1m30s", "-f",
                       "a.yaml", "-fb.yaml", "--file=c.yaml", "-", "--", "--literal"});
  ASSERT_TRUE(rest.ok()) << rest.status().toString();
  EXPECT_THAT(*rest, ElementsAre("check", "-", "--literal"));
  EXPECT_EQ(s, "a");
  EXPECT_EQ(n, 9);
  EXPECT_TRUE(b);
  EXPECT_EQ(d, std::chrono::seconds(90));
  EXPECT_THAT(list, ElementsAre("a.yaml", "b.yaml", "c.yaml"));
  EXPECT_TRUE(f.wasSet("file"));
  EXPECT_FALSE(f.wasSet("nope"));
}

TEST(FlagsTest, ErrorsNameTheFlag) {
  FlagSet f("prog");
  int64_t n = 0;
  bool b = false;
  f.addInt("port", &n, "");
  f.addBool("verbose", &b, "");
  EXPECT_THAT(f.parse({"--port", "eighty"}).status().message(), HasSubstr("--port"));
  EXPECT_THAT(f.parse({"--verbose=maybe"}).status().message(), HasSubstr("--verbose"));
  EXPECT_THAT(f.parse({"--nope"}).status().message(), HasSubstr("unknown flag --nope"));
  EXPECT_THAT(f.parse({"--port"}).status().message(), HasSubstr("needs a value"));
}

TEST(FlagsTest, UsageListsFlagsWithDefaults) {
  FlagSet f("prog");
  int64_t n = 8443;
  f.addInt("port", &n, "HTTPS port");
  EXPECT_THAT(f.usage(), HasSubstr("--port  HTTPS port (default 8443)"));
}

}  // namespace
}  // namespace tasklease
