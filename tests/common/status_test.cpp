#include "common/status.h"

#include <gtest/gtest.h>

namespace tasklease {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.toString(), "OK");
}

TEST(StatusTest, ToStringCarriesReasonCodeMessageAndCauses) {
  Status s(StatusCode::kInvalidArgument, "AgentTask.tasklease.io \"x\" is invalid");
  s.withReason("Invalid").withHttpCode(422).withCause(
      {"FieldValueRequired", "Required value", "spec.ttl"});
  EXPECT_EQ(s.toString(),
            "Invalid (422): AgentTask.tasklease.io \"x\" is invalid; spec.ttl: Required value");
}

TEST(StatusTest, AnnotatePrefixesMessageAndKeepsDetails) {
  Status s = notFound("pods \"p\" not found");
  s.withReason("NotFound").withHttpCode(404);
  Status a = s.annotate("reading pod");
  EXPECT_EQ(a.message(), "reading pod: pods \"p\" not found");
  EXPECT_TRUE(a.isNotFound());
  EXPECT_EQ(a.httpCode(), 404);
}

TEST(StatusOrTest, HoldsValueOrError) {
  StatusOr<int> good = 7;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  StatusOr<int> bad = notFound("nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(bad.status().isNotFound());
  EXPECT_EQ(bad.valueOr(3), 3);
}

TEST(StatusOrTest, BuiltFromOkStatusBecomesInternalError) {
  StatusOr<int> weird = Status();
  ASSERT_FALSE(weird.ok());
  EXPECT_EQ(weird.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace tasklease
