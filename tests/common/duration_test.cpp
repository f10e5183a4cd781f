#include "common/duration.h"

#include <gtest/gtest.h>

namespace tasklease {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(DurationTest, ParsesGoSyntax) {
  EXPECT_EQ(*parseDuration("30m"), minutes(30));
  EXPECT_EQ(*parseDuration("1h30m"), minutes(90));
  EXPECT_EQ(*parseDuration("1.5h"), minutes(90));
  EXPECT_EQ(*parseDuration("90s"), seconds(90));
  EXPECT_EQ(*parseDuration("300ms"), milliseconds(300));
  EXPECT_EQ(*parseDuration("2h45m10s"), hours(2) + minutes(45) + seconds(10));
  EXPECT_EQ(*parseDuration("0"), nanoseconds(0));
  EXPECT_EQ(*parseDuration("-5m"), -minutes(5));
  EXPECT_EQ(*parseDuration(".5s"), milliseconds(500));
}

TEST(DurationTest, RejectsMalformedInputWithClearMessage) {
  for (const char* bad : {"", "30", "m", "1x", "h1", "1.h.", "--1m", "1 h"}) {
    auto got = parseDuration(bad);
    ASSERT_FALSE(got.ok()) << bad;
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(got.status().message().find(std::string("\"") + bad + "\""), std::string::npos)
        << got.status().message();
  }
}

TEST(DurationTest, FormatsLikeGo) {
  EXPECT_EQ(formatDuration(seconds(45)), "45s");
  EXPECT_EQ(formatDuration(minutes(10)), "10m0s");
  EXPECT_EQ(formatDuration(minutes(90)), "1h30m0s");
  EXPECT_EQ(formatDuration(seconds(0)), "0s");
}

}  // namespace
}  // namespace tasklease
