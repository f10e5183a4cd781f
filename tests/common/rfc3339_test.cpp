#include "common/rfc3339.h"

#include <gtest/gtest.h>

namespace tasklease {
namespace {

using std::chrono::seconds;

TEST(Rfc3339Test, ParsesUtcAndOffsetsToTheSameInstant) {
  auto utc = parseRfc3339("2026-01-02T15:04:05Z");
  auto plus = parseRfc3339("2026-01-02T17:04:05+02:00");
  auto minus = parseRfc3339("2026-01-02T10:04:05-05:00");
  ASSERT_TRUE(utc.ok() && plus.ok() && minus.ok());
  EXPECT_EQ(*utc, *plus);
  EXPECT_EQ(*utc, *minus);
  EXPECT_EQ(std::chrono::duration_cast<seconds>(utc->time_since_epoch()).count(), 1767366245);
}

TEST(Rfc3339Test, KeepsFractionsOfASecond) {
  auto a = parseRfc3339("2026-01-02T15:04:05.250Z");
  auto b = parseRfc3339("2026-01-02T15:04:05Z");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(*a - *b).count(), 250);
}

TEST(Rfc3339Test, RejectsMalformedTimesNamingTheInput) {
  for (const char* bad : {"", "2026-01-02", "2026-01-02T15:04:05", "2026-13-01T00:00:00Z",
                          "2026-02-30T00:00:00Z", "2026-01-02T25:00:00Z", "2026-01-02T15:04:05Zx",
                          "2026-01-02T15:04:05.Z", "2026-01-02 15:04:05Z"}) {
    auto t = parseRfc3339(bad);
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_NE(t.status().message().find(std::string("\"") + bad + "\""), std::string::npos);
  }
}

TEST(Rfc3339Test, FormatsUtcAndRoundTrips) {
  auto t = parseRfc3339("2024-02-29T23:59:58.125Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(formatRfc3339(*t), "2024-02-29T23:59:58Z");
  EXPECT_EQ(formatRfc3339(*t, true), "2024-02-29T23:59:58.125Z");
  EXPECT_EQ(*parseRfc3339(formatRfc3339(*t, true)), *t);
  EXPECT_EQ(formatRfc3339(TimePoint{}), "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace tasklease
