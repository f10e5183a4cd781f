// The cost of judging hostile input grows linearly with its size (docs/rules.md, "Cost of a
// review"): work is counted with the ReviewMeter the detectors and rules charge (bytes and steps
// examined), never timed. Doubling an input may at most about double its work.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/metrics.h"
#include "tests/webhook/fixtures.h"
#include "webhook/admission.h"
#include "webhook/endpoint.h"
#include "webhook/review.h"
#include "webhook/review_meter.h"
#include "webhook/secret_detectors.h"

namespace tasklease::webhook {
namespace {

using ::testing::HasSubstr;
using namespace testing;  // NOLINT: the fixtures

constexpr size_t kMegabyte = size_t{1} << 20;
// Doubling the input may cost a little more than twice the work (constant parts, a last
// partial repetition), never about four times as a rescan at each occurrence would.
constexpr double kMaxGrowth = 2.2;
// And whatever the shape, a bounded number of units per byte of input.
constexpr uint64_t kMaxUnitsPerByte = 64;

// Random-looking body characters: they pass the "looks random" test of every provider detector,
// so each occurrence of a prefix has a body worth examining.
const std::string kRandomBody = "aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zC";

std::string repeatedTo(const std::string& unit, size_t bytes) {
  std::string out;
  out.reserve(bytes + unit.size());
  while (out.size() < bytes) out += unit;
  out.resize(bytes);
  return out;
}

// What detectLiteralSecret examined for this value.
uint64_t detectorWork(const std::string& name, const std::string& value) {
  ReviewMeter meter;
  ReviewMeter::Scope metered(meter);
  detectLiteralSecret(name, value);
  return meter.work();
}

// Values made of one unit repeated: every anchor alone, with a short body, with a random body
// that runs into the next anchor, and with a separator that ends each token.
std::vector<std::string> hostileUnits() {
  std::vector<std::string> units;
  for (const std::string& anchor : secretDetectorAnchors()) {
    units.push_back(anchor);
    units.push_back(anchor + "Zq7");
    units.push_back(anchor + kRandomBody);
    units.push_back(anchor + kRandomBody + " ");
    units.push_back("x" + anchor + kRandomBody + "-");
  }
  // Shapes of the structured detectors: a PEM label that never closes, JWT parts, URLs whose
  // authority runs on, Slack webhook paths.
  units.push_back("-----BEGIN RSA PRIVATE");
  units.push_back("eyJhbGciOiJIUzI1NiJ9.eyJ.");
  units.push_back("eyJhbGciOiJIUzI1NiJ9." + kRandomBody + "." + kRandomBody + ",");
  units.push_back("a://u:" + kRandomBody + "@");
  units.push_back("a://u:p");
  units.push_back("hooks.slack.com/services/T" + kRandomBody);
  units.push_back("hooks.slack.com/services/T0A/B1C/" + kRandomBody);
  return units;
}

// Expects work(bytes) to grow linearly: from 16 to 32 KiB first (so that a quadratic cost fails
// in a moment instead of running for minutes), then from 512 KiB to 1 MiB.
template <typename Work>
void expectLinear(const std::string& what, Work work) {
  for (size_t bytes : {size_t{32} * 1024, kMegabyte}) {
    const uint64_t half = work(bytes / 2);
    const uint64_t full = work(bytes);
    EXPECT_LE(static_cast<double>(full), kMaxGrowth * static_cast<double>(half))
        << what << ": " << half << " units for " << bytes / 2 << " bytes, " << full << " for "
        << bytes;
    EXPECT_LE(full, kMaxUnitsPerByte * bytes) << what << " at " << bytes << " bytes";
    if (::testing::Test::HasFailure()) return;
  }
}

TEST(ReviewCostTest, EveryDetectorPrefixRepeatedToAMegabyteCostsLinearWork) {
  // Under a secret-like name, so that the high-entropy detector reads the value too.
  for (const std::string& unit : hostileUnits()) {
    expectLinear("GITHUB_TOKEN=\"" + unit + "\" repeated", [&](size_t bytes) {
      return detectorWork("GITHUB_TOKEN", repeatedTo(unit, bytes));
    });
    if (HasFailure()) return;
  }
}

TEST(ReviewCostTest, ABase64WrappedHostileValueCostsLinearWork) {
  // Base64 of a repeated prefix is decoded once and scanned again.
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto base64 = [&](const std::string& text) {
    std::string out;
    for (size_t i = 0; i + 2 < text.size(); i += 3) {
      const uint32_t n = (uint32_t(uint8_t(text[i])) << 16) |
                         (uint32_t(uint8_t(text[i + 1])) << 8) | uint32_t(uint8_t(text[i + 2]));
      for (int shift : {18, 12, 6, 0}) out += alphabet[(n >> shift) & 63];
    }
    return out;
  };
  for (const std::string unit : {"sk-", "glpat-", "xoxb-", "github_pat_"}) {
    expectLinear("base64 of \"" + unit + "\" repeated", [&](size_t bytes) {
      return detectorWork("X", base64(repeatedTo(unit, bytes / 4 * 3)));
    });
  }
}

// Where a Pod holds a hostile value: an env value, an args element (read as --name=value), or
// an env value that references another ($(HOSTILE)), judged again once expanded.
enum class Place { kEnv, kArgs, kExpanded };

// The review of a Pod holding `value` at `place`, judged under a meter.
uint64_t reviewWork(const std::string& value, Place place) {
  Json spec = cleanSpec();
  Json& c = spec["containers"][0];
  switch (place) {
    case Place::kEnv:
      c["env"] = Json::array({envValue("API_TOKEN", value)});
      break;
    case Place::kArgs:
      c["args"] = Json::array({"--api-token=" + value});
      break;
    case Place::kExpanded:
      c["env"] = Json::array({envValue("HOSTILE", value), envValue("API_TOKEN", "$(HOSTILE)")});
      break;
  }
  const StatusOr<AdmissionRequest> request =
      decodeAdmissionReview(admissionReview(pod(spec)).dump());
  EXPECT_TRUE(request.ok()) << request.status().toString();
  if (!request.ok()) return 0;
  const ObjectSetClusterState state = standardState();
  ReviewMeter meter;
  ReviewMeter::Scope metered(meter);
  reviewAdmission(*request, state, ReviewConfig{}, testNow());
  return meter.work();
}

TEST(ReviewCostTest, APodWithAMegabyteOfHostileValueIsJudgedInLinearWork) {
  const std::pair<Place, const char*> places[] = {
      {Place::kEnv, "env"}, {Place::kArgs, "args"}, {Place::kExpanded, "env, expanded"}};
  for (const auto& [place, where] : places) {
    for (const std::string& anchor : secretDetectorAnchors()) {
      for (const std::string& unit : {anchor, anchor + kRandomBody}) {
        expectLinear("a Pod with \"" + unit + "\" repeated in " + where,
                     [&](size_t bytes) { return reviewWork(repeatedTo(unit, bytes), place); });
        if (HasFailure()) return;
      }
    }
  }
}

// ---- the budget ----

// A steady clock that moves only when told to, or by `step` at each reading.
struct FakeSteadyClock {
  ReviewMeter::SteadyClock::time_point now{std::chrono::hours(1)};
  std::chrono::milliseconds step{0};
  ReviewMeter::SteadyNow fn() {
    return [this] {
      now += step;
      return now;
    };
  }
};

TEST(ReviewMeterTest, ChargesSayWhenTheDeadlineHasPassed) {
  FakeSteadyClock clock;
  ReviewMeter meter(clock.now + std::chrono::milliseconds(100), clock.fn());
  EXPECT_TRUE(meter.charge(10));
  clock.now += std::chrono::milliseconds(100);
  // The clock is read once per kUnitsPerClockRead units: a cheap charge does not read it.
  EXPECT_TRUE(meter.charge(10));
  EXPECT_FALSE(meter.charge(ReviewMeter::kUnitsPerClockRead));
  EXPECT_TRUE(meter.spent());
  EXPECT_FALSE(meter.charge(1));  // and stays spent
  EXPECT_EQ(meter.work(), 21 + ReviewMeter::kUnitsPerClockRead);
}

TEST(ReviewMeterTest, TimeWhilePausedIsNotSpent) {
  FakeSteadyClock clock;
  ReviewMeter meter(clock.now + std::chrono::milliseconds(100), clock.fn());
  {
    ReviewMeter::Pause waiting(&meter);
    clock.now += std::chrono::seconds(10);  // an AgentTask's SubjectAccessReviews
  }
  EXPECT_TRUE(meter.charge(ReviewMeter::kUnitsPerClockRead));
  clock.now += std::chrono::milliseconds(100);
  EXPECT_FALSE(meter.charge(ReviewMeter::kUnitsPerClockRead));
}

TEST(ReviewMeterTest, OnlyTheScopedThreadsWorkIsCharged) {
  EXPECT_TRUE(chargeReview(1));  // no meter: nothing to charge
  ReviewMeter outer;
  {
    ReviewMeter::Scope metered(outer);
    chargeReview(5);
    ReviewMeter inner;
    {
      ReviewMeter::Scope nested(inner);
      chargeReview(7);
    }
    EXPECT_EQ(inner.work(), 7u);
    chargeReview(1);
  }
  EXPECT_EQ(outer.work(), 6u);
  EXPECT_EQ(ReviewMeter::current(), nullptr);
}

HttpRequest validateRequest(const Json& pod) {
  HttpRequest r;
  r.method = "POST";
  r.path = "/validate";
  r.body = admissionReview(pod).dump();
  return r;
}

class ReviewBudgetTest : public ::testing::Test {
 protected:
  // Each reading of the steady clock moves it 1 ms; a review gets 10 ms.
  AdmissionEndpoint& endpoint() {
    clock_.step = std::chrono::milliseconds(1);
    ReviewLimits limits;
    limits.budget = std::chrono::milliseconds(10);
    limits.steadyNow = clock_.fn();
    endpoint_ = std::make_unique<AdmissionEndpoint>(
        state_, ReviewConfig{}, nullptr, registry_, [] { return testNow(); }, nullptr, limits);
    return *endpoint_;
  }

  FakeSteadyClock clock_;
  ObjectSetClusterState state_{standardState()};
  MetricsRegistry registry_;
  std::unique_ptr<AdmissionEndpoint> endpoint_;
};

TEST_F(ReviewBudgetTest, AReviewThatSpendsItsBudgetIsRefusedSayingWhatWasTooCostly) {
  Json spec = cleanSpec();
  spec["containers"][0]["env"] =
      Json::array({envValue("LOG_LEVEL", "info"),
                   envValue("API_TOKEN", repeatedTo("sk-" + kRandomBody, 4 * kMegabyte))});
  const HttpResponse http = endpoint().validate(validateRequest(pod(spec)));
  ASSERT_EQ(http.status, 200);
  const Json response = Json::parse(http.body)["response"];
  EXPECT_EQ(response["uid"], "0f3c9d2e-uid");
  EXPECT_EQ(response["allowed"], false);
  EXPECT_EQ(response["status"]["code"], 413);
  const std::string message = response["status"]["message"];
  EXPECT_THAT(message, HasSubstr("Pod team-a/web"));
  EXPECT_THAT(message, HasSubstr("budget of 10ms (--review-budget)"));
  EXPECT_THAT(message, HasSubstr("the literal-secret detectors (TL004) on "
                                 "spec.containers[0].env[1].value (4194304 bytes)"));
  EXPECT_THAT(message, HasSubstr("make the object smaller"));
  const std::string metrics = registry_.render();
  EXPECT_THAT(metrics, HasSubstr("tasklease_webhook_errors_total{type=\"review_budget\"} 1"));
  EXPECT_THAT(metrics, HasSubstr("decision=\"refused\""));
}

TEST_F(ReviewBudgetTest, AReviewWithinItsBudgetGetsTheRulesAnswer) {
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = Json::array({envValue("API_TOKEN", "sk-" + kRandomBody)});
  const Json response =
      Json::parse(endpoint().validate(validateRequest(pod(spec))).body)["response"];
  EXPECT_EQ(response["allowed"], false);
  EXPECT_EQ(response["status"]["code"], 403);
  EXPECT_THAT(response["status"]["message"].get<std::string>(), HasSubstr("openai-api-key"));
}

TEST_F(ReviewBudgetTest, AReviewThatWaitedItsBudgetForAWorkerIsRefusedUnjudged) {
  AdmissionEndpoint& e = endpoint();
  const auto received = clock_.now - std::chrono::milliseconds(50);
  ReviewStep step = e.begin(validateRequest(pod(cleanSpec())), false, received);
  ASSERT_TRUE(step.answer.has_value());
  const Json response = Json::parse(step.answer->body)["response"];
  EXPECT_EQ(response["allowed"], false);
  EXPECT_EQ(response["status"]["code"], 429);
  EXPECT_THAT(response["status"]["message"].get<std::string>(),
              HasSubstr("was not judged: it waited"));
  EXPECT_THAT(registry_.render(),
              HasSubstr("tasklease_webhook_errors_total{type=\"overloaded\"} 1"));
}

}  // namespace
}  // namespace tasklease::webhook
