#include "kube/errors.h"

#include <gtest/gtest.h>

namespace tasklease::kube {
namespace {

std::string statusBody(int code, const std::string& reason, const std::string& message) {
  return Json{{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
              {"code", code},     {"reason", reason},   {"message", message}}
      .dump();
}

struct MappingCase {
  int http;
  const char* reason;
  StatusCode code;
};

class ErrorMappingTest : public ::testing::TestWithParam<MappingCase> {};

TEST_P(ErrorMappingTest, StatusBodyMapsToCodeReasonAndHttpCode) {
  const auto& c = GetParam();
  const Status s = statusFromResponse(c.http, statusBody(c.http, c.reason, "msg"), std::nullopt);
  EXPECT_EQ(s.code(), c.code) << c.http << " " << c.reason;
  EXPECT_EQ(s.reason(), c.reason);
  EXPECT_EQ(s.httpCode(), c.http);
  EXPECT_EQ(s.message(), "msg");
}

INSTANTIATE_TEST_SUITE_P(
    Codes, ErrorMappingTest,
    ::testing::Values(MappingCase{400, "BadRequest", StatusCode::kInvalidArgument},
                      MappingCase{401, "Unauthorized", StatusCode::kUnauthenticated},
                      MappingCase{403, "Forbidden", StatusCode::kPermissionDenied},
                      MappingCase{404, "NotFound", StatusCode::kNotFound},
                      MappingCase{409, "AlreadyExists", StatusCode::kAlreadyExists},
                      MappingCase{409, "Conflict", StatusCode::kConflict},
                      MappingCase{410, "Expired", StatusCode::kGone},
                      MappingCase{410, "Gone", StatusCode::kGone},
                      MappingCase{422, "Invalid", StatusCode::kInvalidArgument},
                      MappingCase{429, "TooManyRequests", StatusCode::kResourceExhausted},
                      MappingCase{500, "InternalError", StatusCode::kInternal},
                      MappingCase{503, "ServiceUnavailable", StatusCode::kUnavailable},
                      MappingCase{504, "Timeout", StatusCode::kDeadlineExceeded}),
    [](const ::testing::TestParamInfo<MappingCase>& p) {
      return std::to_string(p.param.http) + p.param.reason;
    });

TEST(ErrorsTest, CarriesCausesFromDetails) {
  const Json body = {
      {"kind", "Status"},
      {"code", 422},
      {"reason", "Invalid"},
      {"message", "AgentTask.tasklease.io \"x\" is invalid"},
      {"details",
       {{"name", "x"},
        {"causes",
         {{{"reason", "FieldValueRequired"}, {"message", "Required value"}, {"field", "spec.ttl"}},
          {{"reason", "FieldValueInvalid"},
           {"message", "Invalid value"},
           {"field", "spec.agent"}}}}}}};
  const Status s = statusFromResponse(422, body.dump(), std::nullopt);
  ASSERT_EQ(s.causes().size(), 2u);
  EXPECT_EQ(s.causes()[0].field, "spec.ttl");
  EXPECT_EQ(s.causes()[0].reason, "FieldValueRequired");
  EXPECT_EQ(s.causes()[1].message, "Invalid value");
}

TEST(ErrorsTest, RetryAfterHeaderWinsOverDetails) {
  Json body = Json::parse(statusBody(429, "TooManyRequests", "slow down"));
  body["details"] = {{"retryAfterSeconds", 9}};
  EXPECT_EQ(statusFromResponse(429, body.dump(), std::chrono::seconds(2)).retryAfter(),
            std::chrono::seconds(2));
  EXPECT_EQ(statusFromResponse(429, body.dump(), std::nullopt).retryAfter(),
            std::chrono::seconds(9));
}

TEST(ErrorsTest, NonStatusBodyGivesDefaultReasonAndShortPrintableExcerpt) {
  const std::string html = "<html>\x01" + std::string(500, 'x') + "</html>";
  const Status s = statusFromResponse(502, html, std::nullopt);
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(s.httpCode(), 502);
  EXPECT_LT(s.message().size(), 300u);
  EXPECT_EQ(s.message().find('\x01'), std::string::npos);
  EXPECT_EQ(statusFromResponse(404, "", std::nullopt).reason(), "NotFound");
}

TEST(ErrorsTest, ParsesRetryAfterSecondsOnly) {
  EXPECT_EQ(parseRetryAfter(" 5 "), std::chrono::seconds(5));
  EXPECT_EQ(parseRetryAfter("0"), std::chrono::seconds(0));
  EXPECT_FALSE(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
  EXPECT_FALSE(parseRetryAfter("-1").has_value());
  EXPECT_FALSE(parseRetryAfter("").has_value());
}

TEST(ErrorsTest, RetryableAndNotProcessedClassification) {
  const auto http = [](int code, const char* reason) {
    return statusFromResponse(code, statusBody(code, reason, "m"), std::nullopt);
  };
  EXPECT_TRUE(isRetryable(http(429, "TooManyRequests")));
  EXPECT_TRUE(isNotProcessed(http(429, "TooManyRequests")));
  for (int code : {500, 503, 504}) {
    EXPECT_TRUE(isRetryable(http(code, "x"))) << code;
    EXPECT_FALSE(isNotProcessed(http(code, "x"))) << code;
  }
  for (int code : {400, 401, 403, 404, 409, 410, 422}) {
    EXPECT_FALSE(isRetryable(http(code, "x"))) << code;
  }
  Status connect(StatusCode::kUnavailable, "refused");
  connect.withReason(std::string(kReasonConnectFailed));
  EXPECT_TRUE(isRetryable(connect));
  EXPECT_TRUE(isNotProcessed(connect));
  Status lost(StatusCode::kUnavailable, "reset");
  lost.withReason(std::string(kReasonConnectionLost));
  EXPECT_TRUE(isRetryable(lost));
  EXPECT_FALSE(isNotProcessed(lost));
  Status tls(StatusCode::kUnavailable, "untrusted");
  tls.withReason("TLSVerificationFailed");
  EXPECT_FALSE(isRetryable(tls));
}

TEST(ErrorsTest, WatchErrorEventObjectMapsToGone) {
  const Json event = {{"kind", "Status"},
                      {"code", 410},
                      {"reason", "Expired"},
                      {"message", "too old resource version: 5 (100)"}};
  const Status s = statusFromStatusObject(event, 500);
  EXPECT_TRUE(s.isGone());
  EXPECT_EQ(s.httpCode(), 410);
}

}  // namespace
}  // namespace tasklease::kube
