#include "common/log.h"

#include <gtest/gtest.h>

namespace tasklease {
namespace {

TEST(LogTest, EachLineIsOneJsonObjectWithComponentLevelAndFields) {
  initLogging("unit", LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  logInfo("review answered", {{"uid", "abc"}, {"allowed", false}, {"msg", "not overridden"}});
  logDebug("below the threshold");
  std::string out = ::testing::internal::GetCapturedStderr();
  ASSERT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  Json j = Json::parse(out);
  EXPECT_EQ(j["component"], "unit");
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["msg"], "review answered");
  EXPECT_EQ(j["uid"], "abc");
  EXPECT_EQ(j["allowed"], false);
  EXPECT_TRUE(j["time"].is_string());
}

TEST(LogTest, InvalidUtf8InAFieldStillGivesValidJson) {
  initLogging("unit", LogLevel::kInfo);
  ::testing::internal::CaptureStderr();
  logWarn("odd input", {{"name", std::string("a\xff")}});
  std::string out = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(Json::parse(out, nullptr, false).is_discarded()) << out;
}

TEST(LogTest, ParsesLevelNames) {
  LogLevel l = LogLevel::kInfo;
  EXPECT_TRUE(parseLogLevel("debug", &l));
  EXPECT_EQ(l, LogLevel::kDebug);
  EXPECT_FALSE(parseLogLevel("verbose", &l));
}

}  // namespace
}  // namespace tasklease
